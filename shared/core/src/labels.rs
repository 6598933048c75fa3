//! The tag vocabulary: tag names <-> output indices of the model.
//!
//! Labels are sorted by name, so the same training tags always give the same indices whatever
//! the row order, and lookups are a binary search (no map to rebuild after deserialising).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The tags a model predicts, sorted by name, with how many training examples carried each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LabelSetRepr")]
pub struct LabelSet {
    names: Vec<String>,
    counts: Vec<u64>,
}

#[derive(Deserialize)]
struct LabelSetRepr {
    names: Vec<String>,
    counts: Vec<u64>,
}

impl TryFrom<LabelSetRepr> for LabelSet {
    type Error = String;

    /// Lookups rely on sorted, unique names: a payload that breaks that is refused, not trusted.
    fn try_from(r: LabelSetRepr) -> Result<Self, String> {
        if r.names.len() != r.counts.len() {
            return Err(format!(
                "label set has {} names but {} counts",
                r.names.len(),
                r.counts.len()
            ));
        }
        if let Some(w) = r.names.windows(2).find(|w| w[0] >= w[1]) {
            return Err(format!(
                "label names are not sorted and unique at {:?}, {:?}",
                w[0], w[1]
            ));
        }
        Ok(LabelSet {
            names: r.names,
            counts: r.counts,
        })
    }
}

impl LabelSet {
    /// Labels from sorted, unique names and their training counts (checked).
    pub fn from_parts(names: Vec<String>, counts: Vec<u64>) -> Result<Self, String> {
        Self::try_from(LabelSetRepr { names, counts })
    }

    /// Every tag that occurs in `tags` (one slice per example); a tag repeated within one
    /// example counts once.
    pub fn fit<'a>(tags: impl IntoIterator<Item = &'a [String]>) -> LabelSet {
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        let mut seen: Vec<&str> = Vec::new();
        for example in tags {
            seen.clear();
            for tag in example {
                if !seen.contains(&tag.as_str()) {
                    seen.push(tag);
                    *counts.entry(tag).or_default() += 1;
                }
            }
        }
        let (names, counts) = counts.into_iter().map(|(n, c)| (n.to_string(), c)).unzip();
        LabelSet { names, counts }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The name of label `i`. Panics when `i >= len()`, like slice indexing: indices come from
    /// this set or from a model built with it.
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    pub fn index(&self, tag: &str) -> Option<u32> {
        self.names
            .binary_search_by(|n| n.as_str().cmp(tag))
            .ok()
            .map(|i| i as u32)
    }

    /// Sorted, de-duplicated indices of `tags`; tags outside the set are dropped.
    pub fn encode(&self, tags: &[String]) -> Vec<u32> {
        let mut out: Vec<u32> = tags.iter().filter_map(|t| self.index(t)).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// [`encode`](Self::encode) for scoring: each distinct tag outside the set is kept as an
    /// index past the last label, so the metrics count it as missed. A test tag no training row
    /// carried is still a tag the question has; dropping it would score the model on the easier
    /// question of its own tags only.
    pub fn encode_scored(&self, tags: &[String]) -> Vec<u32> {
        let mut out = self.encode(tags);
        let mut unknown: Vec<&str> = tags
            .iter()
            .map(String::as_str)
            .filter(|t| self.index(t).is_none())
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        let first = self.names.len() as u32;
        out.extend((0..unknown.len() as u32).map(|k| first + k));
        out
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Training examples per label, aligned with [`names`](Self::names).
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(data: &[&[&str]]) -> Vec<Vec<String>> {
        data.iter()
            .map(|r| r.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn fit_sorts_labels_by_name_and_counts_examples() {
        let tags = rows(&[&["python", "pandas"], &["java"], &["python", "python"]]);
        let set = LabelSet::fit(tags.iter().map(Vec::as_slice));
        assert_eq!(set.names(), ["java", "pandas", "python"]);
        assert_eq!(set.counts(), [1, 1, 2]);
        assert_eq!(set.len(), 3);
        assert_eq!(set.name(2), "python");
        assert_eq!(set.index("pandas"), Some(1));
        assert_eq!(set.index("rust"), None);
    }

    #[test]
    fn fit_does_not_depend_on_row_order() {
        let a = rows(&[&["b", "a"], &["c"]]);
        let b = rows(&[&["c"], &["a", "b"]]);
        assert_eq!(
            LabelSet::fit(a.iter().map(Vec::as_slice)),
            LabelSet::fit(b.iter().map(Vec::as_slice))
        );
    }

    #[test]
    fn encode_sorts_dedups_and_drops_unknown_tags() {
        let tags = rows(&[&["a", "b", "c"]]);
        let set = LabelSet::fit(tags.iter().map(Vec::as_slice));
        let query: Vec<String> = ["c", "zzz", "a", "c"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(set.encode(&query), [0, 2]);
        assert!(set.encode(&[]).is_empty());
    }

    #[test]
    fn encode_scored_keeps_each_distinct_unknown_tag_past_the_labels() {
        let tags = rows(&[&["a", "b", "c"]]);
        let set = LabelSet::fit(tags.iter().map(Vec::as_slice));
        let query: Vec<String> = ["zzz", "c", "yyy", "a", "zzz"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // Known tags as `encode` gives them, then one index per distinct unknown tag: sorted.
        assert_eq!(set.encode_scored(&query), [0, 2, 3, 4]);
        assert_eq!(set.encode_scored(&query[1..2]), set.encode(&query[1..2]));
        assert!(set.encode_scored(&[]).is_empty());
    }

    #[test]
    fn round_trips_through_serde_and_rejects_unsorted_names() {
        let tags = rows(&[&["b", "a"]]);
        let set = LabelSet::fit(tags.iter().map(Vec::as_slice));
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(serde_json::from_str::<LabelSet>(&json).unwrap(), set);
        let bad = r#"{"names":["b","a"],"counts":[1,1]}"#;
        assert!(serde_json::from_str::<LabelSet>(bad)
            .unwrap_err()
            .to_string()
            .contains("not sorted"));
        let ragged = r#"{"names":["a"],"counts":[]}"#;
        assert!(serde_json::from_str::<LabelSet>(ragged).is_err());
    }
}
