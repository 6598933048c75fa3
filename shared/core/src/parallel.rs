//! Work over many texts split across cores: contiguous chunks of about equal bytes, one scoped
//! thread each, results in input order. Training's text preparation, vocabulary counting and
//! encoding all fan out this one way.

/// One chunk per core (at most 8), or one when the input is small enough that threads would
/// cost more than they save.
pub fn default_chunk_count(texts: &[&str]) -> usize {
    let total: usize = texts.iter().map(|t| t.len()).sum();
    if total < (1 << 20) {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8)
    }
}

/// Splits `texts` into `n` (at least 1) contiguous chunks of about equal bytes.
pub fn chunk_by_bytes<'t, 'a>(texts: &'t [&'a str], n: usize) -> Vec<&'t [&'a str]> {
    let total: usize = texts.iter().map(|t| t.len()).sum();
    let n = n.max(1);
    let mut chunks = Vec::with_capacity(n);
    let mut start = 0;
    let mut acc = 0;
    for (i, t) in texts.iter().enumerate() {
        acc += t.len();
        if chunks.len() + 1 < n && acc * n >= total * (chunks.len() + 1) {
            chunks.push(&texts[start..=i]);
            start = i + 1;
        }
    }
    chunks.push(&texts[start..]);
    chunks
}

/// Runs `count` on each chunk in its own thread; results in chunk order.
pub fn per_chunk<'t, 'a, T: Send>(
    chunks: &[&'t [&'a str]],
    count: impl Fn(&'t [&'a str]) -> T + Sync,
) -> Vec<T> {
    if chunks.len() == 1 {
        return vec![count(chunks[0])];
    }
    std::thread::scope(|s| {
        let count = &count;
        let handles: Vec<_> = chunks.iter().map(|&c| s.spawn(move || count(c))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// `f` over every text, one chunk per core (see [`default_chunk_count`]); results in input order.
pub fn map_texts<'a, T: Send>(texts: &[&'a str], f: impl Fn(&'a str) -> T + Sync) -> Vec<T> {
    let chunks = chunk_by_bytes(texts, default_chunk_count(texts));
    per_chunk(&chunks, |chunk| {
        chunk.iter().map(|&t| f(t)).collect::<Vec<T>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_input_in_order() {
        let texts: Vec<String> = (0..97).map(|i| "x".repeat(1 + i % 13)).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        for n in 1..6 {
            let chunks = chunk_by_bytes(&refs, n);
            assert_eq!(chunks.len(), n);
            let joined: Vec<&str> = chunks.concat();
            assert_eq!(joined, refs);
        }
    }

    #[test]
    fn map_texts_keeps_input_order_on_several_threads() {
        // Over a MiB so that it really fans out where there is more than one core.
        let texts: Vec<String> = (0..3000)
            .map(|i| format!("{i} {}", "w".repeat(400)))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let lens = map_texts(&refs, |t| t.split(' ').next().map(str::to_owned));
        let want: Vec<Option<String>> = (0..3000).map(|i| Some(i.to_string())).collect();
        assert_eq!(lens, want);
    }
}
