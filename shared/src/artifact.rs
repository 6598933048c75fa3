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
        let computed = Sha256::digest(payload);
        if stored != computed.as_slice() {
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
        let model = Mlp::from_layers(self.model.layers.clone())?;
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
