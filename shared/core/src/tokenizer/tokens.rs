//! Splitting text into tokens (Keras' rules and the word rules), lowercasing without
//! allocating, and the token maps and interner the vocabulary is built with.

use rustc_hash::FxHashMap;

use super::*;

// ---------------------------------------------------------------------------------------------
// Token streams

/// Keras 2 `Tokenizer` defaults: `filters='!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'`, `split=' '`.
pub(crate) const KERAS_SEPARATORS: [bool; 256] = {
    let mut t = [false; 256];
    let filters = b"!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n ";
    let mut i = 0;
    while i < filters.len() {
        t[filters[i] as usize] = true;
        i += 1;
    }
    t
};

/// Keras's `text_to_word_sequence` without the lowercasing: every filter character becomes the
/// split character ' ', then the text is split on ' ' and empty pieces are dropped. Lowercasing
/// before or after splitting gives the same tokens (no character lowercases to or from a filter
/// character), apart from Greek final sigma next to a case-ignorable filter such as `.`, which
/// Python decides over the whole text and we decide per token.
pub(crate) fn keras_tokens<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    let mut start = None;
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if KERAS_SEPARATORS[b as usize] {
            if let Some(s) = start.take() {
                f(&text[s..i]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        f(&text[s..]);
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Class {
    Sep,
    /// Letters, digits, `_`.
    Word,
    /// `#` and `+`: part of a token anywhere (`c#`, `c++`, `#include`).
    Mark,
    /// `.` and `-`: part of a token inside it (`node.js`, `python-3.x`), stripped at its ends
    /// except a single leading `.` (`.net`).
    Joiner,
}

pub(crate) const WORD_CLASSES: [Class; 128] = {
    let mut t = [Class::Sep; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphanumeric() || c == b'_' {
            Class::Word
        } else if c == b'#' || c == b'+' {
            Class::Mark
        } else if c == b'.' || c == b'-' {
            Class::Joiner
        } else {
            Class::Sep
        };
        b += 1;
    }
    t
};

/// Class and byte length of the character at byte `i` (a char boundary) of `text`.
#[inline]
pub(crate) fn class_at(text: &str, i: usize) -> (Class, usize) {
    let bytes = text.as_bytes();
    let b = bytes[i];
    if b < 0x80 {
        // A run of dots is punctuation ("wait...what"), not a joiner.
        if b == b'.' && (bytes.get(i + 1) == Some(&b'.') || (i > 0 && bytes[i - 1] == b'.')) {
            return (Class::Sep, 1);
        }
        return (WORD_CLASSES[b as usize], 1);
    }
    match text[i..].chars().next() {
        Some(c) if c.is_alphanumeric() => (Class::Word, c.len_utf8()),
        Some(c) => (Class::Sep, c.len_utf8()),
        None => (Class::Sep, 1),
    }
}

/// The `Words` token stream (not yet lowercased): maximal runs of word characters, `#`, `+`,
/// `.` and `-`, trimmed of `.`/`-` at both ends (one leading `.` before a word character stays),
/// keeping those with a letter or digit.
pub(crate) fn word_tokens<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    let n = text.len();
    let mut i = 0;
    while i < n {
        let (class, len) = class_at(text, i);
        if class == Class::Sep {
            i += len;
            continue;
        }
        let start = i;
        let mut end = i + len;
        while end < n {
            let (class, len) = class_at(text, end);
            if class == Class::Sep {
                break;
            }
            end += len;
        }
        i = end;
        let run = &text.as_bytes()[start..end];
        let is_joiner = |b: u8| b == b'.' || b == b'-';
        let mut e = run.len();
        while e > 0 && is_joiner(run[e - 1]) {
            e -= 1;
        }
        let mut s = 0;
        while s < e && is_joiner(run[s]) {
            s += 1;
        }
        // Non-ASCII bytes in a run belong to alphanumeric characters.
        let is_alnum = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80;
        if s > 0 && run[s - 1] == b'.' && s < e && (is_alnum(run[s]) || run[s] == b'_') {
            s -= 1;
        }
        if run[s..e].iter().any(|&b| is_alnum(b)) {
            f(&text[start + s..start + e]);
        }
    }
}

pub(crate) enum Lower<'a, 's> {
    Unchanged(&'a str),
    Changed(&'s str),
}

impl Lower<'_, '_> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Lower::Unchanged(s) | Lower::Changed(s) => s,
        }
    }
}

/// Lowercases tokens without allocating for the common cases (already lowercase, or short ASCII).
pub(crate) struct LowerBuf {
    pub(crate) stack: [u8; 64],
    pub(crate) heap: String,
}

impl LowerBuf {
    pub(crate) fn new() -> Self {
        LowerBuf {
            stack: [0; 64],
            heap: String::new(),
        }
    }

    #[inline]
    pub(crate) fn lower<'a, 's>(&'s mut self, tok: &'a str) -> Lower<'a, 's> {
        let bytes = tok.as_bytes();
        let mut upper = false;
        let mut ascii = true;
        for &b in bytes {
            upper |= b.is_ascii_uppercase();
            ascii &= b < 0x80;
        }
        if ascii {
            if !upper {
                return Lower::Unchanged(tok);
            }
            if bytes.len() <= self.stack.len() {
                let buf = &mut self.stack[..bytes.len()];
                buf.copy_from_slice(bytes);
                buf.make_ascii_lowercase();
                if let Ok(s) = std::str::from_utf8(buf) {
                    return Lower::Changed(s);
                }
            }
            self.heap.clear();
            self.heap.push_str(tok);
            self.heap.make_ascii_lowercase();
            return Lower::Changed(&self.heap);
        }
        // str::to_lowercase, like Python's str.lower, handles final sigma and other special cases.
        self.heap = tok.to_lowercase();
        if self.heap == tok {
            Lower::Unchanged(tok)
        } else {
            Lower::Changed(&self.heap)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Token maps

/// A lowercase token of up to 16 bytes, stored inline (zero-padded, with its length), so hashing
/// and comparing it touches no memory outside the map. Most tokens are this short; keys that
/// pointed into the texts made every comparison a cache miss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SmallKey {
    pub(crate) bytes: u128,
    pub(crate) len: u8,
}

impl SmallKey {
    const CAPACITY: usize = 16;

    #[inline]
    pub(crate) fn new(lowercase: &[u8]) -> Option<SmallKey> {
        if lowercase.len() > Self::CAPACITY {
            return None;
        }
        let mut buf = [0u8; Self::CAPACITY];
        buf[..lowercase.len()].copy_from_slice(lowercase);
        Some(SmallKey {
            bytes: u128::from_le_bytes(buf),
            len: lowercase.len() as u8,
        })
    }

    /// Lowercases while copying; `None` unless `tok` is short and ASCII.
    #[inline]
    pub(crate) fn ascii_lowercased(tok: &str) -> Option<SmallKey> {
        let bytes = tok.as_bytes();
        if bytes.len() > Self::CAPACITY {
            return None;
        }
        let mut buf = [0u8; Self::CAPACITY];
        let mut ascii = true;
        for (d, &b) in buf.iter_mut().zip(bytes) {
            ascii &= b < 0x80;
            *d = b.to_ascii_lowercase();
        }
        ascii.then(|| SmallKey {
            bytes: u128::from_le_bytes(buf),
            len: bytes.len() as u8,
        })
    }

    pub(crate) fn to_str_lossy(self) -> String {
        let buf = self.bytes.to_le_bytes();
        String::from_utf8_lossy(&buf[..self.len as usize]).into_owned()
    }
}

pub(crate) enum Key<'a, 's> {
    Small(SmallKey),
    Long(Lower<'a, 's>),
}

/// The map key of token `tok`, lowercased.
#[inline]
pub(crate) fn key_of<'a, 's>(tok: &'a str, buf: &'s mut LowerBuf) -> Key<'a, 's> {
    if let Some(k) = SmallKey::ascii_lowercased(tok) {
        return Key::Small(k);
    }
    let lowered = buf.lower(tok);
    match SmallKey::new(lowered.as_str().as_bytes()) {
        Some(k) => Key::Small(k),
        None => Key::Long(lowered),
    }
}

/// Lowercase token -> `V`, short tokens inline (see [`SmallKey`]).
#[derive(Clone, Debug)]
pub(crate) struct TokenMap<K, V> {
    pub(crate) small: FxHashMap<SmallKey, V>,
    pub(crate) long: FxHashMap<K, V>,
}

impl<K: std::hash::Hash + Eq, V: PartialEq> PartialEq for TokenMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.small == other.small && self.long == other.long
    }
}

impl<K, V> Default for TokenMap<K, V> {
    fn default() -> Self {
        TokenMap {
            small: FxHashMap::default(),
            long: FxHashMap::default(),
        }
    }
}

impl<K: std::borrow::Borrow<str> + std::hash::Hash + Eq, V> TokenMap<K, V> {
    #[inline]
    pub(crate) fn get(&self, tok: &str, buf: &mut LowerBuf) -> Option<&V> {
        match key_of(tok, buf) {
            Key::Small(k) => self.small.get(&k),
            Key::Long(l) => self.long.get(l.as_str()),
        }
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.small.values().chain(self.long.values())
    }

    pub(crate) fn len(&self) -> usize {
        self.small.len() + self.long.len()
    }
}

impl<V> TokenMap<Box<str>, V> {
    /// Room for `n` short tokens (most of a vocabulary) without rehashing.
    pub(crate) fn with_capacity(n: usize) -> Self {
        TokenMap {
            small: FxHashMap::with_capacity_and_hasher(n, Default::default()),
            long: FxHashMap::default(),
        }
    }

    /// The value of an already lowercase token, inserting `default` first if absent.
    pub(crate) fn entry_or(&mut self, lowercase: &str, default: V) -> &mut V {
        match SmallKey::new(lowercase.as_bytes()) {
            Some(k) => self.small.entry(k).or_insert(default),
            None => self.long.entry(lowercase.into()).or_insert(default),
        }
    }
}

/// Numbers the distinct tokens of a chunk of texts in first-seen order.
#[derive(Default)]
pub(crate) struct Interner<'a> {
    pub(crate) ids: TokenMap<Cow<'a, str>, u32>,
}

