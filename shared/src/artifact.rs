//! The trained model as one file: a fixed header (magic bytes, format version, payload length,
//! SHA-256 of the payload) followed by a bincode payload with everything prediction and
//! explanation need — settings, masker, the kept vocabulary only, labels, weights, thresholds,
//! explainer background, metrics and provenance.
//!
//! Decoding checks the header before touching the payload and bounds every allocation, so a
//! truncated, foreign or corrupted file is a specific error, never a panic or a huge allocation.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::dataset::LoadReport;
use crate::error::{Error, Result};
use crate::labels::LabelSet;
use crate::metrics::Report;
use crate::model::Mlp;
use crate::sparse::SparseRows;
use crate::text::Masker;
use crate::thresholds::Thresholds;
use crate::tokenizer::Tokenizer;
use crate::train::EpochStats;

pub const MAGIC: &[u8; 8] = b"TAGGERMD";
/// Bumped whenever the payload layout changes.
pub const FORMAT_VERSION: u32 = 1;
/// The oldest payload layout this build still reads.
pub const MIN_FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 8 + 32;
/// No legitimate model comes near this; it caps what a crafted length can make us allocate.
const MAX_PAYLOAD: usize = 1 << 30;

/// Where a model came from and how it was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Content-derived id: the same data and settings give the same version.
    pub version: String,
    /// RFC 3339, UTC; given by the caller so that a pinned time gives a byte-identical artifact.
    pub created_at: String,
    pub crate_version: String,
    /// Where the training data came from (`s3://bucket/data/x.csv`, a file path).
    pub source: String,
    /// SHA-256 (hex) of the training data as read.
    pub data_sha256: String,
    pub rows: RowCounts,
    pub train_load: LoadReport,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RowCounts {
    pub train: usize,
    pub validation: usize,
    pub test: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub provenance: Provenance,
    pub settings: Settings,
    pub masker: Masker,
    pub tokenizer: Tokenizer,
    pub labels: LabelSet,
    pub model: Mlp,
    pub thresholds: Thresholds,
    /// Explainer background: sparse feature rows sampled from the training set.
    pub background: SparseRows,
    /// Test-set metrics at training time (none when there was no test data).
    pub metrics: Option<Report>,
    /// Per-epoch losses; wall times are zeroed here (they live in the run report) so that the
    /// same inputs give the same bytes.
    pub history: Vec<EpochStats>,
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_PAYLOAD>()
}

