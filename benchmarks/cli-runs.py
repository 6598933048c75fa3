#!/usr/bin/env python3
"""Quality and cost of one setting over seeds, through the release CLI: one `tagger train` per
seed on DIR/train.csv, scored on DIR/test.csv, one TSV line each appended to OUT.

Usage: cli-runs.py OUT.tsv LABEL DIR [SEED ...] -- [tagger train flags]

Columns: label, data set (DIR's name), seed, P@1, micro-F1, macro-F1 (the served model's, as
`tagger train --json` reports them), CPU-s (user + system of the process), wall s, artifact
bytes, features. Build first: `cargo build --release -p tagger-cli`; TAGGER overrides the
binary (default target/release/tagger beside this folder).
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    args = sys.argv[1:]
    if "--" not in args or len(args) < 4:
        sys.exit(__doc__)
    k = args.index("--")
    (out, label, data), seeds, flags = args[:3], args[3:k], args[k + 1 :]
    tagger = os.environ.get("TAGGER", os.path.join(HERE, "..", "target", "release", "tagger"))
    for seed in seeds or ["22"]:
        model = tempfile.mkdtemp(prefix="cli-runs-")
        cmd = ["/usr/bin/time", "-f", "CPU %U %S %e", tagger, "train",
               "--data", f"{data}/train.csv", "--test", f"{data}/test.csv",
               "--out", model, "--json", "--seed", seed] + flags
        p = subprocess.run(cmd, capture_output=True, text=True)
        cpu = [l for l in p.stderr.splitlines() if l.startswith("CPU ")]
        if p.returncode != 0 or not cpu:
            print(f"FAILED {label} {data} {seed}: {p.stderr[-800:]}", file=sys.stderr)
            shutil.rmtree(model, ignore_errors=True)
            continue
        user, system, wall = map(float, cpu[-1].split()[1:])
        report = json.loads(p.stdout)
        m = report["metrics"]
        size = sum(os.path.getsize(f) for f in glob.glob(f"{model}/*/model.bin"))
        line = "\t".join([label, os.path.basename(data.rstrip("/")), seed,
                          f"{m['p_at_1']:.4f}", f"{m['micro_f1']:.4f}", f"{m['macro_f1']:.4f}",
                          f"{user + system:.2f}", f"{wall:.2f}", str(size), str(report["features"])])
        print(line, flush=True)
        with open(out, "a") as f:
            f.write(line + "\n")
        shutil.rmtree(model, ignore_errors=True)


if __name__ == "__main__":
    main()
