//! Artifact files: round trips, the header, and every way a damaged file is refused.

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use tagger_core::artifact::{
    seal, Artifact, Decoder, BASE_FORMAT_VERSION, FORMAT_VERSION, HEADER_LEN, MAGIC,
    MIN_FORMAT_VERSION,
};
use tagger_core::explain::WordOptions;
use tagger_core::predictor::PredictOptions;
use tagger_core::tokenizer::{Tokenizer, TokenizerConfig};
use tagger_core::{Error, Predictor};

fn tiny_artifact() -> Artifact {
    tagger_testkit::tiny_artifact(1)
}

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
    seal(version, payload)
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
    // Loaded, the first layer stays coded; everything below must not tell the difference.
    assert!(original.model.coded_first().is_none());
    let coded = loaded
        .model
        .coded_first()
        .expect("a loaded first layer stays coded");
    assert_eq!(coded.to_array(), original.model.layers()[0].weights);
    for q in QUESTIONS {
        let before = Predictor::new(original.clone())
            .predict(q, &all_scores())
            .unwrap();
        let after = Predictor::new(loaded.clone())
            .predict(q, &all_scores())
            .unwrap();
        assert_eq!(before, after, "prediction for {q:?} changed on reload");
    }
    // The reload must also explain exactly as before (background and model survive).
    let tags = original.labels.names().to_vec();
    let before = Predictor::new(original.clone())
        .explain(QUESTIONS[0], &tags, &WordOptions::default())
        .unwrap();
    let after = Predictor::new(loaded.clone())
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
        BASE_FORMAT_VERSION,
        "a model without sub-words is written in format 3"
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
    let err = Artifact::from_bytes(&with_declared_len(bytes.clone(), payload_len + 1)).unwrap_err();
    assert!(
        matches!(err, Error::Truncated { len, needed } if len == bytes.len() && needed == bytes.len() + 1),
        "{err:?}"
    );
}

#[test]
fn rejects_a_huge_declared_length_without_allocating() {
    let bytes = encoded();
    for declared in [u64::MAX, u64::MAX - HEADER_LEN as u64, 1 << 40] {
        let err = Artifact::from_bytes(&with_declared_len(bytes.clone(), declared)).unwrap_err();
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
        matches!(&err, Error::Decode { context, .. } if context.contains("4 bytes follow")),
        "{err:?}"
    );
}

#[test]
fn rejects_a_well_sealed_payload_that_is_not_an_artifact() {
    let err = Artifact::from_bytes(&sealed(FORMAT_VERSION, b"not bincode at all")).unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    let err = Artifact::from_bytes(&sealed(FORMAT_VERSION, &[])).unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
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
            let decoded = Predictor::new(decoded);
            for q in QUESTIONS {
                let _ = decoded.predict(q, &all_scores());
                let _ = decoded.explain(q, &tags, &WordOptions::default());
            }
        }
    }
}

/// A pointer rewritten to match a corrupted file must not get it served: the payload's own
/// digest is checked whatever the pointer says.
#[test]
fn a_corrupted_payload_is_refused_even_when_the_pointer_digest_matches_it() {
    let mut bytes = encoded();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let rewritten_pointer_digest = Artifact::sha256_hex(&bytes);
    assert!(matches!(
        Artifact::from_bytes_with_digest(&bytes, &rewritten_pointer_digest),
        Err(Error::Checksum { .. })
    ));
}

#[test]
fn repeat_features_survive_a_round_trip() {
    // The format has no field for the option: the reader infers it from the vocabulary.
    let mut artifact = tiny_artifact();
    let TokenizerConfig::Words {
        min_count,
        max_features,
        bigrams,
        ..
    } = *artifact.tokenizer.config()
    else {
        panic!("the tiny model uses the word tokenizer");
    };
    let mut vocab = artifact.tokenizer.vocabulary().to_vec();
    let word = vocab[0].clone();
    let repeat = vocab.len() as u32;
    *vocab.last_mut().unwrap() = format!("{word}×2");
    let config = TokenizerConfig::Words {
        min_count,
        max_features,
        bigrams,
        repeats: true,
        subwords: 0,
    };
    artifact.tokenizer = Tokenizer::from_parts(config, vocab).unwrap();
    let question = format!("{word} and {word} again");
    assert!(artifact.tokenizer.encode(&question).contains(&repeat));
    let loaded = Artifact::from_bytes(&artifact.to_bytes().unwrap()).unwrap();
    assert_eq!(loaded, artifact);
    assert_eq!(
        Predictor::new(loaded)
            .predict(&question, &all_scores())
            .unwrap(),
        Predictor::new(artifact)
            .predict(&question, &all_scores())
            .unwrap()
    );
}

/// The tiny artifact with its vocabulary's last entry replaced by a sub-word of its first word
/// plus "zq" (3 characters): written in format 4.
fn subword_artifact() -> (Artifact, String) {
    let mut artifact = tiny_artifact();
    let config = artifact.tokenizer.config().clone().with_subwords(3);
    let mut vocab = artifact.tokenizer.vocabulary().to_vec();
    let word = format!("{}zq", vocab[0]);
    let chars: Vec<char> = word.chars().collect();
    let n = vocab.len();
    vocab[n - 1] = format!("·{}", chars[chars.len() - 3..].iter().collect::<String>());
    artifact.tokenizer = Tokenizer::from_parts(config, vocab).unwrap();
    (artifact, word)
}

