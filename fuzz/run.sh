#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and fuzzes each one for a while.
#   fuzz/run.sh            smoke run: 60 s per target (PV_FUZZ_SECONDS to change)
#   PV_FUZZ_SECONDS=3600 PV_FUZZ_JOBS=8 fuzz/run.sh     the long run (see fuzz/README.md)
# Seeds come from the repository (fixtures, contracts, evidence); findings land in
# $PV_FUZZ_OUT/<target>/ (crash-*, timeout-*, oom-*) and make the script exit 1.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${PV_FUZZ_BUILD:-$ROOT/build-fuzz}"
OUT="${PV_FUZZ_OUT:-$BUILD/findings}"
SECONDS_EACH="${PV_FUZZ_SECONDS:-60}"
JOBS="${PV_FUZZ_JOBS:-1}"
TARGETS="${PV_FUZZ_TARGETS:-gguf safetensors contract bundle gtest_report}"

CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD" -G Ninja -DPV_FUZZ=ON -DPV_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# shellcheck disable=SC2086
cmake --build "$BUILD" -j"$(nproc)" --target $(for t in $TARGETS; do echo "fuzz_$t"; done)

seeds() {  # target -> seed corpus directory
  local dir="$BUILD/seeds/$1"
  rm -rf "$dir" && mkdir -p "$dir"
  case "$1" in
    gguf) find "$ROOT/model/fixtures" -name '*.gguf' -size -1M -exec cp {} "$dir/" \; ;;
    safetensors)
      local k=0
      for f in $(find "$ROOT/model/fixtures" -name 'model.safetensors' -o -name 'config.json'); do
        cp "$f" "$dir/seed$((k++))"
      done ;;
    contract) cp "$ROOT"/contracts/*.yaml "$ROOT"/harness/testdata/*.yaml "$dir/" ;;
    bundle) find "$ROOT/evidence/runs" -name '*.json' | head -50 | while read -r f; do
              cp "$f" "$dir/$(echo "$f" | sha1sum | cut -c1-12).json"; done ;;
    gtest_report)
      "$ROOT/build-cpu/bin/pv_falsifiers" --gtest_filter='Hardening.Semver*:Hardening.Utf8*' \
        --gtest_output="json:$dir/report.json" >/dev/null 2>&1 || true
      printf '{"testsuites":[{"name":"S","testsuite":[{"name":"T","status":"RUN","result":"SKIPPED","skip_reason":"fixture-absent: x","failures":[{"failure":"Falsifiable after 3 tests"}]}]}]}' \
        >"$dir/skip.json" ;;
  esac
  echo "$dir"
}

status=0
for t in $TARGETS; do
  mkdir -p "$OUT/$t" "$BUILD/corpus/$t"
  corpus_seed="$(seeds "$t")"
  echo "== fuzz_$t: ${SECONDS_EACH}s, seeds $(ls "$corpus_seed" | wc -l)"
  if ! "$BUILD/fuzz/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=4096 \
      -jobs="$JOBS" -workers="$JOBS" -print_final_stats=1 -artifact_prefix="$OUT/$t/" \
      "$BUILD/corpus/$t" "$corpus_seed" 2>"$OUT/$t/log.txt"; then
    status=1
  fi
  grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$OUT/$t/log.txt" | tail -2 || true
  ls "$OUT/$t" | grep -E '^(crash|timeout|oom|leak)-' && status=1 || true
done
exit $status
