//! Counting tokens over many texts, in chunks on every core, and ranking them into a
//! vocabulary.

use rustc_hash::FxHashMap;

use super::*;

// ---------------------------------------------------------------------------------------------
// Fitting

/// Every Keras token with its total count, in the order Keras 2 ranks them: count descending,
/// ties in first-seen order (Python's stable sort over the `OrderedDict` of `word_counts`).
pub(crate) fn keras_word_counts(chunks: &[&[&str]]) -> Vec<(String, u64)> {
    // Per chunk: tokens by first-seen id, and their counts.
    let per = per_chunk(chunks, |chunk| {
        let mut interner = Interner::default();
        let mut counts: Vec<u64> = Vec::new();
        let mut buf = LowerBuf::new();
        for &text in chunk {
            keras_tokens(text, |tok| {
                let (id, new) = interner.intern(tok, &mut buf);
                if new {
                    counts.push(0);
                }
                counts[id as usize] += 1;
            });
        }
        (interner.into_names(), counts)
    });
    // First seen overall = first chunk that saw it, then its id there.
    let mut merged: FxHashMap<&str, (u64, usize, u32)> = FxHashMap::default();
    for (chunk, (names, counts)) in per.iter().enumerate() {
        for (id, (word, &count)) in names.iter().zip(counts).enumerate() {
            merged
                .entry(word.as_ref())
                .and_modify(|e| e.0 += count)
                .or_insert((count, chunk, id as u32));
        }
    }
    let mut ranked: Vec<(&str, (u64, usize, u32))> = merged.into_iter().collect();
    ranked.sort_unstable_by(|a, b| {
        b.1 .0
            .cmp(&a.1 .0)
            .then((a.1 .1, a.1 .2).cmp(&(b.1 .1, b.1 .2)))
    });
    ranked
        .into_iter()
        .map(|(w, (c, _, _))| (w.to_string(), c))
        .collect()
}

/// In how many texts a token occurs, and in how many it occurs at least as often as each of
/// [`REPEAT_LEVELS`]: `see` it once per token occurrence, with the text's number.
#[derive(Clone, Copy, Default)]
pub(crate) struct DocCount {
    pub(crate) docs: u32,
    pub(crate) last_doc: u32,
    /// Occurrences in text `last_doc` so far.
    pub(crate) in_doc: u32,
    pub(crate) repeat_docs: [u32; 2],
}

impl DocCount {
    /// Counts one occurrence in text `doc`; returns the repeat level this occurrence reached
    /// (`Some(0)` at the second occurrence in the text, `Some(1)` at the fourth).
    #[inline]
    pub(crate) fn see(&mut self, doc: u32) -> Option<usize> {
        if self.last_doc != doc {
            self.last_doc = doc;
            self.docs += 1;
            self.in_doc = 0;
        }
        self.in_doc += 1;
        let level = REPEAT_LEVELS.iter().position(|&l| l == self.in_doc)?;
        self.repeat_docs[level] += 1;
        Some(level)
    }
}

/// [`REPEATS_MIN_MEAN_TOKENS`]; tests may lower it ([`MIN_MEAN_TOKENS`]) to exercise repeat
/// features on short texts.
#[cfg(not(test))]
fn repeats_min_mean_tokens() -> u64 {
    REPEATS_MIN_MEAN_TOKENS
}

#[cfg(test)]
fn repeats_min_mean_tokens() -> u64 {
    MIN_MEAN_TOKENS.with(std::cell::Cell::get)
}

