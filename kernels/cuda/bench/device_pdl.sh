#!/bin/bash
# Programmatic dependent launch A/B (pdl.cuh; PV_CUDA_PDL=0 turns it off) with the hybrid
# batch-1 form choice: parity falsifiers under the defaults, then the benchmarks with PDL
# on and off, and the two forms forced at PDL on.
set -u
D=$(cd "${1:-.devcarry/lead}" && pwd)
export LD_LIBRARY_PATH=$D/lib PV_SOURCE_DIR=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
"$D/bin/pv_falsifiers" --gtest_filter='CudaKernelParity.*:CudaOutputParity.*:CudaGqa*' >"$OUT/parity.log" 2>&1
echo "parity rc=$?"; grep -E '^\[ +(FAILED|PASSED)|worst nmse|Failure|greedy' "$OUT/parity.log" | head -24
row() { awk -v t="$1" '/^(copy|matvec|decode)/{printf "%s %-44s %9s %s ", t, $1, $2, $3; for (i=5;i<=NF;i++) if ($i ~ /ratio|tok_per_s/) printf "%s ", $i; printf "\n"}'; }
"$D/bin/pv_cuda_bench" --benchmark_filter='copy|matvec/Q|decode' 2>&1 | row pdl
PV_CUDA_PDL=0 "$D/bin/pv_cuda_bench" --benchmark_filter='copy|matvec/Q|decode' 2>&1 | row nopdl
for F in rows columns; do PV_CUDA_MATVEC_FORM=$F "$D/bin/pv_cuda_bench" --benchmark_filter='matvec/Q(4_K|8_0)' 2>&1 | row "pdl,$F"; done
