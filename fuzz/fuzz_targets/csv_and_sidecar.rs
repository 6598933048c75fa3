//! A training upload: a `data/<name>.json` sidecar and the CSV it configures.
//!
//! The first byte is the sidecar's length (0-255 bytes after it); the rest is the CSV. The
//! sidecar goes through the same steps as the train job's (parse, apply to the default
//! settings, validate); the CSV is read with the resulting CSV options when the sidecar is
//! valid, else with the defaults.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagger_train::config::{Overrides, Settings};
use tagger_train::dataset::{read_csv, CsvOptions};

/// Settings from a sidecar, as the job derives them; `None` when the sidecar is rejected.
fn settings_from(sidecar: &[u8]) -> Option<Settings> {
    let overrides = Overrides::from_json(sidecar).ok()?;
    let settings = Settings::default().apply(&overrides).ok()?;
    settings
        .validate()
        .expect("settings that apply() accepted must validate");
    Some(settings)
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (sidecar, csv) = rest.split_at(usize::from(n).min(rest.len()));
    let csv_options = match settings_from(sidecar) {
        Some(settings) => settings.csv,
        None => CsvOptions::default(),
    };
    if let Ok((examples, report)) = read_csv(csv, &csv_options) {
        // What the training pipeline relies on: every row has trimmed, distinct, non-empty
        // tags and a trimmed, non-empty text within the size limit.
        assert_eq!(report.rows_used, examples.len() as u64);
        for e in &examples {
            assert!(!e.text.is_empty() && e.text.trim() == e.text);
            assert!(e.text.len() <= csv_options.max_text_bytes);
            assert!(!e.tags.is_empty());
            for (i, t) in e.tags.iter().enumerate() {
                assert!(!t.is_empty() && t.trim() == t && !e.tags[..i].contains(t));
            }
        }
        let _ = report.summary();
    }
});