#[cfg(test)]
thread_local! {
    pub(crate) static MIN_MEAN_TOKENS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// In [`WordCounts::row_ids`]: a token id with `REPEAT_FLAG << level` set stands for the
/// token's repeat feature of that level. Ids stay far below: a chunk would need 2^30 distinct
/// tokens to reach the flags.
pub(crate) const REPEAT_FLAG: u32 = 1 << 30;

/// Index of a [`WordCounts::row_ids`] entry in the per-chunk feature table of
/// [`words_vocabulary_of`] (three slots per token: itself, then its repeat levels).
#[inline]
pub(crate) fn slot_of(id: u32) -> usize {
    let level = (id >> 30) as usize;
    (id & (REPEAT_FLAG - 1)) as usize * 3 + level.min(2)
}

pub(crate) struct WordCounts<'a> {
    /// Tokens by id (first-seen order within the chunk).
    pub(crate) names: Vec<Cow<'a, str>>,
    pub(crate) docs: Vec<DocCount>,
    /// (id1, id2) -> document count
    pub(crate) pairs: FxHashMap<u64, DocCount>,
    /// With `keep_rows`: each text's distinct token ids, text after text (`row_lens` long each),
    /// so the texts need not be tokenized again to encode them; with repeats, also the flagged
    /// ids of the repeat levels reached ([`REPEAT_FLAG`]).
    pub(crate) row_ids: Vec<u32>,
    pub(crate) row_lens: Vec<u32>,
    /// Sub-word key -> document count (empty without sub-words).
    pub(crate) subwords: FxHashMap<u128, DocCount>,
    /// Texts and token occurrences counted.
    pub(crate) texts: u64,
    pub(crate) tokens: u64,
}

pub(crate) fn count_words<'a>(
    chunk: &[&'a str],
    bigrams: bool,
    repeats: bool,
    subwords: usize,
    keep_rows: bool,
) -> WordCounts<'a> {
    let mut grams: FxHashMap<u128, DocCount> = FxHashMap::default();
    let mut chars = Vec::new();
    let mut lower = LowerBuf::new();
    let mut interner = Interner::default();
    let mut docs: Vec<DocCount> = Vec::new();
    let mut pairs: FxHashMap<u64, DocCount> = FxHashMap::default();
    let mut buf = LowerBuf::new();
    let mut row_ids: Vec<u32> = Vec::new();
    let mut row_lens: Vec<u32> = Vec::with_capacity(if keep_rows { chunk.len() } else { 0 });
    let mut tokens = 0u64;
    for (doc, &text) in chunk.iter().enumerate() {
        // Texts are numbered from 1 so the initial `last_doc` of 0 never matches.
        let doc = doc as u32 + 1;
        let mut prev = NO_PART;
        let row_start = row_ids.len();
        word_tokens(text, |tok| {
            let (id, new) = interner.intern(tok, &mut buf);
            tokens += 1;
            if new {
                docs.push(DocCount::default());
            }
            let d = &mut docs[id as usize];
            if keep_rows && d.last_doc != doc {
                row_ids.push(id);
            }
            let level = d.see(doc);
            if let (true, true, Some(level)) = (keep_rows, repeats, level) {
                row_ids.push(id | (REPEAT_FLAG << level));
            }
            if subwords > 0 {
                subwords_of(lower.lower(tok).as_str(), subwords, &mut chars, |key| {
                    grams.entry(key).or_default().see(doc);
                });
            }
            if bigrams {
                if prev != NO_PART {
                    pairs.entry(pair_key(prev, id)).or_default().see(doc);
                }
                prev = id;
            }
        });
        if keep_rows {
            row_lens.push((row_ids.len() - row_start) as u32);
        }
    }
    WordCounts {
        names: interner.into_names(),
        docs,
        pairs,
        row_ids,
        row_lens,
        subwords: grams,
        texts: chunk.len() as u64,
        tokens,
    }
}

/// A vocabulary candidate's name without building the bigram string: `"a b"` is `Bi(a, b)`,
/// `"a×2"` is `Rep(a, "×2")`.
#[derive(Clone, Copy)]
pub(crate) enum Name<'a> {
    Uni(&'a str),
    Bi(&'a str, &'a str),
    Rep(&'a str, &'static str),
}

/// The suffixes of the repeat levels' names.
const REPEAT_SUFFIXES: [&str; 2] = ["×2", "×4"];

