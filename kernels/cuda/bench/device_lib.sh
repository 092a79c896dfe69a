#!/bin/bash
# Shared steps of the device scripts (source it; $OUT is the device's result folder).
#   device_setup DIR        D = the carried folder (bin/, lib/), libraries on the path,
#                           the GPU named in $OUT/gpu.txt
#   device_parity SEED F    pv_falsifiers --gtest_filter=F into $OUT/parity.log, summarised
#   device_row              one line per benchmark: name, time, ratios, tokens/s (stdin)
#   device_side_by_side F   pv_cuda_bench and pv_cuda_bench_old (the previous kernels under
#                           this bench source) on filter F, logs + JSON into $OUT
#   device_pack NAME        everything under $OUT into one archive (the device returns a
#                           limited number of files)
device_setup() {
  D=$(cd "${1:-.devcarry/lead}" && pwd)
  export LD_LIBRARY_PATH=$D/lib PV_SOURCE_DIR=$PWD
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
}
device_parity() {
  PV_SEED=$1 "$D/bin/pv_falsifiers" --gtest_filter="$2" >"$OUT/parity.log" 2>&1
  echo "parity rc=$?"
  grep -E 'cases, worst|greedy 32|PASSED|FAILED|Failure' "$OUT/parity.log" | head -30
}
device_row() {
  awk '/^(copy|matvec|decode)/{printf "%-44s %9s ", $1, $2; for (i=5;i<=NF;i++) if ($i ~ /ratio_vs_copy|ratio_vs_same_size|host_enqueue|tok_per_s=/) printf "%s ", $i; printf "\n"}'
}
device_side_by_side() {
  for b in pv_cuda_bench pv_cuda_bench_old; do
    [ -x "$D/bin/$b" ] || continue
    "$D/bin/$b" --benchmark_filter="$1" --benchmark_out="$OUT/$b.json" \
      --benchmark_out_format=json >"$OUT/$b.log" 2>&1
    echo "$b rc=$?"; device_row <"$OUT/$b.log"
  done
}
device_pack() {
  tar -C "$OUT" -czf "/tmp/$1.tgz" . && rm -rf "${OUT:?}"/* && mv "/tmp/$1.tgz" "$OUT/"
}
# The matvec shapes of issue 5's target (and the 7B q/o and lm_head), plus decode.
DEVICE_TARGETS='copy|matvec.*/(Q4_K|Q8_0)/(4096x14336|18944x3584|3584x18944|152064x3584|3584x3584)|decode'
