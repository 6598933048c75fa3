#!/usr/bin/env python3
"""Small training subsets of the shared data sets, to check a small-data choice beyond so-html.

Usage: subsets.py OUT_DIR [--rows N] [--seeds 1,2] [--test-rows M] [--data DIR]

For each of cooking, so-titles and so-nlp (in DIR, default ../shared/data next to the
repository) and each seed S, writes OUT_DIR/<set>-s<S>/train.csv: the first N rows (default 700)
of train.csv shuffled with Python's random.Random(S); and OUT_DIR/<set>-s<S>/test.csv: the
first M rows (default 1000) of test.csv shuffled with random.Random(1000 + S). Rows are copied
as read (same header, same columns), so the subsets are real data at a small size. Write them
outside the repository (e.g. /tmp): the data sets are not ours to copy.
"""
import argparse
import csv
import os
import random
import sys

csv.field_size_limit(1 << 30)
SETS = ("cooking", "so-titles", "so-nlp")


def read(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def write(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=700)
    ap.add_argument("--test-rows", type=int, default=1000)
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data"))
    a = ap.parse_args()
    for name in SETS:
        h_train, train = read(os.path.join(a.data, name, "train.csv"))
        h_test, test = read(os.path.join(a.data, name, "test.csv"))
        for seed in (int(s) for s in a.seeds.split(",")):
            tr = list(train)
            random.Random(seed).shuffle(tr)
            te = list(test)
            random.Random(1000 + seed).shuffle(te)
            d = os.path.join(a.out, f"{name}-s{seed}")
            os.makedirs(d, exist_ok=True)
            write(os.path.join(d, "train.csv"), h_train, tr[: a.rows])
            write(os.path.join(d, "test.csv"), h_test, te[: a.test_rows])
            print(f"{d}: {min(a.rows, len(tr))} train, {min(a.test_rows, len(te))} test rows")


if __name__ == "__main__":
    sys.exit(main())
