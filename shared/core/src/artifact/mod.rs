//! The trained model as one file: a fixed header (magic bytes, format version, payload length,
//! SHA-256 of the payload) followed by a bincode payload in the schema of that format version.
//!
//! Each format version has its own frozen wire types (`v1`, `v2`, `v3`), separate from the
//! in-memory [`Artifact`]: changing an internal type can never silently change or break the file
//! format, and every version this build reads is converted into the same [`Artifact`]. Formats 2
//! and 3 hold what prediction and explanation need (masker, vocabulary, labels, weights,
//! thresholds, explainer background) plus [`ModelInfo`]; training's own record (settings, full
//! metrics, history) travels inside it as JSON text, whose readers tolerate added fields. Format
//! 3 (written now) puts everything but the weight codes first, deflated, so the weights can be
//! unpacked as they download (see `v3`); format 4, the same layout with a sub-word tokenizer,
//! is written only for models with sub-word features, so every other model stays format 3.
//!
//! Every load goes through one [`Decoder`]: fed the file's bytes in whatever pieces they arrive
//! in, it checks the header as soon as it is in, hashes and decodes each piece once, and at the
//! end verifies the payload's own digest (and the whole file's, when a pointer names one). A
//! truncated, foreign or corrupted file is a specific error, never a panic or a huge
//! allocation.

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
mod v3;

