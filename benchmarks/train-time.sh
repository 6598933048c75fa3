#!/usr/bin/env bash
# Training time of `tagger train` binaries, taking turns run by run on the same data, so a
# shared machine's load falls on each alike. Prints, per data set and binary, the median and
# (min–max) of wall seconds and of CPU seconds (user + system of the whole process).
#
#   benchmarks/train-time.sh [-n RUNS] [-s "so-titles cooking so-html so-nlp"] [-f PYTHON] BIN...
#
# With -f, each run also trains fastText (one-vs-all, one thread: `benchmarks/peers.py --only
# fasttext` under PYTHON, which needs the `fasttext-wheel` package) on the same set in the same
# turn, and the summary adds its median training seconds and each binary's share of it: the
# issues' targets are fractions of fastText's time, and a loaded host slows both alike.
#
# e.g. `git stash; cargo build --release -p tagger-cli; cp target/release/tagger /tmp/tagger-before;
# git stash pop; cargo build --release -p tagger-cli;
# benchmarks/train-time.sh -n 5 /tmp/tagger-before target/release/tagger`. The last lines name,
# per binary, the versions it published with a digest of each training run (same digest: same
# run, loss by loss and metric by metric).
# Data: ../shared/data/<set>/{train,test}.csv; so-html is benchmarks/data/so-html.
set -euo pipefail
runs=5
sets="so-titles cooking so-html so-nlp"
fasttext=""
while getopts "n:s:f:" o; do
  case $o in
    n) runs=$OPTARG ;;
    s) sets=$OPTARG ;;
    f) fasttext=$OPTARG ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: $0 [-n RUNS] [-s SETS] [-f PYTHON] BIN..." >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Load before and after: runs on a busy machine are slower for every binary alike, but their
# absolute figures say little.
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
bins=("$@")
for r in $(seq 0 $((runs - 1))); do
  for ds in $sets; do
    if [ "$ds" = so-html ]; then d=$root/benchmarks/data/so-html; else d=$root/../shared/data/$ds; fi
    [ -f "$d/train.csv" ] || { echo "skipping $ds: no $d/train.csv" >&2; continue; }
    # The binaries take turns going first: with -f the first run of a turn follows fastText's
    # and was measured 10-50% slower than the same binary run second, which favoured every
    # binary but the first.
    for i in $(seq 0 $((${#bins[@]} - 1))); do
      idx=$(((i + r) % ${#bins[@]}))
      bin=${bins[$idx]}
      n=$((idx + 1))
      /usr/bin/time -o "$out/t" -f '%e %U %S' "$bin" train --data "$d/train.csv" \
        --test "$d/test.csv" --out "$out/m$n" --quiet >/dev/null
      echo "$ds $n $(cat "$out/t")" >>"$out/times"
    done
    if [ -n "$fasttext" ]; then
      # peers.py prints the process CPU seconds of fastText's training alone (one thread).
      secs=$("$fasttext" "$root/benchmarks/peers.py" "$d/train.csv" "$d/test.csv" --only fasttext \
        | sed -n 's/.*train_cpu_s \([0-9.]*\).*/\1/p')
      [ -n "$secs" ] || { echo "fastText run failed on $ds" >&2; exit 1; }
      echo "$ds $secs" >>"$out/fasttext"
    fi
  done
done
touch "$out/fasttext"
python3 - "$out/times" "$out/fasttext" "$@" <<'PY'
import collections, statistics, sys
bins = sys.argv[3:]
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    ds, n, wall, user, sys_ = line.split()
    runs[(ds, int(n))].append((float(wall), float(user) + float(sys_)))
fasttext = collections.defaultdict(list)
for line in open(sys.argv[2]):
    ds, secs = line.split()
    fasttext[ds].append(float(secs))
for (ds, n), v in runs.items():
    w, c = [x[0] for x in v], [x[1] for x in v]
    share = ""
    if ds in fasttext:
        ft = statistics.median(fasttext[ds])
        share = f"  = 1/{ft / statistics.median(w):.1f} / 1/{ft / statistics.median(c):.1f} of fastText"
    print(f"{ds:10} {bins[n - 1]:32} wall {statistics.median(w):.2f} s ({min(w):.2f}–{max(w):.2f})"
          f"  CPU {statistics.median(c):.2f} s ({min(c):.2f}–{max(c):.2f})  runs {len(v)}{share}")
for ds, v in fasttext.items():
    print(f"{ds:10} {'fastText (one thread)':32} train {statistics.median(v):.2f} s ({min(v):.2f}–{max(v):.2f})  runs {len(v)}")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
# What each binary trained, per version it published: a digest of its run's outcome (every metric
# per tag, the best epoch, and the training and validation loss of every epoch). A version id hashes only the data, the settings and the crate version, so two builds
# that train differently can publish the same id; the same digest means the same training run.
for n in $(seq $#); do
  echo "binary $n: $(python3 - "$out/m$n" <<'PY'
import hashlib, json, pathlib, sys
out = []
for m in sorted(pathlib.Path(sys.argv[1]).glob("*/metrics.json")):
    full = json.loads(m.read_text())
    r = {k: full.get(k) for k in ("metrics", "history", "best_epoch")}
    for e in r["history"] or []:
        e.pop("seconds", None)
    digest = hashlib.sha256(json.dumps(r, sort_keys=True).encode()).hexdigest()[:12]
    out.append(f"{m.parent.name} (run {digest})")
print(" ".join(out))
PY
)"
done