impl Name<'_> {
    pub(crate) fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        let (a, b, suffix) = match *self {
            Name::Uni(a) => (a, None, ""),
            Name::Bi(a, b) => (a, Some(b), ""),
            Name::Rep(a, suffix) => (a, None, suffix),
        };
        a.bytes()
            .chain(
                b.into_iter()
                    .flat_map(|b| std::iter::once(b' ').chain(b.bytes())),
            )
            .chain(suffix.bytes())
    }

    /// Byte order of the joined names, which is `str`'s order.
    pub(crate) fn cmp(&self, other: &Name<'_>) -> std::cmp::Ordering {
        match (self, other) {
            (Name::Uni(a), Name::Uni(b)) => a.cmp(b),
            _ => self.bytes().cmp(other.bytes()),
        }
    }

    pub(crate) fn into_string(self) -> String {
        match self {
            Name::Uni(a) => a.to_string(),
            Name::Bi(a, b) => format!("{a} {b}"),
            Name::Rep(a, suffix) => format!("{a}{suffix}"),
        }
    }
}

pub(crate) fn words_vocabulary(
    chunks: &[&[&str]],
    min_count: u64,
    max_features: usize,
    bigrams: bool,
    repeats: bool,
    subwords: usize,
) -> Vec<String> {
    let counts = per_chunk(chunks, |chunk| {
        count_words(chunk, bigrams, repeats, subwords, false)
    });
    words_vocabulary_of(counts, min_count, max_features, bigrams, repeats).0
}