pub const MAGIC: &[u8; 8] = b"TAGGERMD";
/// The newest payload layout this build reads and writes (4: format 3's layout, for models with
/// sub-word features; every other model is still written in format 3).
pub const FORMAT_VERSION: u32 = 4;
/// The layout written for models without sub-word features.
pub const BASE_FORMAT_VERSION: u32 = 3;
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
    /// Encodes in format 3, or 4 for a tokenizer with sub-words, after checking that the parts
    /// agree.
    /// Weights are stored quantised ([`crate::quant`]): lossless for a network that was
    /// [`crate::quant::snap`]ped (training does), rounded otherwise.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.check()?;
        Ok(seal(v3::format_for(&self.tokenizer), &v3::encode(self)?))
    }

    /// The same bytes in format 2, the layout before this one: for tests that older files load.
    #[doc(hidden)]
    pub fn to_format2_bytes(&self) -> Result<Vec<u8>> {
        self.check()?;
        let payload =
            bincode::serde::encode_to_vec(v2::Payload::from_artifact(self), bincode_config())
                .map_err(Error::Encode)?;
        Ok(seal(2, &payload))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut decoder = Decoder::new();
        decoder.update(bytes)?;
        decoder.finish()
    }

    /// Loads bytes that must also hash (SHA-256 over the whole file) to `sha256_hex`, as a
    /// pointer records it. The payload's own digest is checked too, in the same pass, so a
    /// pointer rewritten to match a corrupted file still cannot get it served.
    pub fn from_bytes_with_digest(bytes: &[u8], expected_sha256: &str) -> Result<Self> {
        let mut decoder = Decoder::expecting_sha256(expected_sha256);
        decoder.update(bytes)?;
        decoder.finish()
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

/// Decodes an artifact from its bytes as they arrive (a download, a file read in pieces):
/// [`Decoder::update`] with each piece in order, then [`Decoder::finish`].
///
/// Each byte is hashed and decoded once, when it arrives: format 3's weights are unpacked
/// piece by piece, so the artifact is ready as soon as its last byte is in; formats 1 and 2
/// (one bincode value) are collected and decoded at the end.
///
/// `update` fails early only when the header shows the bytes are not an artifact this build
/// reads (magic, version). Anything wrong further in is reported by `finish`, after both
/// digests: a corrupted file is always named as corrupt, whatever its damage decodes to.
#[derive(Debug)]
pub struct Decoder {
    /// SHA-256 of the whole file, and the digest a pointer expects of it.
    whole: Option<(Sha256, String)>,
    header: Vec<u8>,
    payload_digest: Sha256,
    /// Payload bytes received (those beyond the declared length included).
    received: u64,
    state: State,
}

#[derive(Debug)]
enum State {
    Header,
    /// Formats 1 and 2: the payload, decoded at the end.
    Whole(u32, Vec<u8>),
    V3(Box<v3::Streaming>),
    /// Decoding failed; bytes are still hashed so that `finish` can tell corruption apart.
    Failed(Error),
}

/// The longest stretch a format 1 or 2 payload grows by at once when its declared length is
/// large: a crafted header cannot make the decoder reserve memory the bytes never fill.
const MAX_RESERVE: usize = 64 << 20;

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Self {
        Decoder {
            whole: None,
            header: Vec::with_capacity(HEADER_LEN),
            payload_digest: Sha256::new(),
            received: 0,
            state: State::Header,
        }
    }

    /// A decoder that also checks the SHA-256 (lowercase hex) of the whole file, as a pointer
    /// records it.
    pub fn expecting_sha256(expected: &str) -> Self {
        Decoder {
            whole: Some((Sha256::new(), expected.to_owned())),
            ..Self::new()
        }
    }

    /// The next piece of the file.
    pub fn update(&mut self, mut bytes: &[u8]) -> Result<()> {
        if let Some((hasher, _)) = &mut self.whole {
            hasher.update(bytes);
        }
        if self.header.len() < HEADER_LEN {
            let take = (HEADER_LEN - self.header.len()).min(bytes.len());
            self.header.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            check_magic(&self.header)?;
            if self.header.len() < HEADER_LEN {
                return Ok(());
            }
            self.start()?;
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let declared = self.declared();
        let within = declared
            .saturating_sub(self.received)
            .min(bytes.len() as u64) as usize;
        self.received += bytes.len() as u64;
        let bytes = &bytes[..within];
        self.payload_digest.update(bytes);
        let failed = match &mut self.state {
            State::Whole(_, buf) => {
                buf.extend_from_slice(bytes);
                None
            }
            State::V3(stream) => stream.feed(bytes).err(),
            State::Header | State::Failed(_) => None,
        };
        if let Some(e) = failed {
            self.state = State::Failed(e);
        }
        Ok(())
    }

    fn declared(&self) -> u64 {
        u64::from_le_bytes(self.header[12..20].try_into().expect("8-byte slice"))
    }

    /// The header is in: check its version and get ready for the payload.
    fn start(&mut self) -> Result<()> {
        let version = check_version(&self.header)?;
        let declared = self.declared();
        self.state = match version {
            1 | 2 => State::Whole(
                version,
                Vec::with_capacity(
                    usize::try_from(declared).map_or(MAX_RESERVE, |d| d.min(MAX_RESERVE)),
                ),
            ),
            _ => State::V3(Box::new(v3::Streaming::new(declared, version))),
        };
        Ok(())
    }

    /// The artifact, after every check: the whole file's digest (when expected), a complete
    /// header, exactly the declared payload, the payload's digest, then its decoding and the
    /// parts' agreement.
    pub fn finish(self) -> Result<Artifact> {
        if let Some((hasher, expected)) = self.whole {
            let computed = hex::encode(hasher.finalize());
            if computed != expected {
                return Err(Error::Checksum {
                    stored: expected,
                    computed,
                });
            }
        }
        check_magic(&self.header)?;
        if self.header.len() < HEADER_LEN {
            return Err(Error::Truncated {
                len: self.header.len(),
                needed: HEADER_LEN,
            });
        }
        let declared = u64::from_le_bytes(self.header[12..20].try_into().expect("8-byte slice"));
        if self.received < declared {
            let needed = usize::try_from(declared)
                .ok()
                .and_then(|d| d.checked_add(HEADER_LEN))
                .unwrap_or(usize::MAX);
            return Err(Error::Truncated {
                len: HEADER_LEN + self.received as usize,
                needed,
            });
        }
        if self.received > declared {
            return Err(Error::decode(format!(
                "{} bytes follow the {declared}-byte payload",
                self.received - declared
            )));
        }
        let stored = &self.header[20..52];
        let computed = self.payload_digest.finalize();
        if stored != computed.as_slice() {
            return Err(Error::Checksum {
                stored: hex::encode(stored),
                computed: hex::encode(computed),
            });
        }
        let artifact = match self.state {
            State::Whole(1, payload) => decode_payload::<v1::Payload>(&payload)?.into_artifact()?,
            State::Whole(_, payload) => decode_payload::<v2::Payload>(&payload)?.into_artifact()?,
            State::V3(stream) => stream.finish()?,
            State::Failed(e) => return Err(e),
            // `update` said why (and the caller went on regardless): say it again.
            State::Header => {
                check_magic(&self.header)?;
                check_version(&self.header)?;
                return Err(Error::decode("the header was refused"));
            }
        };
        artifact.check()?;
        Ok(artifact)
    }
}

/// The magic bytes, as far as `header` has them.
fn check_magic(header: &[u8]) -> Result<()> {
    let magic_len = MAGIC.len().min(header.len());
    if header[..magic_len] != MAGIC[..magic_len] {
        return Err(Error::BadMagic {
            found: header[..magic_len].to_vec(),
            expected: MAGIC,
        });
    }
    Ok(())
}

/// The format version of a complete header, if this build reads it.
fn check_version(header: &[u8]) -> Result<u32> {
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4-byte slice"));
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
    Ok(version)
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
