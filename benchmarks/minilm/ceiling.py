#!/usr/bin/env python3
"""How much micro-F1 the tagger's probabilities hold, beyond the thresholds it serves with.

For each published model: micro-F1 of the tags it serves on DIR/test.csv (its own thresholds),
and the best micro-F1 any single global threshold (0.05, 0.06, ..., 0.95) reaches on its test
probabilities: an oracle tuned on the test rows, so a bound on what one global threshold can
give (the served per-group thresholds can land above it), never a figure to compare with a
reference's validation-tuned one. Then the same oracle for the mean of the models' probabilities
(a seed ensemble), and, with `--teacher`, for each model's probabilities mixed with a MiniLM
teacher file's test-text probabilities (`reference.py DIR --models mlp --teacher-on-all
--teacher-out F --extra DIR/test.csv`): a transformer at prediction time, which the product rules
out; it measures how much ranking evidence the teacher holds that the student has not learnt.

Also per model: micro- and macro-F1 with each frequency group (tags grouped by train.csv
positives in powers of two, as the default thresholds group them) at the threshold that
maximises the group's own F1 on test, the oracle of the served rule.

Micro-F1 counts test tags unknown to the model as missed, as the tagger's report does; macro-F1
averages the tags the model knows that have test rows.

Usage: ceiling.py --tagger BIN --data DIR MODEL_DIR [MODEL_DIR ...] [--teacher F] [--weights 0.3,0.5]
"""
import argparse
import json
import subprocess
import sys

import numpy as np

from reference import read_rows
from self_teacher import read_teacher

GRID = np.round(np.arange(0.05, 0.955, 0.01), 2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tagger", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--teacher")
    ap.add_argument("--weights", default="0.2,0.3,0.5")
    args = ap.parse_args()

    rows = [(sorted(set(tags)), text) for tags, text in read_rows(f"{args.data}/test.csv")]
    # One question per stdin line: the texts' own line breaks become spaces.
    texts = [" ".join(text.split()) for _, text in rows]

    names, probs, served = None, [], []
    for model in args.models:
        out = subprocess.run(
            [args.tagger, "predict", "--model", model, "--json", "--scores"],
            input="\n".join(texts) + "\n", capture_output=True, text=True, check=True,
        ).stdout.splitlines()
        if len(out) != len(texts):
            sys.exit(f"{model}: {len(out)} answers for {len(texts)} questions")
        answers = [json.loads(line) for line in out]
        if names is None:
            names = sorted(answers[0]["scores"])
        elif sorted(answers[0]["scores"]) != names:
            sys.exit(f"{model}: a different label set; the models must share train.csv")
        probs.append(np.array([[a["scores"][n] for n in names] for a in answers], dtype=np.float32))
        served.append([set(a["tags"]) for a in answers])

    index = {n: i for i, n in enumerate(names)}
    truth = np.zeros(probs[0].shape, dtype=bool)
    unknown = 0
    for i, (tags, _) in enumerate(rows):
        for t in tags:
            if t in index:
                truth[i, index[t]] = True
            else:
                unknown += 1
    positives = int(truth.sum()) + unknown

    def micro(tp, predicted):
        return 2 * tp / (predicted + positives)

    def oracle(p):
        return max((micro(int((p >= t)[truth].sum()), int((p >= t).sum())), t) for t in GRID)

    # Frequency groups as the tagger's default thresholds form them: powers of two of a tag's
    # training positives (here counted over all of train.csv).
    train_counts = {}
    for tags, _ in read_rows(f"{args.data}/train.csv"):
        for t in set(tags):
            train_counts[t] = train_counts.get(t, 0) + 1
    group = np.array([int(np.log2(max(train_counts.get(n, 0), 1))) for n in names])
    with_support = truth.sum(axis=0) > 0

    def micro_macro(p, thresholds):
        pred = p >= thresholds[None, :]
        tp = (pred & truth).sum(axis=0)
        per_tag = np.where(tp > 0, 2 * tp / np.maximum(pred.sum(axis=0) + truth.sum(axis=0), 1), 0.0)
        return micro(int(tp.sum()), int(pred.sum())), float(per_tag[with_support].mean())

    def group_oracle(p):
        """Each frequency group at the threshold that maximises the group's own F1 on test."""
        thresholds = np.zeros(len(names), dtype=np.float32)
        for g in np.unique(group):
            cols = group == g
            pg, yg = p[:, cols], truth[:, cols]
            f1 = [2 * ((pg >= t) & yg).sum() / max((pg >= t).sum() + yg.sum(), 1) for t in GRID]
            thresholds[cols] = GRID[int(np.argmax(f1))]
        return micro_macro(p, thresholds)

    print(f"{len(rows)} test rows, {positives} test tags ({unknown} unknown to training)")
    for model, p, s in zip(args.models, probs, served):
        tp = sum(len(s_i & set(tags)) for s_i, (tags, _) in zip(s, rows))
        f, t = oracle(p)
        gmi, gma = micro_macro(p, np.full(len(names), t, dtype=np.float32))
        fmi, fma = group_oracle(p)
        print(f"{model}: served micro-F1 {micro(tp, sum(map(len, s))):.4f}; "
              f"best global threshold on test {f:.4f} at {t:.2f} (macro-F1 {gma:.4f}); "
              f"each frequency group at its own best on test: micro-F1 {fmi:.4f}, macro-F1 {fma:.4f}")
    if len(probs) > 1:
        f, t = oracle(np.mean(probs, axis=0))
        print(f"mean of the {len(probs)} models: best global threshold on test {f:.4f} at {t:.2f}")
    if args.teacher:
        teacher = read_teacher(args.teacher)
        m = np.zeros(probs[0].shape, dtype=np.float32)
        missing = 0
        for i, (_, text) in enumerate(rows):
            cells = teacher.get(text.strip())
            if cells is None:
                missing += 1
                continue
            for tag, v in cells.items():
                if tag in index:
                    m[i, index[tag]] = v
        if missing:
            sys.exit(f"{args.teacher}: {missing} test texts missing (write it with --extra DIR/test.csv)")
        f, t = oracle(m)
        print(f"teacher alone: best global threshold on test {f:.4f} at {t:.2f}")
        for w in (float(x) for x in args.weights.split(",")):
            fs = [oracle((1 - w) * p + w * m)[0] for p in probs]
            print(f"models mixed with the teacher at {w:g}: best global threshold on test "
                  f"{np.mean(fs):.4f} (min {min(fs):.4f}, max {max(fs):.4f})")


if __name__ == "__main__":
    main()
