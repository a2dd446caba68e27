#!/usr/bin/env bash
# Fuzz every cargo-fuzz target in scripts/fuzz for a bounded time each (default 60 s):
#   scripts/fuzz.sh [seconds-per-target] [target...]
# Installs cargo-fuzz into ~/.cargo/bin if missing, builds all targets once (nightly, ASan,
# target/fuzz), runs each from a copy of its committed seeds (scripts/fuzz/corpus/<target>, never
# grown in place) with libFuzzer's -rss_limit_mb=2048, prints target / duration / execs /
# findings, and exits non-zero if any target crashed, ran out of memory or timed out.
# Crash inputs land in scripts/fuzz/artifacts/<target>/ (git-ignored); once fixed, keep them in
# scripts/fuzz/regressions/<target>/, which tests/fuzz_corpus.rs replays on stable.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS="${1:-60}"
shift || true
FUZZ_DIR=scripts/fuzz
TARGET_DIR=target/fuzz
WORK="$FUZZ_DIR/work"
ARTIFACTS="$FUZZ_DIR/artifacts"
# Build flags shared by `build` and `run` (so `run` never rebuilds); 16 codegen units keep the
# sanitizer build of candle & co. tolerable on a small machine.
FLAGS=(--fuzz-dir "$FUZZ_DIR" --target-dir "$TARGET_DIR" --codegen-units 16)

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (crates.io, into ~/.cargo/bin)"
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <(cargo +nightly fuzz list --fuzz-dir "$FUZZ_DIR")
fi

echo "== building ${#TARGETS[@]} fuzz targets (nightly, AddressSanitizer, $TARGET_DIR)"
build_start=$(date +%s)
cargo +nightly fuzz build "${FLAGS[@]}"
BIN="$TARGET_DIR/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"
echo "   built in $(( $(date +%s) - build_start )) s"

mkdir -p "$WORK" "$ARTIFACTS"
# The bundled SQLite (rusqlite) has two function-local statics named `aiOff` in one translation
# unit, which ASan's ODR check misreports at start-up.
export ASAN_OPTIONS="detect_odr_violation=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
rows=()
failed=0
for t in "${TARGETS[@]}"; do
    corpus="$WORK/$t"
    rm -rf "$corpus" "${ARTIFACTS:?}/$t"
    mkdir -p "$corpus" "$ARTIFACTS/$t"
    cp "$FUZZ_DIR/corpus/$t/"* "$corpus/"
    log="$WORK/$t.log"
    echo "== $t: ${SECS} s"
    start=$(date +%s.%N)
    rc=0
    # What `cargo +nightly fuzz run "${FLAGS[@]}" $t $corpus -- ...` runs, minus its rebuild
    # check: every target fuzzes the one build made above, even while the tree is being edited.
    "$BIN/$t" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
        -artifact_prefix="$ARTIFACTS/$t/" "$corpus" >"$log" 2>&1 || rc=$?
    dur=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
    [ -n "$execs" ] || execs="?"
    units=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    found=$(find "$ARTIFACTS/$t" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \
        -o -name 'leak-*' -o -name 'slow-unit-*' \) -printf '%f ' | sed 's/ $//')
    if [ "$rc" -ne 0 ] && [ -z "$found" ]; then
        found="exit $rc (see $log)"
    fi
    if [ -n "$found" ]; then
        failed=1
        grep -m1 -E 'panicked at|ERROR: (AddressSanitizer|libFuzzer)' "$log" | sed 's/^/   /' || true
    fi
    rows+=("$(printf '%-14s %6ss %11s %7s  %s' "$t" "$dur" "$execs" "${units:-?}" "${found:-none}")")
done

echo
printf '%-14s %7s %11s %7s  %s\n' target duration execs corpus findings
printf '%s\n' "${rows[@]}"
if [ "$failed" -ne 0 ]; then
    echo "FAIL: findings above (inputs in $ARTIFACTS/<target>/, logs in $WORK/<target>.log)"
    exit 1
fi
echo "OK: no findings"
