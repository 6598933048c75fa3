//! The trained model as one file: a fixed header (magic bytes, format version, payload length,
//! SHA-256 of the payload) followed by a bincode payload in the schema of that format version.
//!
//! Each format version has its own frozen wire types (`v1`, `v2`), separate from the in-memory
//! [`Artifact`]: changing an internal type can never silently change or break the file format,
//! and every version this build reads is converted into the same [`Artifact`]. Format 2 holds
//! what prediction and explanation need (masker, vocabulary, labels, weights, thresholds,
//! explainer background) plus [`ModelInfo`]; training's own record (settings, full metrics,
//! history) travels inside it as JSON text, whose readers tolerate added fields.
//!
//! Decoding checks the header before touching the payload, always verifies the payload's own
//! digest, and bounds every allocation, so a truncated, foreign or corrupted file is a specific
//! error, never a panic or a huge allocation.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::labels::LabelSet;
use crate::model::Mlp;
use crate::sparse::SparseRows;
use crate::text::Masker;
use crate::thresholds::Thresholds;
use crate::tokenizer::Tokenizer;

mod v1;
mod v2;

pub const MAGIC: &[u8; 8] = b"TAGGERMD";
/// The payload layout this build writes.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest payload layout this build still reads.
pub const MIN_FORMAT_VERSION: u32 = 1;
pub const HEADER_LEN: usize = 8 + 4 + 8 + 32;
/// No legitimate model comes near this; it caps what a crafted length can make us allocate.
const MAX_PAYLOAD: usize = 1 << 30;

/// Row counts of the splits a model was trained, calibrated and tested on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCounts {
    pub train: u64,
    pub validation: u64,
    pub test: u64,
}

/// The headline test metrics, so tools can compare versions without loading their reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadlineMetrics {
    pub examples: u64,
    pub p_at_1: f64,
    pub micro_f1: f64,
    pub macro_f1: f64,
}

/// Where a model came from and how well it did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
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
    /// On the test split; `None` when there was no test data.
    pub metrics: Option<HeadlineMetrics>,
    /// Training's record of the run (settings, full test report, epoch history, rows skipped)
    /// as a JSON object. Its schema belongs to the training crate; the core only carries it.
    pub training_json: String,
}

impl ModelInfo {
    /// [`ModelInfo::training_json`] parsed; `Null` when it is empty or not JSON.
    pub fn training(&self) -> serde_json::Value {
        serde_json::from_str(&self.training_json).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Artifact {
    pub info: ModelInfo,
    pub masker: Masker,
    pub tokenizer: Tokenizer,
    pub labels: LabelSet,
    pub model: Mlp,
    pub thresholds: Thresholds,
    /// Explainer background: sparse feature rows sampled from the training set.
    pub background: SparseRows,
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_PAYLOAD>()
}

impl Artifact {
    /// Encodes in the current format ([`FORMAT_VERSION`]) after checking that the parts agree.
    /// Weights are stored quantised ([`crate::quant`]): lossless for a network that was
    /// [`crate::quant::snap`]ped (training does), rounded otherwise.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.check()?;
        let payload =
            bincode::serde::encode_to_vec(v2::Payload::from_artifact(self), bincode_config())
                .map_err(Error::Encode)?;
        Ok(seal(FORMAT_VERSION, &payload))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        decode(bytes)
    }

    /// Loads bytes that must also hash (SHA-256 over the whole file) to `sha256_hex`, as a
    /// pointer records it. The payload's own digest is checked too, in the same pass, so a
    /// pointer rewritten to match a corrupted file still cannot get it served.
    pub fn from_bytes_with_digest(bytes: &[u8], expected_sha256: &str) -> Result<Self> {
        let computed = sha256_hex(bytes);
        if computed != expected_sha256 {
            return Err(Error::Checksum {
                stored: expected_sha256.to_owned(),
                computed,
            });
        }
        decode(bytes)
    }

    /// The parts must agree with each other; a payload that decodes but does not is rejected
    /// here rather than panicking at prediction time.
    pub fn check(&self) -> Result<()> {
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
        sha256_hex(bytes)
    }
}

/// SHA-256 of `bytes` as lowercase hex: the one digest format of artifacts, pointers, data
/// provenance and store ETags.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Header + payload for `version`.
pub fn seal(version: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(payload));
    out.extend_from_slice(payload);
    out
}

fn decode(bytes: &[u8]) -> Result<Artifact> {
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
        return Err(Error::decode(format!(
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
    let artifact = match version {
        1 => decode_payload::<v1::Payload>(payload)?.into_artifact()?,
        _ => decode_payload::<v2::Payload>(payload)?.into_artifact()?,
    };
    artifact.check()?;
    Ok(artifact)
}

fn decode_payload<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T> {
    let (decoded, used): (T, usize) = bincode::serde::decode_from_slice(payload, bincode_config())
        .map_err(|e| Error::Decode {
            context: "the payload does not match its format version's schema".into(),
            source: Some(e),
        })?;
    if used != payload.len() {
        return Err(Error::decode(format!(
            "payload has {} unread bytes",
            payload.len() - used
        )));
    }
    Ok(decoded)
}

/// A checked part of a payload, or a decode error naming the part.
fn part<T>(what: &str, r: std::result::Result<T, String>) -> Result<T> {
    r.map_err(|e| Error::decode(format!("{what}: {e}")))
}
