#!/usr/bin/env python3
"""Build the so-html set from the transcribed per-source CSVs (see PROVENANCE.md).

Usage: convert.py RAW_DIR OUT_DIR

RAW_DIR holds the per-source files as transcribed:
  pq_*.csv   header id,title,body,creation_date,tags      (tags a|b)
  pq_r*.txt  BigQuery posts_questions columns, no header  (tags a|b)
  ag_*.csv   header id,title,body,creation_date,tags      (tags <a><b>)
  mp_*.csv   header id,title,body,creation_date,tags      (tags <a><b>, no dates)

Writes OUT_DIR/all.csv, train.csv and test.csv with the header id,title,body,tags,creation_date
(tags in Stack Exchange's <a><b> form). The fixed split is temporal: rows ordered by question id
(Stack Overflow ids grow with creation time), the first 80% train, the last 20% test.
With --resplit N (N >= 1) it instead writes train_rN.csv / test_rN.csv: the same pool and sizes,
rows shuffled with seed N.
"""
import csv
import glob
import os
import random
import re
import sys

BQ_HEADER = (
    "id,title,body,accepted_answer_id,answer_count,comment_count,community_owned_date,"
    "creation_date,favorite_count,last_activity_date,last_edit_date,last_editor_display_name,"
    "last_editor_user_id,owner_display_name,owner_user_id,parent_id,post_type_id,score,tags,"
    "view_count"
).split(",")
OUT_HEADER = ["id", "title", "body", "tags", "creation_date"]


def parse_tags(s):
    s = s.strip()
    if s.startswith("<"):
        tags = re.findall(r"<([^<>]+)>", s)
    else:
        tags = s.split("|")
    out = []
    for t in tags:
        t = t.strip().lower()
        if t and t not in out:
            out.append(t)
    return out


def rows(raw):
    for path in sorted(glob.glob(os.path.join(raw, "*.csv"))):
        with open(path, newline="", encoding="utf-8") as f:
            yield from csv.DictReader(f)
    for path in sorted(glob.glob(os.path.join(raw, "pq_r*.txt"))):
        with open(path, newline="", encoding="utf-8") as f:
            yield from csv.DictReader(f, fieldnames=BQ_HEADER)


def load(raw):
    seen = {}
    for r in rows(raw):
        qid = int(r["id"])
        tags = parse_tags(r["tags"])
        if not tags or not r["title"].strip() or qid in seen:
            continue
        seen[qid] = {
            "id": qid,
            "title": r["title"].strip(),
            "body": r["body"],
            "tags": "".join(f"<{t}>" for t in tags),
            "creation_date": r.get("creation_date") or "",
        }
    return [seen[k] for k in sorted(seen)]


def write(path, data):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=OUT_HEADER)
        w.writeheader()
        w.writerows(data)


def main():
    args = sys.argv[1:]
    resplit = 0
    if "--resplit" in args:
        i = args.index("--resplit")
        resplit = int(args[i + 1])
        del args[i : i + 2]
    raw, out = args
    os.makedirs(out, exist_ok=True)
    data = load(raw)
    cut = len(data) * 8 // 10
    if resplit:
        pool = list(data)
        random.Random(resplit).shuffle(pool)
        write(os.path.join(out, f"train_r{resplit}.csv"), pool[:cut])
        write(os.path.join(out, f"test_r{resplit}.csv"), pool[cut:])
    else:
        write(os.path.join(out, "all.csv"), data)
        write(os.path.join(out, "train.csv"), data[:cut])
        write(os.path.join(out, "test.csv"), data[cut:])
    print(f"{len(data)} rows: train {cut}, test {len(data) - cut}")


if __name__ == "__main__":
    main()