impl<'a> Interner<'a> {
    /// The id of `tok` (lowercased), and whether it is new.
    #[inline]
    pub(crate) fn intern(&mut self, tok: &'a str, buf: &mut LowerBuf) -> (u32, bool) {
        let next = self.ids.len() as u32;
        let slot = match key_of(tok, buf) {
            Key::Small(k) => self.ids.small.entry(k),
            Key::Long(l) => {
                if let Some(&id) = self.ids.long.get(l.as_str()) {
                    return (id, false);
                }
                let key = match l {
                    Lower::Unchanged(t) => Cow::Borrowed(t),
                    Lower::Changed(t) => Cow::Owned(t.to_string()),
                };
                self.ids.long.insert(key, next);
                return (next, true);
            }
        };
        match slot {
            std::collections::hash_map::Entry::Occupied(e) => (*e.get(), false),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(next);
                (next, true)
            }
        }
    }

    /// The tokens, indexed by id.
    pub(crate) fn into_names(self) -> Vec<Cow<'a, str>> {
        let mut names = vec![Cow::Borrowed(""); self.ids.len()];
        for (k, &id) in &self.ids.small {
            names[id as usize] = Cow::Owned(k.to_str_lossy());
        }
        for (k, id) in self.ids.long {
            names[id as usize] = k;
        }
        names
    }
}

