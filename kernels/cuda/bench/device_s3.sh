#!/bin/bash
# Session 3, first device call: correctness of the reused-codes matvecs (kernel parity,
# output parity) and the benchmarks of this build beside session 2's kernels
# (pv_cuda_bench_old: 96e0b53's kernels under this bench source), plus A/B of the batch-1
# forms at the target shapes. $1 = carried folder (bin/, lib/).
set -u
D=$(cd "${1:-.devcarry/lead}" && pwd)
export LD_LIBRARY_PATH=$D/lib PV_SOURCE_DIR=$PWD
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
PV_SEED=777 "$D/bin/pv_falsifiers" --gtest_filter='CudaKernelParity.Matmul*:CudaOutputParity.*' \
  >"$OUT/parity.log" 2>&1
echo "parity rc=$?"; grep -E 'cases, worst|greedy 32|PASSED|FAILED|Failure' "$OUT/parity.log" | head -30
row() { awk '/^(copy|matvec|decode)/{printf "%-44s %9s ", $1, $2; for (i=5;i<=NF;i++) if ($i ~ /ratio|tok_per_s=/) printf "%s ", $i; printf "\n"}'; }
F='copy|matvec.*/(Q4_K|Q8_0)/(4096x14336|18944x3584|3584x18944|152064x3584|3584x3584)|decode'
for b in pv_cuda_bench pv_cuda_bench_old; do
  "$D/bin/$b" --benchmark_filter="$F" --benchmark_out="$OUT/$b.json" \
    --benchmark_out_format=json >"$OUT/$b.log" 2>&1
  echo "$b rc=$?"; row <"$OUT/$b.log"
done
for form in rows columns; do
  PV_CUDA_MATVEC_FORM=$form "$D/bin/pv_cuda_bench" \
    --benchmark_filter='^matvec/(Q4_K|Q8_0)/(4096x14336|18944x3584|3584x18944)' >"$OUT/form-$form.log" 2>&1
  echo "form=$form rc=$?"; row <"$OUT/form-$form.log"
done
tar -C "$OUT" -czf /tmp/device-s3.tgz . && rm -rf "${OUT:?}"/* && mv /tmp/device-s3.tgz "$OUT/"
