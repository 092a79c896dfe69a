#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each one: first every committed
# regression input (fuzz/regressions/<target>/), then fuzzing from the seed corpus for a while.
#   fuzz/run.sh                                  60 s per target, one job
#   PV_FUZZ_SECONDS=5 fuzz/run.sh                the CI smoke run (tools/scripts/test.sh)
#   PV_FUZZ_SECONDS=3600 PV_FUZZ_JOBS=2 fuzz/run.sh    a long run (fuzz/README.md)
#   PV_FUZZ_TARGETS="gguf trace" fuzz/run.sh     some targets only
# Seeds come from the repository (fixtures, fuzz/seeds, contracts, evidence). Findings land in
# $PV_FUZZ_OUT/<target>/ (crash-*, timeout-*, oom-*, leak-*) and make the script exit 1; so
# does a regression input that fails again. $PV_FUZZ_OUT/summary.tsv holds the figures of
# the run (seeds, executions, exec/s, findings per target).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(realpath -m "${PV_FUZZ_BUILD:-$ROOT/build-fuzz}")"
OUT="$(realpath -m "${PV_FUZZ_OUT:-$BUILD/findings}")"
SECONDS_EACH="${PV_FUZZ_SECONDS:-60}"
JOBS="${PV_FUZZ_JOBS:-1}"
TARGETS="${PV_FUZZ_TARGETS:-gguf safetensors trace tokenizer contract bundle gtest_report}"
# The limits every finding is judged by: 10 s for one input, 4 GiB of memory.
LIMITS=(-timeout=10 -rss_limit_mb=4096 -malloc_limit_mb=4096)

# PV_FUZZ_NO_BUILD=1: run the binaries already in $BUILD/bin as they are.
if [ "${PV_FUZZ_NO_BUILD:-0}" != 1 ]; then
  # shellcheck disable=SC2086
  CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD" -G Ninja -DPV_FUZZ=ON -DPV_CUDA=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo ${PV_CMAKE_ARGS:-} >/dev/null
  # shellcheck disable=SC2046
  cmake --build "$BUILD" -j"$(nproc)" --target $(for t in $TARGETS; do echo "fuzz_$t"; done)
fi

seeds() {  # target -> seed corpus directory (fresh copies: libFuzzer may add to it)
  local dir="$BUILD/seeds/$1" k=0 f
  rm -rf "$dir" && mkdir -p "$dir"
  [ -d "$ROOT/fuzz/seeds/$1" ] && cp "$ROOT/fuzz/seeds/$1"/* "$dir/"
  case "$1" in
    gguf) find "$ROOT/model/fixtures" -name '*.gguf' -size -1024k -exec cp {} "$dir/" \; ;;
    safetensors)
      for f in $(find "$ROOT/model/fixtures" -name 'model.safetensors' -o -name 'config.json'); do
        cp "$f" "$dir/seed$((k++))"
      done ;;
    tokenizer) cp "$ROOT/model/fixtures/tokenizer/tokenizer.json" "$ROOT/model/fixtures/tokenizer/vocab.json" "$dir/" ;;
    contract) cp "$ROOT"/contracts/*.yaml "$ROOT"/harness/testdata/*.yaml "$dir/" ;;
    bundle) find "$ROOT/evidence/runs" -name '*.json' | sort | head -50 | while read -r f; do
              cp "$f" "$dir/$(echo "$f" | sha1sum | cut -c1-12).json"; done ;;
  esac
  echo "$dir"
}

stat_of() {  # log key -> value of libFuzzer's final stat
  grep -E "^stat::$2:" "$1" | tail -1 | awk '{print $2}'
}

mkdir -p "$OUT"
printf 'target\tseeds\tregressions\texecutions\texec_per_s\tfindings\n' >"$OUT/summary.tsv"
status=0
for t in $TARGETS; do
  bin="$BUILD/bin/fuzz_$t"
  mkdir -p "$OUT/$t" "$BUILD/corpus/$t"
  rm -f "$OUT/$t"/crash-* "$OUT/$t"/timeout-* "$OUT/$t"/oom-* "$OUT/$t"/leak-*
  regressions=()
  [ -d "$ROOT/fuzz/regressions/$t" ] && mapfile -t regressions < <(find "$ROOT/fuzz/regressions/$t" -type f | sort)
  if [ ${#regressions[@]} -gt 0 ]; then
    # Given files, libFuzzer runs each once: a regression that fails again fails the step.
    if ! "$bin" "${LIMITS[@]}" -artifact_prefix="$OUT/$t/" "${regressions[@]}" >"$OUT/$t/regressions.txt" 2>&1; then
      echo "fuzz_$t: a regression input fails again ($OUT/$t/regressions.txt)" >&2
      tail -20 "$OUT/$t/regressions.txt" >&2
      status=1
    fi
  fi
  corpus_seed="$(seeds "$t")"
  n_seeds="$(find "$corpus_seed" -type f | wc -l)"
  echo "== fuzz_$t: ${SECONDS_EACH}s, ${n_seeds} seeds, ${#regressions[@]} regressions"
  rc=0
  rm -f "$OUT/$t"/fuzz-*.log
  # With -jobs, each job writes its own fuzz-<n>.log into the working directory.
  # -jobs=1 would still fork a child with its own log: only a real parallel run asks for jobs.
  parallel=()
  [ "$JOBS" -gt 1 ] && parallel=(-jobs="$JOBS" -workers="$JOBS")
  (cd "$OUT/$t" && "$bin" "${LIMITS[@]}" -max_total_time="$SECONDS_EACH" "${parallel[@]}" \
    -print_final_stats=1 -artifact_prefix="$OUT/$t/" "$BUILD/corpus/$t" \
    "$corpus_seed") >"$OUT/$t/log.txt" 2>&1 || rc=$?
  logs=("$OUT/$t/log.txt")
  [ "$JOBS" -gt 1 ] && mapfile -t logs < <(ls "$OUT/$t"/fuzz-*.log 2>/dev/null)
  execs=0 rate=0
  for l in "${logs[@]}"; do
    execs=$((execs + $(stat_of "$l" number_of_executed_units || echo 0)))
    rate=$((rate + $(stat_of "$l" average_exec_per_sec || echo 0)))
  done
  found="$(find "$OUT/$t" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 -name 'timeout-*' \
             -o -maxdepth 1 -name 'oom-*' -o -maxdepth 1 -name 'leak-*' | wc -l)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$n_seeds" "${#regressions[@]}" "$execs" "$rate" "$found" \
    >>"$OUT/summary.tsv"
  echo "   executions $execs, exec/s $rate, findings $found"
  if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
    echo "fuzz_$t: finding (exit $rc); log $OUT/$t/log.txt" >&2
    grep -E "ERROR|pv fuzz finding|runtime error" "$OUT/$t/log.txt" | head -5 >&2 || true
    status=1
  fi
done
column -t "$OUT/summary.tsv" 2>/dev/null || cat "$OUT/summary.tsv"
exit $status
