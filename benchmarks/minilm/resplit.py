#!/usr/bin/env python3
"""Re-split a data set: pool train.csv and test.csv, shuffle (numpy seed N), cut again at the same
sizes, write DIR/train.csv and DIR/test.csv. The tagger's tune example reads such a folder given
as its path, and reference.py measures the references (and writes a teacher) on it.

    python resplit.py ../../../shared/data/cooking 1 /tmp/q16/cooking-r1
"""

import csv
import os
import sys

import numpy as np

csv.field_size_limit(sys.maxsize)


def read(path):
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        return next(r), list(r)


def main():
    src, seed, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    header, train = read(os.path.join(src, "train.csv"))
    header2, test = read(os.path.join(src, "test.csv"))
    assert header == header2, (header, header2)
    rows = train + test
    order = np.random.default_rng(seed).permutation(len(rows))
    os.makedirs(out, exist_ok=True)
    for name, idx in (("train.csv", order[: len(train)]), ("test.csv", order[len(train) :])):
        with open(os.path.join(out, name), "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            w.writerows(rows[i] for i in idx)
    print(f"{out}: {len(train)} train, {len(test)} test rows")


if __name__ == "__main__":
    main()