/// The vocabulary of counted chunks, and per chunk its token ids' features (0 = not kept; the
/// unigram features and their repeat levels', three slots per id ([`slot_of`]), enough to
/// encode the texts when there are no bigrams).
pub(crate) fn words_vocabulary_of(
    counts: Vec<WordCounts<'_>>,
    min_count: u64,
    max_features: usize,
    bigrams: bool,
    repeats: bool,
) -> (Vec<String>, Vec<Vec<u32>>) {
    let texts: u64 = counts.iter().map(|c| c.texts).sum();
    let tokens: u64 = counts.iter().map(|c| c.tokens).sum();
    let repeats = repeats && tokens >= repeats_min_mean_tokens() * texts.max(1);
    let mut gram_docs: FxHashMap<u128, u64> = FxHashMap::default();
    for c in &counts {
        for (&key, d) in &c.subwords {
            *gram_docs.entry(key).or_default() += u64::from(d.docs);
        }
    }
    // Named before the candidates borrow them (sub-words are no slot of `feature_of`).
    let gram_names: Vec<(u64, String)> = gram_docs
        .into_iter()
        .filter(|&(_, d)| d >= min_count)
        .map(|(key, d)| (d, subword_name(key)))
        .collect();
    let (word_lists, mut pair_maps): (Vec<_>, Vec<_>) = counts
        .into_iter()
        .map(|c| ((c.names, c.docs), c.pairs))
        .unzip();
    // Merge into the first chunk's numbering: global id = first chunk's id for its tokens (so
    // its bigram map is reused as is), then new ids for tokens the others add.
    let mut names: Vec<&str> = Vec::new();
    // token -> (documents, global id, documents per repeat level)
    let mut merged: FxHashMap<&str, (u64, u32, [u64; 2])> = FxHashMap::default();
    let mut local_to_global: Vec<Vec<u32>> = Vec::with_capacity(word_lists.len());
    for (words, docs) in &word_lists {
        let mut map = Vec::with_capacity(words.len());
        for (word, count) in words.iter().zip(docs) {
            let (word, docs) = (word.as_ref(), u64::from(count.docs));
            let e = merged.entry(word).or_insert_with(|| {
                names.push(word);
                (0, names.len() as u32 - 1, [0; 2])
            });
            e.0 += docs;
            for (r, &c) in e.2.iter_mut().zip(&count.repeat_docs) {
                *r += u64::from(c);
            }
            map.push(e.1);
        }
        local_to_global.push(map);
    }
    // (documents, name, global slot of a unigram or repeat level (id * 3 + level), or NO_PART)
    let mut candidates: Vec<(u64, Name<'_>, u32)> = merged
        .iter()
        .filter(|(_, &(d, _, _))| d >= min_count)
        .map(|(&w, &(d, id, _))| (d, Name::Uni(w), id * 3))
        .collect();
    if repeats {
        for (&w, &(_, id, levels)) in &merged {
            for (level, &d) in levels.iter().enumerate() {
                if d >= min_count {
                    candidates.push((
                        d,
                        Name::Rep(w, REPEAT_SUFFIXES[level]),
                        id * 3 + 1 + level as u32,
                    ));
                }
            }
        }
    }
    if bigrams {
        let (first, rest) = pair_maps.split_at_mut(1);
        let pair_docs = &mut first[0];
        for (pairs, map) in rest.iter().zip(&local_to_global[1..]) {
            for (&key, count) in pairs {
                let (a, b) = ((key >> 32) as usize, (key & 0xffff_ffff) as usize);
                let e = pair_docs.entry(pair_key(map[a], map[b])).or_default();
                e.docs = e.docs.saturating_add(count.docs);
            }
        }
        candidates.extend(
            pair_docs
                .iter()
                .filter(|(_, c)| u64::from(c.docs) >= min_count)
                .map(|(&key, c)| {
                    let (a, b) = ((key >> 32) as usize, (key & 0xffff_ffff) as usize);
                    (u64::from(c.docs), Name::Bi(names[a], names[b]), NO_PART)
                }),
        );
    }
    let order = |a: &(u64, Name<'_>, u32), b: &(u64, Name<'_>, u32)| {
        b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1))
    };
    if gram_names.is_empty() {
        if candidates.len() > max_features {
            candidates.select_nth_unstable_by(max_features, order);
            candidates.truncate(max_features);
        }
        candidates.sort_unstable_by(order);
    } else {
        // Sub-words take the places of rarer words, in rank order: the vocabulary keeps the
        // size the words alone give it (and so the artifact and the first layer's cost), and
        // words in at least `protect` texts stay whatever outranks them.
        let size = candidates.len().min(max_features);
        let protect = (min_count + 1).max(texts / SUBWORD_PROTECT_PER_TEXTS);
        let is_word = candidates.len();
        candidates.extend(
            gram_names
                .iter()
                .map(|(d, name)| (*d, Name::Uni(name.as_str()), NO_PART)),
        );
        let protected = |c: &(u64, Name<'_>, u32), i: usize| i < is_word && c.0 >= protect;
        let mut free = size.saturating_sub(
            candidates
                .iter()
                .enumerate()
                .filter(|&(i, c)| protected(c, i))
                .count(),
        );
        let mut ranked: Vec<(usize, (u64, Name<'_>, u32))> =
            candidates.into_iter().enumerate().collect();
        ranked.sort_unstable_by(|a, b| order(&a.1, &b.1));
        candidates = ranked
            .into_iter()
            .filter(|(i, c)| {
                let keep = protected(c, *i) || free > 0;
                if keep && !protected(c, *i) {
                    free -= 1;
                }
                keep
            })
            .map(|(_, c)| c)
            .take(size)
            .collect();
    }
    let mut feature_of = vec![0u32; names.len() * 3];
    for (rank, c) in candidates.iter().enumerate() {
        if c.2 != NO_PART {
            feature_of[c.2 as usize] = rank as u32 + 1;
        }
    }
    let local_features = local_to_global
        .iter()
        .map(|map| {
            map.iter()
                .flat_map(|&g| {
                    feature_of[g as usize * 3..g as usize * 3 + 3]
                        .iter()
                        .copied()
                })
                .collect()
        })
        .collect();
    let vocab = candidates
        .into_iter()
        .map(|(_, w, _)| w.into_string())
        .collect();
    (vocab, local_features)
}
