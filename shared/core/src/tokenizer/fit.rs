//! Learning a vocabulary from training texts (and, for the default config, encoding those texts
//! in the same pass).

use crate::error::Result;
use crate::parallel::{chunk_by_bytes, default_chunk_count, per_chunk};
use crate::sparse::SparseRows;

use super::counting::*;
use super::{Tokenizer, TokenizerConfig};

impl Tokenizer {
    /// Learns the vocabulary of `texts` under `config`.
    pub fn fit<'a>(
        config: &TokenizerConfig,
        texts: impl IntoIterator<Item = &'a str>,
    ) -> Result<Tokenizer> {
        let texts: Vec<&'a str> = texts.into_iter().collect();
        Tokenizer::fit_in_chunks(config, &texts, default_chunk_count(&texts))
    }

    /// [`fit`](Self::fit) over `n_chunks` threads; the result does not depend on `n_chunks`.
    pub(crate) fn fit_in_chunks(
        config: &TokenizerConfig,
        texts: &[&str],
        n_chunks: usize,
    ) -> Result<Tokenizer> {
        config.validate()?;
        let chunks = chunk_by_bytes(texts, n_chunks);
        let vocab = match *config {
            TokenizerConfig::Keras { num_words } => {
                let mut ranked = keras_word_counts(&chunks);
                ranked.truncate(num_words - 1);
                ranked.into_iter().map(|(w, _)| w).collect()
            }
            TokenizerConfig::Words {
                min_count,
                max_features,
                bigrams,
                repeats,
                subwords,
            } => words_vocabulary(
                &chunks,
                min_count as u64,
                max_features,
                bigrams,
                repeats,
                subwords,
            ),
        };
        Ok(Tokenizer::from_vocab(config.clone(), vocab))
    }

    /// [`fit`](Self::fit) and [`encode_all`](Self::encode_all) of the same texts, tokenizing
    /// them once: for the default unigram `Words` config, fitting keeps each text's token ids
    /// and maps them to features afterwards (same rows as `encode_all`, about half the work);
    /// other configs fit, then encode.
    pub fn fit_encode(config: &TokenizerConfig, texts: &[&str]) -> Result<(Tokenizer, SparseRows)> {
        Tokenizer::fit_encode_in_chunks(config, texts, default_chunk_count(texts))
    }

    /// [`fit_encode`](Self::fit_encode) over `n_chunks` threads; the result does not depend on
    /// `n_chunks`.
    pub(crate) fn fit_encode_in_chunks(
        config: &TokenizerConfig,
        texts: &[&str],
        n_chunks: usize,
    ) -> Result<(Tokenizer, SparseRows)> {
        let TokenizerConfig::Words {
            min_count,
            max_features,
            bigrams: false,
            repeats,
            subwords: 0,
        } = *config
        else {
            let tokenizer = Tokenizer::fit_in_chunks(config, texts, n_chunks)?;
            let rows = tokenizer.encode_all(texts.iter().copied());
            return Ok((tokenizer, rows));
        };
        config.validate()?;
        let chunks = chunk_by_bytes(texts, n_chunks);
        let mut counts = per_chunk(&chunks, |chunk| count_words(chunk, false, repeats, 0, true));
        let ids: Vec<(Vec<u32>, Vec<u32>)> = counts
            .iter_mut()
            .map(|c| {
                (
                    std::mem::take(&mut c.row_ids),
                    std::mem::take(&mut c.row_lens),
                )
            })
            .collect();
        let (vocab, features) =
            words_vocabulary_of(counts, min_count as u64, max_features, false, repeats);
        let nnz = ids.iter().map(|(flat, _)| flat.len()).sum();
        let mut rows = SparseRows::with_capacity(texts.len(), nnz);
        let mut row = Vec::new();
        for ((flat, lens), feature_of) in ids.iter().zip(&features) {
            let mut at = 0;
            for &len in lens {
                let len = len as usize;
                row.clear();
                row.extend(
                    flat[at..at + len]
                        .iter()
                        .map(|&id| feature_of[slot_of(id)])
                        .filter(|&f| f != 0),
                );
                rows.push_row(&row);
                at += len;
            }
        }
        Ok((Tokenizer::from_vocab(config.clone(), vocab), rows))
    }
}
