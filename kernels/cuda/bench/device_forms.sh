#!/bin/bash
# Batch-1 forms A/B: column-stationary (activations in registers) vs row-streaming
# (activation codes in shared memory, full occupancy), PV_CUDA_MATVEC_FORM=rows|columns:
# the matmul parity sweep and model parity under the rows form, then the benchmarks.
set -u
D=$(cd "${1:-.devcarry/lead}" && pwd)
export LD_LIBRARY_PATH=$D/lib PV_SOURCE_DIR=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
PV_CUDA_MATVEC_FORM=rows "$D/bin/pv_falsifiers" --gtest_filter='CudaKernelParity.Matmul*:CudaOutputParity.*:CudaGqa*' >"$OUT/parity_rows.log" 2>&1
echo "parity (rows form) rc=$?"; grep -E '^\[ +(FAILED|PASSED)|worst nmse|Failure|greedy' "$OUT/parity_rows.log" | head -20
row() { awk -v t="$1" '/^(copy|matvec|decode)/{printf "%s %-44s %9s %s ", t, $1, $2, $3; for (i=5;i<=NF;i++) if ($i ~ /ratio|tok_per_s/) printf "%s ", $i; printf "\n"}'; }
for F in rows columns; do PV_CUDA_MATVEC_FORM=$F "$D/bin/pv_cuda_bench" --benchmark_filter='copy|matvec/Q|decode' 2>&1 | row "$F"; done