// ---------------------------------------------------------------------------------------------
// Sub-words

/// Calls `f` with the key ([`subword_key`]) of every run of `n` characters in the letters and
/// digits of `token` (already lowercase), when it has more than `n` of them. `chars` is scratch.
#[inline]
pub(crate) fn subwords_of(token: &str, n: usize, chars: &mut Vec<char>, mut f: impl FnMut(u128)) {
    chars.clear();
    chars.extend(token.chars().filter(|c| c.is_alphanumeric()));
    if chars.len() <= n {
        return;
    }
    for window in chars.windows(n) {
        f(subword_key(window));
    }
}

/// A sub-word's UTF-8 bytes, zero-padded into 16 bytes: unique, since letters and digits are
/// never NUL and `n` characters of at most 4 bytes fit ([`MAX_SUBWORDS`]).
#[inline]
pub(crate) fn subword_key(chars: &[char]) -> u128 {
    let mut bytes = [0u8; 16];
    let mut at = 0;
    for c in chars {
        at += c.encode_utf8(&mut bytes[at..]).len();
    }
    u128::from_le_bytes(bytes)
}

/// The key of a sub-word given as text; `None` if it is longer than a key holds.
pub(crate) fn subword_key_of(gram: &str) -> Option<u128> {
    let mut bytes = [0u8; 16];
    bytes
        .get_mut(..gram.len())?
        .copy_from_slice(gram.as_bytes());
    Some(u128::from_le_bytes(bytes))
}

/// The feature name of a sub-word key: [`SUBWORD_MARK`] + its characters.
pub(crate) fn subword_name(key: u128) -> String {
    let bytes = key.to_le_bytes();
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(16);
    let mut name = String::with_capacity(len + SUBWORD_MARK.len_utf8());
    name.push(SUBWORD_MARK);
    name.push_str(std::str::from_utf8(&bytes[..len]).expect("keys are made from whole chars"));
    name
}
