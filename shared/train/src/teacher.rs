//! Knowledge distillation: a stronger model's tag probabilities (the teacher), made offline, as
//! soft training targets for the bag-of-words network.
//!
//! The teacher file is a CSV `text,teacher`: the raw text of a row (exactly as in the training
//! CSV's text field) and the teacher's probabilities as `tag=p;tag=p` (tags it gives below some
//! floor may be left out: they count as 0). `benchmarks/minilm/reference.py --teacher-out` writes
//! one from a MiniLM sentence-embedding MLP. A training row whose text is in the file learns
//! from `(1 - distill) * its tags + distill * the teacher's probabilities` ([`TrainConfig::distill`](crate::train::TrainConfig::distill));
//! texts of the file that are no training row are extra, unlabelled rows that learn from the
//! teacher alone. Only training reads it: the served model stays the same bag of words.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};
use tagger_core::labels::LabelSet;

use crate::error::{Error, Result};

/// Most rows a teacher file may hold: it is read whole into memory.
pub const MAX_TEACHER_ROWS: usize = 2_000_000;

/// The teacher's probabilities, by raw text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Teacher {
    /// In file order (the extra rows are added in this order, so runs are reproducible).
    rows: Vec<(String, Vec<(String, f32)>)>,
    index: HashMap<String, usize>,
    /// SHA-256 of the rows as read (hex): part of the model version of a run taught by it.
    digest: String,
}

impl Teacher {
    pub fn from_path(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| {
            Error::config("teacher", format!("cannot open {}: {e}", path.display()))
        })?;
        Self::from_reader(std::io::BufReader::new(file))
    }

    /// Parses a `text,teacher` CSV; a malformed cell is an error naming its line.
    pub fn from_reader(reader: impl Read) -> Result<Self> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(reader);
        let header = csv
            .headers()
            .map_err(|e| Error::config("teacher", format!("unreadable header: {e}")))?
            .clone();
        let col = |name: &str| {
            header.iter().position(|h| h.trim() == name).ok_or_else(|| {
                Error::config(
                    "teacher",
                    format!(
                        "the teacher file needs a `text` and a `teacher` column, found {header:?}"
                    ),
                )
            })
        };
        let (text_col, teacher_col) = (col("text")?, col("teacher")?);
        let mut out = Teacher::default();
        let mut hash = Sha256::new();
        for (n, record) in csv.records().enumerate() {
            let line = n + 2;
            let record =
                record.map_err(|e| Error::config("teacher", format!("line {line}: {e}")))?;
            if out.rows.len() >= MAX_TEACHER_ROWS {
                return Err(Error::config(
                    "teacher",
                    format!("more than {MAX_TEACHER_ROWS} rows"),
                ));
            }
            // Trimmed, as the training CSV reader trims its text fields.
            let text = record.get(text_col).unwrap_or_default().trim();
            let cell = record.get(teacher_col).unwrap_or_default();
            for part in [text, "\0", cell, "\n"] {
                hash.update(part.as_bytes());
            }
            let mut probs = Vec::new();
            for item in cell.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                let parsed = item
                    .rsplit_once('=')
                    .and_then(|(tag, p)| Some((tag.trim(), p.trim().parse::<f32>().ok()?)));
                match parsed {
                    Some((tag, p)) if !tag.is_empty() && (0.0..=1.0).contains(&p) => {
                        probs.push((tag.to_owned(), p));
                    }
                    _ => {
                        return Err(Error::config(
                            "teacher",
                            format!("line {line}: {item:?} is not `tag=p` with p in [0, 1]"),
                        ))
                    }
                }
            }
            // A repeated text keeps its first entry.
            if !out.index.contains_key(text) {
                out.index.insert(text.to_owned(), out.rows.len());
                out.rows.push((text.to_owned(), probs));
            }
        }
        out.digest = hex::encode(hash.finalize());
        Ok(out)
    }

    /// SHA-256 (hex) of the file's rows: two teachers with the same rows have the same digest.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The teacher's probabilities for `text` over `labels` (tags unknown to `labels` dropped),
    /// sorted by label index; `None` when the file has no such text.
    pub fn targets(&self, text: &str, labels: &LabelSet) -> Option<Vec<(u32, f32)>> {
        let i = *self.index.get(text)?;
        Some(encode(&self.rows[i].1, labels))
    }

    /// A warning when the file has probabilities for any of `held_out` (the run's test texts).
    /// A teacher that scores held-out texts was most likely fit on them (`reference.py
    /// --teacher-on-all` over the whole upload does that), and then it passes what it learnt
    /// from their tags to the student, above all through word-dropped variants of them: the
    /// held-out figures come out optimistic. Never an error: the model itself is fine.
    pub fn held_out_warning<'a>(
        &self,
        held_out: impl IntoIterator<Item = &'a str>,
    ) -> Option<String> {
        let (mut known, mut all) = (0usize, 0usize);
        for text in held_out {
            all += 1;
            known += usize::from(self.index.contains_key(text));
        }
        (known > 0).then(|| {
            format!(
                "the teacher file has probabilities for {known} of the {all} held-out test rows: \
                 if the teacher was trained on them, the test metrics and the quality gate's \
                 scores of this run are optimistic (train the teacher on the other rows only)"
            )
        })
    }

    /// The file's texts that `is_known` rejects (no training row), with their targets, in file
    /// order.
    pub fn extra<'a>(
        &'a self,
        labels: &'a LabelSet,
        is_known: impl Fn(&str) -> bool + 'a,
    ) -> impl Iterator<Item = (&'a str, Vec<(u32, f32)>)> + 'a {
        self.rows
            .iter()
            .filter(move |(text, _)| !is_known(text))
            .map(move |(text, probs)| (text.as_str(), encode(probs, labels)))
    }
}

