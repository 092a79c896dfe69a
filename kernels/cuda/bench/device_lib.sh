#!/bin/bash
# Shared steps of the device scripts: source it from the repository root. $OUT is the
# folder whose files come back from the GPU machine (the lent one sends back at most 8
# files, so a run packs its logs into one archive with device_pack).
#   device_setup DIR      D = DIR (default .devcarry/lead): bin/ holds the binaries, lib/
#                         their shared libraries (put on LD_LIBRARY_PATH), `commit` the
#                         commit the binaries were built from (exported as PV_GIT_COMMIT:
#                         the device copy's .git is stale); the GPU goes to $OUT/gpu.txt
#   device_row            one line per benchmark of a pv_cuda_bench log on stdin: name,
#                         time, ratios to the copy and read ceilings, tokens/s
#   device_bench FILTER   pv_cuda_bench on FILTER (default: every benchmark), then
#                         pv_cuda_bench_old when bin/ holds one (older kernels built with
#                         this bench source, for a side-by-side on the same GPU); a log
#                         and a JSON per binary in $OUT
#   device_pack NAME      everything under $OUT into the one archive $OUT/NAME.tgz
: "${OUT:?OUT must name the folder for the results}"

device_setup() {
  D=$(cd "${1:-.devcarry/lead}" && pwd) || return 1
  export LD_LIBRARY_PATH="$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" PV_SOURCE_DIR=$PWD
  if [ -f "$D/commit" ]; then
    PV_GIT_COMMIT=$(cat "$D/commit")
    export PV_GIT_COMMIT
  fi
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
}

device_row() {
  awk '/^(copy|matvec|decode)/ {
    printf "%-48s %9s %s ", $1, $2, $3
    for (i = 5; i <= NF; i++) if ($i ~ /ratio|tok_per_s|host_enqueue/) printf "%s ", $i
    printf "\n"
  }'
}

device_bench() {
  local b
  for b in pv_cuda_bench pv_cuda_bench_old; do
    [ -x "$D/bin/$b" ] || continue
    "$D/bin/$b" --benchmark_filter="${1:-.}" --benchmark_out="$OUT/$b.json" \
      --benchmark_out_format=json >"$OUT/$b.log" 2>&1
    echo "$b rc=$?"
    device_row <"$OUT/$b.log"
  done
}

device_pack() {
  tar -C "$OUT" -czf "/tmp/$1.tgz" . && rm -rf "${OUT:?}"/* && mv "/tmp/$1.tgz" "$OUT/"
}
