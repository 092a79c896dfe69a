#!/bin/bash
# Session 3: every kernel launched as a programmatic dependent (the small ops wait first
# thing): all CUDA falsifiers, then decode and matvec timings with it and without PDL
# (PV_CUDA_PDL=0) in the same call. $1 = carried folder (bin/, lib/).
set -u
D=$(cd "${1:-.devcarry/lead}" && pwd)
export LD_LIBRARY_PATH=$D/lib PV_SOURCE_DIR=$PWD
PV_SEED=782 "$D/bin/pv_falsifiers" --gtest_filter='Cuda*' >"$OUT/cuda-tests.log" 2>&1
echo "cuda tests rc=$?"; grep -E 'cases, worst|greedy 32|PASSED|FAILED|Failure' "$OUT/cuda-tests.log" | head -30
row() { awk '/^(copy|matvec|decode)/{printf "%-44s %9s ", $1, $2; for (i=5;i<=NF;i++) if ($i ~ /host_enqueue|ratio_vs_copy|tok_per_s=/) printf "%s ", $i; printf "\n"}'; }
for pdl in 1 0; do
  echo "PV_CUDA_PDL=$pdl"
  PV_CUDA_PDL=$pdl "$D/bin/pv_cuda_bench" --benchmark_filter='^matvec/(Q4_K|Q8_0)/(4096x14336|3584x3584)|decode' 2>&1 | row
done