#[test]
fn subword_models_are_written_in_format_4_and_read_back() {
    let (artifact, word) = subword_artifact();
    let last = artifact.tokenizer.vocabulary().len() as u32;
    assert!(artifact.tokenizer.encode(&word).contains(&last));
    let bytes = artifact.to_bytes().unwrap();
    assert_eq!(
        u32::from_le_bytes(bytes[8..12].try_into().unwrap()),
        FORMAT_VERSION
    );
    let loaded = Artifact::from_bytes(&bytes).unwrap();
    assert_eq!(loaded, artifact);
    assert_eq!(loaded.to_bytes().unwrap(), bytes);
    for piece in [1, 7, 4096] {
        assert_eq!(decode_in_pieces(&bytes, piece, None).unwrap(), artifact);
    }
    assert_eq!(
        Predictor::new(loaded)
            .predict(&word, &all_scores())
            .unwrap(),
        Predictor::new(artifact)
            .predict(&word, &all_scores())
            .unwrap()
    );
}

#[test]
fn a_format_3_header_on_a_subword_payload_is_refused() {
    // A reader of format 3 alone would refuse the version; this build refuses the mismatch.
    let (artifact, _) = subword_artifact();
    let bytes = artifact.to_bytes().unwrap();
    let relabelled = seal(BASE_FORMAT_VERSION, &bytes[HEADER_LEN..]);
    let err = Artifact::from_bytes(&relabelled).unwrap_err();
    assert!(err.to_string().contains("only format 4"), "{err}");
}

const FORMAT1: &[u8] = include_bytes!("fixtures/format1/tiny.bin");

/// Feeds `bytes` to a decoder in pieces of `piece` bytes, as a download delivers them.
fn decode_in_pieces(bytes: &[u8], piece: usize, digest: Option<&str>) -> Result<Artifact, Error> {
    let mut decoder = match digest {
        Some(d) => Decoder::expecting_sha256(d),
        None => Decoder::new(),
    };
    for chunk in bytes.chunks(piece) {
        decoder.update(chunk)?;
    }
    decoder.finish()
}

/// Whatever the pieces a download arrives in, the decoder builds the artifact that decoding the
/// whole file at once does, for the current format and both older ones.
#[test]
fn decoding_in_pieces_gives_the_artifact_of_decoding_at_once() {
    let a = tiny_artifact();
    for bytes in [
        a.to_bytes().unwrap(),
        a.to_format2_bytes().unwrap(),
        FORMAT1.to_vec(),
    ] {
        let whole = Artifact::from_bytes(&bytes).unwrap();
        let digest = Artifact::sha256_hex(&bytes);
        for piece in [1, 2, 3, 5, 8, 51, 52, 53, 61, 1000, 4096, bytes.len()] {
            assert_eq!(
                decode_in_pieces(&bytes, piece, Some(&digest)).unwrap(),
                whole,
                "pieces of {piece}"
            );
        }
    }
}

/// With the digest a pointer records, one flipped byte anywhere after the magic and version
/// (length, payload digest, meta block, weight codes) is named as corruption, also where the
/// damage would break decoding first: the decoder keeps hashing past a decoding error.
#[test]
fn with_a_pointer_digest_any_flipped_byte_is_named_as_corruption() {
    let bytes = encoded();
    let digest = Artifact::sha256_hex(&bytes);
    for at in (12..bytes.len()).step_by(3) {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x40;
        match decode_in_pieces(&flipped, 100, Some(&digest)) {
            Err(Error::Checksum { stored, .. }) => assert_eq!(stored, digest, "byte {at}"),
            other => panic!("byte {at}: expected a checksum error, got {other:?}"),
        }
    }
}

#[test]
fn a_download_cut_short_is_truncated_naming_the_full_length() {
    let bytes = encoded();
    for cut in [
        HEADER_LEN + 1,
        HEADER_LEN + 9,
        bytes.len() / 2,
        bytes.len() - 1,
    ] {
        let err = decode_in_pieces(&bytes[..cut], 7, None).unwrap_err();
        assert!(
            matches!(err, Error::Truncated { len, needed } if len == cut && needed == bytes.len()),
            "{cut}: {err:?}"
        );
    }
}

/// A foreign body (an HTML error page, another format) stops the download at its first bytes.
#[test]
fn a_foreign_body_is_refused_by_its_first_bytes() {
    let mut decoder = Decoder::new();
    assert!(matches!(
        decoder.update(b"<html>"),
        Err(Error::BadMagic { .. })
    ));
    let mut newer = encoded();
    newer[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let mut decoder = Decoder::new();
    assert!(matches!(
        decoder.update(&newer[..HEADER_LEN]),
        Err(Error::VersionTooNew { .. })
    ));
    // A caller that goes on regardless still gets the error, not a panic or an artifact.
    decoder.update(&newer[HEADER_LEN..]).unwrap();
    assert!(matches!(decoder.finish(), Err(Error::VersionTooNew { .. })));
}

/// Format 3's meta block is deflated: its declared sizes are checked before anything is
/// reserved, and a block that inflates to a different size is refused.
#[test]
fn format3_refuses_a_meta_block_whose_frame_lies() {
    let bytes = encoded();
    let payload = &bytes[HEADER_LEN..];
    let meta_len = u32::from_le_bytes(payload[..4].try_into().unwrap());
    let raw_len = u32::from_le_bytes(payload[4..8].try_into().unwrap());
    for (packed, raw) in [
        (meta_len, raw_len + 1),
        (meta_len, raw_len - 1),
        (u32::MAX, raw_len),
        (meta_len - 1, raw_len),
    ] {
        let mut p = payload.to_vec();
        p[..4].copy_from_slice(&packed.to_le_bytes());
        p[4..8].copy_from_slice(&raw.to_le_bytes());
        let err = Artifact::from_bytes(&sealed(FORMAT_VERSION, &p)).unwrap_err();
        assert!(
            matches!(err, Error::Decode { .. }),
            "{packed} {raw}: {err:?}"
        );
    }
}
