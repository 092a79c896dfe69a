#!/bin/bash
# Session 1 (split-K kernel, removed in session 2): PV_CUDA_MATVEC_ROWS then meant rows per
# thread block (1, 2, 4); it now means rows per group of the column-stationary form (1, 2).
# Split-K batch-1 matvec: correctness and speed for 1, 2 and 4 rows per thread block.
set -u
D=${1:-.devcarry/cuda}
export LD_LIBRARY_PATH=$D/lib PV_SOURCE_DIR=$D/src
for R in 1 2 4; do
  PV_CUDA_MATVEC_ROWS=$R "$D/bin/pv_falsifiers" --gtest_filter='CudaKernelParity.Matmul*:CudaGqa*' \
    >"$OUT/rows$R.log" 2>&1
  echo "rows=$R rc=$?"; grep -E 'worst nmse|PASSED|FAILED' "$OUT/rows$R.log"
done
for R in 1 2 4; do
  PV_CUDA_MATVEC_ROWS=$R "$D/bin/pv_cuda_bench" --benchmark_filter='copy|matvec/Q' 2>&1 |
    grep -E 'copy|matvec' | awk -v r=$R '{printf "rows=%s %-45s %8s us %s\n", r, $1, $2, $6}'
done