fn encode(probs: &[(String, f32)], labels: &LabelSet) -> Vec<(u32, f32)> {
    let mut out: Vec<(u32, f32)> = probs
        .iter()
        .filter_map(|(tag, p)| Some((labels.index(tag)?, *p)))
        .collect();
    out.sort_unstable_by_key(|&(t, _)| t);
    out.dedup_by_key(|&mut (t, _)| t);
    out
}

/// Soft targets of training rows: for row `i`, the target of tag `t` is
/// `(1 - weight[i]) * y[i][t] + weight[i] * q[i][t]`, `q` being the teacher's probabilities
/// (`rows[i]`, 0 for tags not listed). Weight 0 is a plain labelled row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SoftTargets {
    pub rows: Vec<Vec<(u32, f32)>>,
    pub weight: Vec<f32>,
}

impl SoftTargets {
    pub fn push(&mut self, row: Vec<(u32, f32)>, weight: f32) {
        self.rows.push(row);
        self.weight.push(weight);
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn select(&self, order: &[usize]) -> SoftTargets {
        SoftTargets {
            rows: order.iter().map(|&i| self.rows[i].clone()).collect(),
            weight: order.iter().map(|&i| self.weight[i]).collect(),
        }
    }

    pub fn extend(&mut self, other: &SoftTargets) {
        self.rows.extend(other.rows.iter().cloned());
        self.weight.extend(other.weight.iter().copied());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> LabelSet {
        LabelSet::fit([
            ["a".to_string()].as_slice(),
            ["b".to_string(), "c".to_string()].as_slice(),
        ])
    }

    #[test]
    fn a_teacher_that_scores_held_out_texts_is_warned_about() {
        let t = Teacher::from_reader("text,teacher\nseen,a=1\nalso seen,b=1\n".as_bytes()).unwrap();
        let w = t
            .held_out_warning(["seen", "new", "also seen"])
            .expect("two held-out texts are known");
        assert!(w.contains("2 of the 3 held-out test rows"), "{w}");
        assert_eq!(t.held_out_warning(["new", "other"]), None);
        assert_eq!(t.held_out_warning([]), None);
    }

    #[test]
    fn reads_probabilities_by_text_and_drops_unknown_tags() {
        let t = Teacher::from_reader(
            "text,teacher\nhello world,c=0.5;a=0.25;zzz=0.9\n\"x, y\",\nhello world,a=1\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(t.len(), 2, "a repeated text keeps its first entry");
        let l = labels();
        let (a, c) = (l.index("a").unwrap(), l.index("c").unwrap());
        assert_eq!(
            t.targets("hello world", &l),
            Some(vec![(a, 0.25), (c, 0.5)])
        );
        assert_eq!(t.targets("x, y", &l), Some(vec![]));
        assert_eq!(t.targets("nope", &l), None);
        let extra: Vec<_> = t.extra(&l, |s| s == "hello world").collect();
        assert_eq!(extra, vec![("x, y", vec![])]);
        let other = Teacher::from_reader("text,teacher\nhello world,c=0.6\n".as_bytes()).unwrap();
        assert_ne!(t.digest(), other.digest());
        assert_eq!(t.digest().len(), 64);
    }

    #[test]
    fn malformed_files_are_errors_naming_the_line() {
        for (file, needle) in [
            ("text\nhello\n", "`teacher` column"),
            ("text,teacher\nhello,a=2\n", "line 2"),
            ("text,teacher\nok,a=0.5\nhello,a\n", "line 3"),
            ("text,teacher\nhello,=0.5\n", "line 2"),
            ("text,teacher\nhello,a=NaN\n", "line 2"),
            ("text,teacher\nhello,a=0.5,extra\n", "line 2"),
        ] {
            let err = Teacher::from_reader(file.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{file:?}: {err}");
        }
    }
}
