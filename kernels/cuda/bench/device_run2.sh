#!/bin/bash
# Session 1 (split-K kernel, removed in session 2): PV_CUDA_MATVEC_ROWS then meant rows per
# thread block (1, 2, 4); it now means rows per group of the column-stationary form (1, 2).
# Second device call: the multi-row batch-1 matvec. Correctness with 1, 2 and 4 rows per
# warp (the sweep covers partial row groups), memcheck, then the benchmarks for each.
set -u
D=${1:-.devcarry/cuda}
export LD_LIBRARY_PATH=$D/lib PV_SOURCE_DIR=$D/src
for R in 1 4; do
  PV_CUDA_MATVEC_ROWS=$R "$D/bin/pv_falsifiers" --gtest_filter='CudaKernelParity.Matmul*:CudaGqa*' \
    >"$OUT/rows$R.log" 2>&1
  echo "rows=$R rc=$?"; grep -E 'worst nmse|PASSED|FAILED' "$OUT/rows$R.log"
done
PV_MEMCHECK=1 PV_BENCH=0 bash "$D/device_run.sh" "$D"
for R in 1 4; do
  PV_CUDA_MATVEC_ROWS=$R "$D/bin/pv_cuda_bench" --benchmark_filter='matvec/Q(4_K|8_0|6_K|4_0)/4096x14336' \
    2>&1 | grep matvec | cut -c1-150 | sed "s/^/rows=$R /"
done
"$D/bin/pv_cuda_bench" --benchmark_out="$OUT/cuda_bench.json" --benchmark_out_format=json \
  >"$OUT/cuda_bench.log" 2>&1
echo "bench rc=$?"; grep -E 'copy|matvec|decode' "$OUT/cuda_bench.log" | cut -c1-250
