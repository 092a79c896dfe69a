#!/bin/bash
# Session 3, third round: the column-stationary kernel with two register buffers in turn
# (two row groups per block in flight): parity, the benchmarks beside session 2's kernels,
# and the L2 prefetch distance past the two groups. $1 = carried folder (bin/, lib/).
set -u
D=$(cd "${1:-.devcarry/lead}" && pwd)
export LD_LIBRARY_PATH=$D/lib PV_SOURCE_DIR=$PWD
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
PV_SEED=779 "$D/bin/pv_falsifiers" --gtest_filter='CudaKernelParity.Matmul*:CudaOutputParity.*' \
  >"$OUT/parity.log" 2>&1
echo "parity rc=$?"; grep -E 'cases, worst|PASSED|FAILED|Failure' "$OUT/parity.log" | head -20
row() { awk '/^(copy|matvec|decode)/{printf "%-44s %9s ", $1, $2; for (i=5;i<=NF;i++) if ($i ~ /ratio_vs_copy|ratio_vs_same_size_read|tok_per_s=/) printf "%s ", $i; printf "\n"}'; }
F='copy|matvec.*/(Q4_K|Q8_0)/(4096x14336|18944x3584|3584x18944|152064x3584|3584x3584)|decode'
for b in pv_cuda_bench pv_cuda_bench_old; do
  "$D/bin/$b" --benchmark_filter="$F" --benchmark_out="$OUT/$b.json" \
    --benchmark_out_format=json >"$OUT/$b.log" 2>&1
  echo "$b rc=$?"; row <"$OUT/$b.log"
done
for a in 0 2 3; do
  echo "ahead=$a"
  PV_CUDA_MATVEC_PREFETCH=$a "$D/bin/pv_cuda_bench" \
    --benchmark_filter='^matvec/(Q4_K|Q8_0)/(4096x14336|18944x3584|3584x18944)' 2>&1 | row
done
for r in 1; do echo "R=$r"; PV_CUDA_MATVEC_ROWS=$r "$D/bin/pv_cuda_bench" \
    --benchmark_filter='^matvec/(Q4_K|Q8_0)/(4096x14336|18944x3584)' 2>&1 | row; done
tar -C "$OUT" -czf /tmp/device-s3c.tgz . && rm -rf "${OUT:?}"/* && mv /tmp/device-s3c.tgz "$OUT/"
