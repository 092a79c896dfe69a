#!/bin/bash
# Batch-1 int8-activation matvec, round 2: parity falsifiers, the benchmarks, and a sweep
# of the L2 prefetch distance (PV_CUDA_MATVEC_PREFETCH, row groups ahead; 0 = none) and
# of the slots-per-thread / rows-per-group forms on the 4096x14336 and 7B FFN shapes.
set -u
D=$(cd "${1:-.devcarry/lead}" && pwd)
export LD_LIBRARY_PATH=$D/lib PV_SOURCE_DIR=$PWD
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
"$D/bin/pv_falsifiers" --gtest_filter='CudaKernelParity.*:CudaGqa*:CudaOutputParity.*' >"$OUT/parity.log" 2>&1
echo "parity rc=$?"; grep -E '^\[ +(FAILED|PASSED)|worst nmse|Failure' "$OUT/parity.log" | head -20
row() { awk -v t="$1" '/^(copy|matvec|decode)/{printf "%s %-44s %9s %s ", t, $1, $2, $3; for (i=5;i<=NF;i++) if ($i ~ /ratio|tok_per_s/) printf "%s ", $i; printf "\n"}'; }
"$D/bin/pv_cuda_bench" --benchmark_out="$OUT/bench.json" --benchmark_out_format=json 2>&1 | row auto
S='matvec/Q(4_K|8_0)/(4096x14336|3584x18944|18944x3584|14336x4096)'
for P in 0 3 4 6; do PV_CUDA_MATVEC_PREFETCH=$P "$D/bin/pv_cuda_bench" --benchmark_filter="$S" 2>&1 | row "P=$P"; done
for KR in "2 2" "1 1" "2 1"; do set -- $KR
  PV_CUDA_MATVEC_K=$1 PV_CUDA_MATVEC_ROWS=$2 "$D/bin/pv_cuda_bench" --benchmark_filter="$S" 2>&1 | row "K=$1,R=$2"; done
