#!/usr/bin/env python3
"""so-nlp's questions with their titles only: a second short-text set with many tags (1,470),
from another site than cooking, for checking rules meant for short texts.

Built like ../shared/data/so-nlp (its README): the five per-library files of
`../shared/data/raw/so-nlp-libs` merged and de-duplicated on `Id`, ordered by `Id`, the first
80% train and the rest test (the same 11,416 / 2,854 questions as so-nlp), `tags` the post's tags
comma-separated; `text` is the `Title` alone (whitespace collapsed) instead of title + body.
Writes OUT/train.csv and OUT/test.csv; the data stay outside the repository.

    python3 benchmarks/data/so-nlp-titles/make.py /tmp/so-nlp-titles
    python3 benchmarks/minilm/resplit.py /tmp/so-nlp-titles 1 /tmp/so-nlp-titles-r1   # re-splits
"""

import csv
import glob
import os
import re
import sys

csv.field_size_limit(sys.maxsize)
HERE = os.path.dirname(os.path.abspath(__file__))
RAW = os.path.join(HERE, "..", "..", "..", "..", "shared", "data", "raw", "so-nlp-libs")


def tags(field):
    # `<a><b>` or space-separated, as the raw exports vary.
    found = re.findall(r"<([^>]+)>", field)
    return ",".join(found if found else field.split())


def main():
    out = sys.argv[1]
    posts = {}
    for path in sorted(glob.glob(os.path.join(RAW, "*.csv"))):
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                posts[int(row["Id"])] = row
    if not posts:
        sys.exit(f"no posts under {RAW}")
    rows = [(tags(posts[i]["Tags"]), " ".join(posts[i]["Title"].split())) for i in sorted(posts)]
    cut = int(len(rows) * 0.8)
    os.makedirs(out, exist_ok=True)
    for name, part in (("train", rows[:cut]), ("test", rows[cut:])):
        with open(os.path.join(out, f"{name}.csv"), "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["tags", "text"])
            w.writerows(part)
    print(f"{out}: {cut} train, {len(rows) - cut} test")


if __name__ == "__main__":
    main()
