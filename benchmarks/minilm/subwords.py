"""Rewrite a teacher file's texts as the tune example's `subwords=N` experiment rewrites the data.

`shared/train/examples/tune.rs` with `subwords=N` appends each word's character N-grams to every
text as pseudo-words (" qq" + n-gram; a word is lower-cased, only its alphanumeric characters
kept, and words of N characters or fewer add nothing). A teacher file is looked up by text, so
it needs the same rewrite to be used with that experiment:

    python3 benchmarks/minilm/subwords.py TEACHER.csv OUT.csv [--n 3]
"""

import argparse
import csv


def add_subwords(text, n):
    extra = []
    for word in text.split():
        w = "".join(c for c in word.lower() if c.isalnum())
        if len(w) <= n:
            continue
        extra.extend(" qq" + w[i : i + n] for i in range(len(w) - n + 1))
    return text + "".join(extra)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("teacher", help="a `text,teacher` CSV (reference.py --teacher-out)")
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=3)
    args = ap.parse_args()
    with open(args.teacher, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(rows[0])
        for text, probs in rows[1:]:
            w.writerow([add_subwords(text, args.n), probs])


if __name__ == "__main__":
    main()
