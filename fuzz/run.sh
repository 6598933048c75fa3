#!/usr/bin/env bash
# Builds the fuzz targets and runs each for a while, one after another, at the lowest priority.
#
#   fuzz/run.sh [seconds-per-target] [target...]     (default: 60 seconds, every target)
#
# Each target starts from its committed seeds (fuzz/corpus/<target>, read only) plus a working
# corpus kept between runs in fuzz/target/corpus/<target> (not committed). Crashes land in
# fuzz/artifacts/<target>/. Prints executions, exec/s, coverage and crashes per target; exits 1
# when any target crashed. FUZZ_BUILD_ARGS adds cargo-fuzz build flags (e.g. "-s none" for no
# sanitizer; cargo-fuzz 0.13 already builds with debug assertions).
set -euo pipefail

secs=${1:-60}
shift || true
cd "$(dirname "$0")/.."
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(artifact_decode csv_and_sidecar text_tokenize http_request)
fi
# shellcheck disable=SC2206
build_args=(${FUZZ_BUILD_ARGS:-})

command -v cargo-fuzz >/dev/null || {
    echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 2
}
mkdir -p fuzz/target/logs
for t in "${targets[@]}"; do
    nice -n 19 cargo +nightly fuzz build "${build_args[@]}" "$t" >fuzz/target/logs/build.log 2>&1 || {
        cat fuzz/target/logs/build.log >&2
        exit 2
    }
done

printf '%-16s %8s %12s %8s %7s %7s %7s %s\n' target seconds executions exec/s cov ft corpus crashes
failed=0
for t in "${targets[@]}"; do
    work=fuzz/target/corpus/$t
    log=fuzz/target/logs/$t.log
    mkdir -p "$work"
    status=0
    nice -n 19 cargo +nightly fuzz run "${build_args[@]}" "$t" "$work" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
    rate=
    if [[ "$execs" =~ ^[0-9]+$ && "$took" =~ ^[1-9][0-9]*$ ]]; then
        rate=$((execs / took))
    fi
    crashes=0
    if [ "$status" -ne 0 ]; then
        crashes=1
        failed=1
    fi
    printf '%-16s %8s %12s %8s %7s %7s %7s %s\n' "$t" "${took:-?}" "${execs:-?}" "${rate:-?}" \
        "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes"
    if [ "$status" -ne 0 ]; then
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written to' "$log" | head -n 8 | sed 's/^/    /' || true
        echo "    full log: $log"
    fi
done
exit "$failed"
