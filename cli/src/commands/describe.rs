//! A published model described for people (`tagger info`, `tagger models show`): plain words and
//! numbers, no Rust or JSON notation.

use tagger_core::tokenizer::TokenizerConfig;
use tagger_core::Predictor;
use tagger_train::config::Preset;
use tagger_train::pipeline::TrainingRecord;

use super::{safe, safe_report};

/// `default`, `seed`: the names the CLI and the sidecar take.
pub fn preset_name(p: Preset) -> &'static str {
    match p {
        Preset::Default => "default",
        Preset::Seed => "seed",
    }
}

/// `words (min count 2, at most 20000 features, with bigrams)`, `keras (400 words)`.
pub fn tokenizer_text(t: &TokenizerConfig) -> String {
    match t {
        TokenizerConfig::Keras { num_words } => format!("keras ({num_words} words)"),
        TokenizerConfig::Words {
            min_count,
            max_features,
            bigrams,
            repeats,
            subwords,
        } => format!(
            "words (min count {min_count}, at most {max_features} features{}{}{})",
            if *bigrams { ", with bigrams" } else { "" },
            if *repeats {
                ", with repeat features"
            } else {
                ""
            },
            if *subwords > 0 {
                format!(", with {subwords}-character sub-words")
            } else {
                String::new()
            }
        ),
    }
}

/// `20000 features -> 256 -> 6 tags`; no hidden layer reads `20000 features -> 6 tags`.
pub fn network_text(features: usize, hidden: &[usize], tags: usize) -> String {
    let mut parts = vec![format!("{features} features")];
    if !hidden.is_empty() {
        parts.push(
            hidden
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    parts.push(format!("{tags} tags"));
    parts.join(" -> ")
}

/// What a vocabulary holds: `4277 entries: 3504 words, 773 sub-words` (and repeat features and
/// bigrams when it has them).
pub fn vocabulary_text(vocabulary: &[String]) -> String {
    use tagger_core::tokenizer::{repeat_parts, subword_part};
    let (mut words, mut subwords, mut repeats, mut bigrams) = (0, 0, 0, 0);
    for w in vocabulary {
        if subword_part(w).is_some() {
            subwords += 1;
        } else if repeat_parts(w).is_some() {
            repeats += 1;
        } else if w.contains(' ') {
            bigrams += 1;
        } else {
            words += 1;
        }
    }
    let mut parts = vec![format!("{words} words")];
    for (n, what) in [
        (subwords, "sub-words"),
        (repeats, "repeat features"),
        (bigrams, "bigrams"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    format!("{} entries: {}", vocabulary.len(), parts.join(", "))
}

/// `590 of 883 tags (on fewer than 2 training rows): no output unit, never predicted`, or
/// nothing when every tag has one.
pub fn untrained_text(constant: &[bool], min_tag_rows: Option<usize>) -> Option<String> {
    let n = constant.iter().filter(|&&c| c).count();
    if n == 0 {
        return None;
    }
    let why = match min_tag_rows {
        Some(m) if m > 1 => format!(" (on fewer than {m} training rows)"),
        _ => String::new(),
    };
    Some(format!(
        "{n} of {} tags{why}: no output unit, never predicted",
        constant.len()
    ))
}

pub fn print_model(model: &Predictor) -> std::io::Result<()> {
    let summary = model.summary();
    let record = TrainingRecord::of(model.info());
    super::outln!("version:     {}", safe(&summary.version))?;
    super::outln!("created at:  {}", safe(&summary.trained_at))?;
    super::outln!("trained by:  tagger {}", safe(&summary.crate_version))?;
    super::outln!(
        "data:        {} (sha256 {})",
        safe(&summary.source),
        safe(&summary.data_sha256.chars().take(16).collect::<String>())
    )?;
    super::outln!(
        "rows:        {} train, {} validation, {} test",
        summary.rows.train,
        summary.rows.validation,
        summary.rows.test
    )?;
    if let Some(settings) = &record.settings {
        super::outln!(
            "preset:      {}; tokenizer {}",
            preset_name(settings.preset),
            tokenizer_text(&settings.tokenizer)
        )?;
    }
    super::outln!(
        "network:     {}",
        network_text(summary.features, &summary.hidden, summary.labels.len())
    )?;
    super::outln!(
        "vocabulary:  {}",
        vocabulary_text(model.tokenizer().vocabulary())
    )?;
    let constant = model.model().constant_outputs();
    let min_rows = record.settings.as_ref().map(|s| s.train.min_tag_rows);
    if let Some(line) = untrained_text(&constant, min_rows) {
        super::outln!("untrained:   {line}")?;
    }
    super::outln!("background:  {} rows", summary.background_rows)?;
    super::outln!("tags and thresholds:")?;
    for (name, t) in &summary.thresholds.per_tag {
        let index = model.labels().index(name).map(|i| i as usize);
        let never = if index.and_then(|i| constant.get(i).copied()) == Some(true) {
            "  never predicted (no output unit)"
        } else {
            ""
        };
        super::outln!("    {:<28} {t:.2}{never}", safe(name))?;
    }
    if let Some(m) = &record.metrics {
        super::outln!("{}", safe_report(m).table(10))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_counts_each_kind_of_entry() {
        let v: Vec<String> = ["bread", "·bak", "·ake", "oven×2", "olive oil", "oven"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            vocabulary_text(&v),
            "6 entries: 2 words, 2 sub-words, 1 repeat features, 1 bigrams"
        );
        assert_eq!(vocabulary_text(&v[..1]), "1 entries: 1 words");
    }

    #[test]
    fn untrained_tags_are_counted_with_their_reason() {
        assert_eq!(untrained_text(&[false, false], Some(2)), None);
        assert_eq!(
            untrained_text(&[true, false, true], Some(2)).unwrap(),
            "2 of 3 tags (on fewer than 2 training rows): no output unit, never predicted"
        );
        assert_eq!(
            untrained_text(&[true, false], None).unwrap(),
            "1 of 2 tags: no output unit, never predicted"
        );
    }

    #[test]
    fn descriptions_use_plain_words() {
        assert_eq!(network_text(100, &[64], 6), "100 features -> 64 -> 6 tags");
        assert_eq!(
            network_text(100, &[50, 25], 6),
            "100 features -> 50, 25 -> 6 tags"
        );
        assert_eq!(network_text(100, &[], 6), "100 features -> 6 tags");
        assert_eq!(
            tokenizer_text(&TokenizerConfig::Keras { num_words: 400 }),
            "keras (400 words)"
        );
        assert_eq!(
            tokenizer_text(&TokenizerConfig::Words {
                min_count: 2,
                max_features: 20000,
                bigrams: false,
                repeats: true,
                subwords: 0,
            }),
            "words (min count 2, at most 20000 features, with repeat features)"
        );
        assert_eq!(
            tokenizer_text(&TokenizerConfig::Words {
                min_count: 2,
                max_features: 6000,
                bigrams: false,
                repeats: false,
                subwords: 3,
            }),
            "words (min count 2, at most 6000 features, with 3-character sub-words)"
        );
        assert_eq!(preset_name(Preset::Seed), "seed");
    }
}
