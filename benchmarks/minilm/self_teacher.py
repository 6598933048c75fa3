#!/usr/bin/env python3
"""A teacher file from the tagger itself: out-of-fold probabilities for every train.csv text.

train.csv is cut into K seeded folds; for each, `tagger train` learns the other K-1 (scored on
the held-out fold, so no rows are lost to a test split) and `tagger predict --scores` answers the
held-out texts. Every text thus gets the probabilities of a model that never saw it, which the
tagger's distillation (`--teacher F --distill A`) reads like a MiniLM teacher file. With
`--mix F W` a second file is written beside OUT (OUT with `.mix.csv` appended): each text's
probabilities mixed with teacher file F's as (1 - W) * own + W * F's. Flags after `--` go to each
`tagger train` (e.g. `--teacher F --distill 0.5` for folds taught by MiniLM).

Usage: self_teacher.py --tagger BIN DIR OUT.csv [--folds 5] [--seed 22] [--mix F W] [-- flags]
"""
import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

csv.field_size_limit(sys.maxsize)


def read_teacher(path):
    out = {}
    with open(path, newline="", encoding="utf-8") as f:
        for rec in csv.DictReader(f):
            cells = {}
            for cell in filter(None, rec["teacher"].split(";")):
                tag, v = cell.rsplit("=", 1)
                cells[tag] = float(v)
            out[rec["text"].strip()] = cells
    return out


def write_teacher(path, probs, floor=0.01, top=32):
    """The `text,teacher` CSV `reference.py` writes: the top 32 tags at 0.01 or more."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "teacher"])
        for text, p in probs.items():
            best = sorted(p.items(), key=lambda kv: -kv[1])[:top]
            w.writerow([text, ";".join(f"{t}={v:.4f}" for t, v in best if v >= floor)])
    print(f"  teacher: {len(probs)} texts -> {path}", file=sys.stderr)


def main():
    argv = sys.argv[1:]
    flags = []
    if "--" in argv:
        k = argv.index("--")
        argv, flags = argv[:k], argv[k + 1 :]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tagger", required=True)
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", default="22")
    ap.add_argument("--mix", nargs=2, metavar=("F", "W"))
    args = ap.parse_args(argv)
    if args.folds < 2:
        sys.exit("--folds must be at least 2")

    with open(f"{args.data}/train.csv", newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        header = next(r)
        rows = list(r)
    xi = header.index("text")
    order = list(range(len(rows)))
    random.Random(int(args.seed)).shuffle(order)
    probs = {}
    tmp = tempfile.mkdtemp(prefix="self-teacher-")
    try:
        for fold in range(args.folds):
            held = sorted(order[fold :: args.folds])
            held_set = set(held)
            paths = {}
            for name, part in (("train", [r for i, r in enumerate(rows) if i not in held_set]),
                               ("test", [rows[i] for i in held])):
                paths[name] = os.path.join(tmp, f"{name}{fold}.csv")
                with open(paths[name], "w", newline="", encoding="utf-8") as f:
                    w = csv.writer(f)
                    w.writerow(header)
                    w.writerows(part)
            model = os.path.join(tmp, f"model{fold}")
            subprocess.run(
                [args.tagger, "train", "--data", paths["train"], "--test", paths["test"],
                 "--out", model, "--json", "--seed", args.seed] + flags,
                check=True, stdout=subprocess.DEVNULL,
            )
            # One question per stdin line: the texts' own line breaks become spaces.
            texts = [rows[i][xi] for i in held]
            out = subprocess.run(
                [args.tagger, "predict", "--model", model, "--json", "--scores"],
                input="\n".join(" ".join(t.split()) for t in texts) + "\n",
                capture_output=True, text=True, check=True,
            ).stdout.splitlines()
            if len(out) != len(texts):
                sys.exit(f"fold {fold}: {len(out)} answers for {len(texts)} questions")
            for text, line in zip(texts, out):
                probs[text.strip()] = json.loads(line)["scores"]
            print(f"  fold {fold}: {len(texts)} texts", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_teacher(args.out, probs)
    if args.mix:
        other, wgt = read_teacher(args.mix[0]), float(args.mix[1])
        mixed = {}
        for text, p in probs.items():
            q = other.get(text)
            if q is None:
                mixed[text] = p
                continue
            mixed[text] = {t: (1 - wgt) * p.get(t, 0.0) + wgt * q.get(t, 0.0) for t in set(p) | set(q)}
        write_teacher(args.out + ".mix.csv", mixed)


if __name__ == "__main__":
    main()