impl Artifact {
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let payload = bincode::serde::encode_to_vec(self, bincode_config())
            .map_err(|e| Error::Decode(format!("cannot encode: {e}")))?;
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&Sha256::digest(&payload));
        out.extend_from_slice(&payload);
        Ok(out)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::decode(bytes, true)
    }

    /// Loads bytes that must hash (SHA-256 over the whole file) to `sha256_hex`, as a pointer
    /// records it. That match already covers the payload, so its own digest is not computed
    /// again: one pass over the file instead of two, which a cold start notices.
    pub fn from_bytes_with_digest(bytes: &[u8], sha256_hex: &str) -> Result<Self> {
        let computed = Self::sha256_hex(bytes);
        if computed != sha256_hex {
            return Err(Error::Checksum {
                stored: sha256_hex.to_owned(),
                computed,
            });
        }
        Self::decode(bytes, false)
    }

    fn decode(bytes: &[u8], verify_payload: bool) -> Result<Self> {
        let magic_len = MAGIC.len().min(bytes.len());
        if bytes[..magic_len] != MAGIC[..magic_len] {
            return Err(Error::BadMagic {
                found: bytes[..magic_len].to_vec(),
                expected: MAGIC,
            });
        }
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated {
                len: bytes.len(),
                needed: HEADER_LEN,
            });
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4-byte slice"));
        if version > FORMAT_VERSION {
            return Err(Error::VersionTooNew {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if version < MIN_FORMAT_VERSION {
            return Err(Error::VersionTooOld {
                found: version,
                min: MIN_FORMAT_VERSION,
                supported: FORMAT_VERSION,
            });
        }
        let declared = u64::from_le_bytes(bytes[12..20].try_into().expect("8-byte slice"));
        let payload = &bytes[HEADER_LEN..];
        let needed = usize::try_from(declared)
            .ok()
            .and_then(|d| d.checked_add(HEADER_LEN))
            .unwrap_or(usize::MAX);
        if payload.len() as u64 != declared {
            if (payload.len() as u64) < declared {
                return Err(Error::Truncated {
                    len: bytes.len(),
                    needed,
                });
            }
            return Err(Error::Decode(format!(
                "{} bytes follow the {declared}-byte payload",
                payload.len() as u64 - declared
            )));
        }
        let stored = &bytes[20..52];
        let computed = if verify_payload {
            Sha256::digest(payload)
        } else {
            Default::default()
        };
        if verify_payload && stored != computed.as_slice() {
            return Err(Error::Checksum {
                stored: hex::encode(stored),
                computed: hex::encode(computed),
            });
        }
        let (artifact, used): (Artifact, usize) =
            bincode::serde::decode_from_slice(payload, bincode_config())
                .map_err(|e| {
                    Error::Decode(format!(
                        "{e} (written by an incompatible development build of this format version? retrain it)"
                    ))
                })?;
        if used != payload.len() {
            return Err(Error::Decode(format!(
                "payload has {} unread bytes",
                payload.len() - used
            )));
        }
        artifact.check()?;
        Ok(artifact)
    }

    /// The parts must agree with each other; a payload that decodes but does not is rejected here
    /// rather than panicking at prediction time.
    fn check(&self) -> Result<()> {
        let shape = |what, expected: usize, found: usize| {
            if expected == found {
                Ok(())
            } else {
                Err(Error::Shape {
                    what,
                    expected: expected.to_string(),
                    found: found.to_string(),
                })
            }
        };
        // Checked in place: a clone would double the weights' memory at load time.
        self.model.check()?;
        let model = &self.model;
        shape(
            "model inputs vs vocabulary",
            self.tokenizer.n_features(),
            model.n_inputs(),
        )?;
        shape(
            "model outputs vs labels",
            self.labels.len(),
            model.n_outputs(),
        )?;
        shape(
            "thresholds vs labels",
            self.labels.len(),
            self.thresholds.per_tag.len(),
        )?;
        shape(
            "background width",
            self.background.min_dim().max(model.n_inputs()),
            model.n_inputs(),
        )?;
        Ok(())
    }

    /// SHA-256 (hex) of an encoded artifact, as the pointer records it.
    pub fn sha256_hex(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::explain::WordOptions;
    use crate::predictor::PredictOptions;
    use crate::test_support::tiny_artifact;

    #[test]
    fn digest_checked_load_accepts_the_recorded_digest_and_rejects_another() {
        let bytes = tiny_artifact().to_bytes().unwrap();
        let digest = Artifact::sha256_hex(&bytes);
        let loaded = Artifact::from_bytes_with_digest(&bytes, &digest).unwrap();
        assert_eq!(loaded, Artifact::from_bytes(&bytes).unwrap());
        let other = Artifact::sha256_hex(b"another file");
        assert!(matches!(
            Artifact::from_bytes_with_digest(&bytes, &other),
            Err(Error::Checksum { stored, .. }) if stored == other
        ));
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            Artifact::from_bytes_with_digest(&flipped, &digest),
            Err(Error::Checksum { .. })
        ));
    }

    const QUESTIONS: [&str; 4] = [
        "How do I fix the borrow checker error in my cargo build?",
        "pandas dataframe from a numpy array",
        "<p>react component re-renders on every <code>dom event</code></p>",
        "completely unrelated words here",
    ];

    fn encoded() -> Vec<u8> {
        tiny_artifact().to_bytes().expect("tiny artifact encodes")
    }

    /// A header for `payload` with a correct length and checksum, as a writer would make it.
    fn sealed(version: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&Sha256::digest(payload));
        out.extend_from_slice(payload);
        out
    }

    fn with_declared_len(mut bytes: Vec<u8>, declared: u64) -> Vec<u8> {
        bytes[12..20].copy_from_slice(&declared.to_le_bytes());
        bytes
    }

    fn all_scores() -> PredictOptions {
        PredictOptions {
            scores: true,
            ..PredictOptions::default()
        }
    }

    #[test]
    fn save_then_load_gives_identical_predictions_and_bytes() {
        let original = tiny_artifact();
        let bytes = original.to_bytes().unwrap();
        let loaded = Artifact::from_bytes(&bytes).unwrap();
        assert_eq!(loaded, original);
        for q in QUESTIONS {
            let before = original.predict(q, &all_scores()).unwrap();
            let after = loaded.predict(q, &all_scores()).unwrap();
            assert_eq!(before, after, "prediction for {q:?} changed on reload");
        }
        // The reload must also explain exactly as before (background and model survive).
        let tags = original.labels.names().to_vec();
        let before = original
            .explain(QUESTIONS[0], &tags, &WordOptions::default())
            .unwrap();
        let after = loaded
            .explain(QUESTIONS[0], &tags, &WordOptions::default())
            .unwrap();
        assert_eq!(before, after);
        assert_eq!(
            loaded.to_bytes().unwrap(),
            bytes,
            "re-encoding changed bytes"
        );
    }

    #[test]
    fn header_records_magic_version_length_and_payload_checksum() {
        let bytes = encoded();
        assert_eq!(&bytes[..8], MAGIC);
        assert_eq!(
            u32::from_le_bytes(bytes[8..12].try_into().unwrap()),
            FORMAT_VERSION
        );
        let declared = u64::from_le_bytes(bytes[12..20].try_into().unwrap());
        assert_eq!(declared as usize, bytes.len() - HEADER_LEN);
        assert_eq!(
            &bytes[20..52],
            Sha256::digest(&bytes[HEADER_LEN..]).as_slice()
        );
    }

    #[test]
    fn rejects_empty_input_as_truncated() {
        let err = Artifact::from_bytes(&[]).unwrap_err();
        assert!(
            matches!(err, Error::Truncated { len: 0, needed } if needed == HEADER_LEN),
            "{err:?}"
        );
    }

    #[test]
    fn rejects_a_cut_inside_the_magic_as_truncated_or_bad_magic() {
        let bytes = encoded();
        for cut in 1..MAGIC.len() {
            let err = Artifact::from_bytes(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(err, Error::Truncated { .. } | Error::BadMagic { .. }),
                "cut at {cut}: {err:?}"
            );
        }
    }

    #[test]
    fn rejects_a_cut_inside_the_header_as_truncated() {
        let bytes = encoded();
        for cut in [MAGIC.len(), 10, 12, 19, 20, 40, HEADER_LEN - 1] {
            let err = Artifact::from_bytes(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(err, Error::Truncated { len, needed } if len == cut && needed == HEADER_LEN),
                "cut at {cut}: {err:?}"
            );
        }
    }

    #[test]
    fn rejects_a_cut_inside_the_payload_as_truncated_naming_the_full_length() {
        let bytes = encoded();
        let full = bytes.len();
        for cut in [HEADER_LEN, HEADER_LEN + 1, full / 2, full - 1] {
            let err = Artifact::from_bytes(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(err, Error::Truncated { len, needed } if len == cut && needed == full),
                "cut at {cut}: {err:?}"
            );
        }
    }

    #[test]
    fn rejects_wrong_magic() {
        let mut bytes = encoded();
        bytes[..8].copy_from_slice(b"NOTMODEL");
        let err = Artifact::from_bytes(&bytes).unwrap_err();
        assert!(
            matches!(&err, Error::BadMagic { found, .. } if found.as_slice() == b"NOTMODEL"),
            "{err:?}"
        );
        // A pointer file passed where the model belongs is the likely real-world mix-up.
        let err = Artifact::from_bytes(br#"{"version":"abc","key":"abc/model.bin"}"#).unwrap_err();
        assert!(matches!(err, Error::BadMagic { .. }), "{err:?}");
    }

    #[test]
    fn rejects_a_newer_format_version() {
        let mut bytes = encoded();
        bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let err = Artifact::from_bytes(&bytes).unwrap_err();
        assert!(
            matches!(err, Error::VersionTooNew { found, supported }
                if found == FORMAT_VERSION + 1 && supported == FORMAT_VERSION),
            "{err:?}"
        );
        assert!(err.to_string().contains("upgrade tagger"), "{err}");
    }

    #[test]
    fn rejects_a_format_version_older_than_supported() {
        let mut bytes = encoded();
        bytes[8..12].copy_from_slice(&(MIN_FORMAT_VERSION - 1).to_le_bytes());
        let err = Artifact::from_bytes(&bytes).unwrap_err();
        assert!(
            matches!(err, Error::VersionTooOld { found, .. } if found == MIN_FORMAT_VERSION - 1),
            "{err:?}"
        );
    }

    #[test]
    fn rejects_one_flipped_payload_byte_by_checksum() {
        let bytes = encoded();
        for at in [HEADER_LEN, (HEADER_LEN + bytes.len()) / 2, bytes.len() - 1] {
            let mut corrupt = bytes.clone();
            corrupt[at] ^= 0x01;
            let err = Artifact::from_bytes(&corrupt).unwrap_err();
            assert!(matches!(err, Error::Checksum { .. }), "byte {at}: {err:?}");
        }
    }

    #[test]
    fn rejects_one_flipped_checksum_byte() {
        let bytes = encoded();
        for at in [20, 35, 51] {
            let mut corrupt = bytes.clone();
            corrupt[at] ^= 0x80;
            let err = Artifact::from_bytes(&corrupt).unwrap_err();
            assert!(
                matches!(&err, Error::Checksum { stored, computed }
                    if *stored == hex::encode(&corrupt[20..52]) && stored != computed),
                "byte {at}: {err:?}"
            );
        }
    }

    #[test]
    fn rejects_a_declared_length_beyond_the_file_as_truncated() {
        let bytes = encoded();
        let payload_len = (bytes.len() - HEADER_LEN) as u64;
        let err =
            Artifact::from_bytes(&with_declared_len(bytes.clone(), payload_len + 1)).unwrap_err();
        assert!(
            matches!(err, Error::Truncated { len, needed } if len == bytes.len() && needed == bytes.len() + 1),
            "{err:?}"
        );
    }

    #[test]
    fn rejects_a_huge_declared_length_without_allocating() {
        let bytes = encoded();
        for declared in [u64::MAX, u64::MAX - HEADER_LEN as u64, 1 << 40] {
            let err =
                Artifact::from_bytes(&with_declared_len(bytes.clone(), declared)).unwrap_err();
            assert!(
                matches!(err, Error::Truncated { .. }),
                "{declared}: {err:?}"
            );
        }
    }

    #[test]
    fn rejects_trailing_bytes_after_the_declared_payload() {
        let mut bytes = encoded();
        bytes.extend_from_slice(b"junk");
        let err = Artifact::from_bytes(&bytes).unwrap_err();
        assert!(
            matches!(&err, Error::Decode(m) if m.contains("4 bytes follow")),
            "{err:?}"
        );
    }

    #[test]
    fn rejects_a_well_sealed_payload_that_is_not_an_artifact() {
        let err = Artifact::from_bytes(&sealed(FORMAT_VERSION, b"not bincode at all")).unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{err:?}");
        let err = Artifact::from_bytes(&sealed(FORMAT_VERSION, &[])).unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{err:?}");
    }

    #[test]
    fn rejects_a_well_sealed_payload_whose_parts_disagree() {
        let mut artifact = tiny_artifact();
        artifact.thresholds.per_tag.push(0.5);
        let payload = bincode::serde::encode_to_vec(&artifact, bincode_config()).unwrap();
        let err = Artifact::from_bytes(&sealed(FORMAT_VERSION, &payload)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Shape {
                    what: "thresholds vs labels",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    /// Pinned from `resealed_corrupt_payloads_never_panic`: a background row offset rewritten in
    /// a re-sealed payload used to decode, then panic slicing rows when explaining.
    #[test]
    fn rejects_background_rows_with_corrupt_offsets() {
        let artifact = tiny_artifact();
        let payload = bincode::serde::encode_to_vec(&artifact, bincode_config()).unwrap();
        let background =
            bincode::serde::encode_to_vec(&artifact.background, bincode_config()).unwrap();
        let at = payload
            .windows(background.len())
            .position(|w| w == background.as_slice())
            .expect("background bytes are in the payload");
        // Byte 0 is the offset count (one byte for a short varint); byte 1 the first offset, 0.
        assert_eq!(payload[at + 1], 0);
        for first_offset in [1u8, 18] {
            let mut corrupt = payload.clone();
            corrupt[at + 1] = first_offset;
            let err = Artifact::from_bytes(&sealed(FORMAT_VERSION, &corrupt)).unwrap_err();
            assert!(
                matches!(&err, Error::Decode(m) if m.contains("sparse rows")),
                "{err:?}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Random byte changes (anywhere, header included) and cuts never panic, and decoding
        /// succeeds only when the bytes are the original or still carry a matching checksum.
        #[test]
        fn random_mutations_never_panic_and_fail_unless_checksum_matches(
            edits in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..8),
            cut in prop::option::of(any::<prop::sample::Index>()),
        ) {
            let original = encoded();
            let mut bytes = original.clone();
            for (at, xor) in &edits {
                let i = at.index(bytes.len());
                bytes[i] ^= xor;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len()));
            }
            if let Ok(decoded) = Artifact::from_bytes(&bytes) {
                let sealed_ok = bytes.len() >= HEADER_LEN
                    && bytes[20..52] == *Sha256::digest(&bytes[HEADER_LEN..]).as_slice();
                prop_assert!(bytes == original || sealed_ok);
                prop_assert_eq!(decoded.to_bytes().unwrap(), bytes);
            }
        }

        /// A corrupted payload re-sealed with a valid checksum (a buggy writer, or a crafted
        /// file) reaches the bincode decoder and the consistency checks: still no panic, and
        /// whatever decodes can predict and explain without panicking.
        #[test]
        fn resealed_corrupt_payloads_never_panic(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in prop::option::of(any::<prop::sample::Index>()),
        ) {
            let original = encoded();
            let mut payload = original[HEADER_LEN..].to_vec();
            for (at, value) in &edits {
                let i = at.index(payload.len());
                payload[i] = *value;
            }
            if let Some(cut) = cut {
                payload.truncate(cut.index(payload.len()));
            }
            if let Ok(decoded) = Artifact::from_bytes(&sealed(FORMAT_VERSION, &payload)) {
                prop_assert_eq!(decoded.labels.len(), decoded.model.n_outputs());
                prop_assert_eq!(decoded.tokenizer.n_features(), decoded.model.n_inputs());
                let tags = decoded.labels.names().to_vec();
                for q in QUESTIONS {
                    let _ = decoded.predict(q, &all_scores());
                    let _ = decoded.explain(q, &tags, &WordOptions::default());
                }
            }
        }
    }
}
