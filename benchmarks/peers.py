#!/usr/bin/env python3
"""Classic peers on a tags + title/body CSV split: TF-IDF + one-vs-rest LR, fastText one-vs-all.

Usage: peers.py TRAIN.csv TEST.csv [--raw] [--only tfidf|fasttext]

Settings as in ../shared/data/so-nlp/README.md:
- fastText supervised, loss one-vs-all, lr 0.5, 25 epochs, wordNgrams 2, dim 50, 1 thread;
- TF-IDF word uni+bigrams, sublinear tf, one-vs-rest LogisticRegression (sklearn defaults).
Metrics: P@1 (top-scored tag is a true tag), micro-F1 and macro-F1 of the tags scored >= 0.5,
macro over the tags present in both train and test. Train time = process CPU seconds of fitting
(vectoriser + model for TF-IDF; the whole `train_supervised` call for fastText), CPU rather than
wall time because the shared machine is often loaded.

Text = title + body. By default HTML markup is stripped (tags removed, entities unescaped,
<code>/<pre> contents kept) and the text lower-cased and tokenised on [a-z0-9#+_.-]+ runs;
--raw keeps the markup as tokens instead. Needs scikit-learn, numpy, fasttext (fasttext-wheel).
Columns are found by header name: tags/Tags, title/Title, body/Body, or text.
"""
import os

# One BLAS/OpenMP thread: fastText runs single-threaded, and LR on a loaded 2-core machine
# spins otherwise.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import csv
import html
import re
import sys
import tempfile
import time

import numpy as np

csv.field_size_limit(1 << 30)
TOKEN = re.compile(r"[a-z0-9#+_][a-z0-9#+_.\-]*")


def parse_tags(s):
    s = s.strip()
    if s.startswith("<"):
        tags = re.findall(r"<([^<>]+)>", s)
    else:
        tags = re.split(r"[|,; ]+", s)
    return sorted({t.strip().lower() for t in tags if t.strip()})


def clean(text, raw):
    if not raw:
        text = re.sub(r"<[^>]*>", " ", text)
        text = html.unescape(text)
    text = text.lower()
    return " ".join(TOKEN.findall(text))


def load(path, raw):
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            r = {k.lower(): v for k, v in r.items()}
            text = r["text"] if "text" in r else r.get("title", "") + " \n " + r.get("body", "")
            tags = parse_tags(r["tags"])
            if tags:
                out.append((clean(text, raw), tags))
    return out


def metrics(scores, labels, test_tags, train_set):
    """scores: (n, L) array over `labels`; test_tags: list of tag lists."""
    idx = {t: i for i, t in enumerate(labels)}
    p1 = np.mean([labels[int(np.argmax(s))] in tt for s, tt in zip(scores, test_tags)])
    tp = fp = fn = 0
    per = {}
    for s, tt in zip(scores, test_tags):
        pred = {labels[i] for i in np.nonzero(s >= 0.5)[0]}
        gold = set(tt)
        for t in pred | gold:
            c = per.setdefault(t, [0, 0, 0])
            if t in pred and t in gold:
                c[0] += 1
            elif t in pred:
                c[1] += 1
            else:
                c[2] += 1
        tp += len(pred & gold)
        fp += len(pred - gold)
        fn += len(gold - pred)
    micro = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    test_set = {t for tt in test_tags for t in tt}
    macro_tags = sorted(test_set & train_set)
    f1s = []
    for t in macro_tags:
        a, b, c = per.get(t, [0, 0, 0])
        f1s.append(2 * a / (2 * a + b + c) if a else 0.0)
    macro = float(np.mean(f1s)) if f1s else 0.0
    del idx
    return p1, micro, macro, len(macro_tags)


def run_tfidf(train, test):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer

    t0 = time.process_time()
    mlb = MultiLabelBinarizer()
    y = mlb.fit_transform([t for _, t in train])
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\S+")
    x = vec.fit_transform([x for x, _ in train])
    clf = OneVsRestClassifier(LogisticRegression(max_iter=1000), n_jobs=1).fit(x, y)
    secs = time.process_time() - t0
    scores = clf.predict_proba(vec.transform([x for x, _ in test]))
    return scores, list(mlb.classes_), secs


def run_fasttext(train, test):
    import fasttext

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        for x, tags in train:
            f.write(" ".join("__label__" + t for t in tags) + " " + x + "\n")
        path = f.name
    t0 = time.process_time()
    model = fasttext.train_supervised(
        input=path, loss="ova", lr=0.5, epoch=25, wordNgrams=2, dim=50, thread=1, verbose=0
    )
    secs = time.process_time() - t0
    os.unlink(path)
    labels = [l[len("__label__"):] for l in model.get_labels()]
    li = {l: i for i, l in enumerate(labels)}
    scores = np.zeros((len(test), len(labels)))
    # The binding's per-line predict, (probability, label) pairs: the wrapper's single-string
    # form breaks on NumPy 2 (np.array copy=False), and its list form (multilinePredict, in
    # fasttext-wheel 0.9.2) repeats each row's top probability for every label, which made every
    # label tie and scored the first label of each row instead of the best (so-html P@1 0.144
    # instead of 0.206).
    for n, (x, _) in enumerate(test):
        for p, l in model.f.predict(x + "\n", -1, 0.0, "strict"):
            scores[n, li[l[len("__label__"):]]] = p
    return scores, labels, secs


def main():
    args = sys.argv[1:]
    raw = "--raw" in args
    only = None
    if "--only" in args:
        only = args[args.index("--only") + 1]
    files = [a for a in args if a.endswith(".csv")]
    train, test = load(files[0], raw), load(files[1], raw)
    train_set = {t for _, tt in train for t in tt}
    name = os.path.basename(files[1])
    for peer, fn in (("tfidf-lr", run_tfidf), ("fasttext-ova", run_fasttext)):
        if only and not peer.startswith(only):
            continue
        scores, labels, secs = fn(train, test)
        p1, micro, macro, n = metrics(scores, labels, [t for _, t in test], train_set)
        print(
            f"PEER {peer} {name} {'raw' if raw else 'stripped'} P@1 {p1:.3f} microF1 {micro:.3f} "
            f"macroF1 {macro:.3f} (macro over {n} tags) train_cpu_s {secs:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
