#!/usr/bin/env python3
"""A data set cut down to its K most frequent training tags, to see how a choice behaves with
fewer, better-supported tags on the same texts.

Usage: make.py SRC_DIR OUT_DIR K

Reads SRC_DIR/train.csv and SRC_DIR/test.csv (`tags,text`, tags separated by `,`, `|`, `;` or
spaces), keeps in each row only the K tags most frequent in train.csv (ties by first seen) and
drops rows left without a tag. Write outside the repository (e.g. /tmp): the data sets are not
ours to copy.
"""
import collections
import csv
import os
import re
import sys

csv.field_size_limit(1 << 30)


def tags_of(field):
    return [t for t in re.split(r"[,|; ]", field) if t]


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, out, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(os.path.join(src, "train.csv"), newline="", encoding="utf-8") as f:
        train = list(csv.DictReader(f))
    with open(os.path.join(src, "test.csv"), newline="", encoding="utf-8") as f:
        test = list(csv.DictReader(f))
    counts = collections.Counter(t for r in train for t in tags_of(r["tags"]))
    keep = {t for t, _ in counts.most_common(k)}
    os.makedirs(out, exist_ok=True)
    for rows, name in ((train, "train.csv"), (test, "test.csv")):
        kept = 0
        with open(os.path.join(out, name), "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["tags", "text"])
            for r in rows:
                tags = [t for t in tags_of(r["tags"]) if t in keep]
                if tags:
                    w.writerow([",".join(tags), r["text"]])
                    kept += 1
        print(f"{out}/{name}: {kept} of {len(rows)} rows")


if __name__ == "__main__":
    main()
