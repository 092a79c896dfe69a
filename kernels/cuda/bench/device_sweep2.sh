#!/bin/bash
# Prologue prefetch (row groups 1..P-1 requested from L2 before x is quantized): matvec
# benchmarks at prefetch distances 2, 3 and 4.
set -u
D=$(cd "${1:-.devcarry/lead}" && pwd)
export LD_LIBRARY_PATH=$D/lib
row() { awk -v t="$1" '/^matvec/{printf "%s %-44s %9s %s ", t, $1, $2, $3; for (i=5;i<=NF;i++) if ($i ~ /ratio_vs_copy/) printf "%s ", $i; printf "\n"}'; }
S='matvec/Q(4_K|8_0)/(4096x14336|3584x18944|18944x3584|14336x4096|3584x3584)'
for P in 2 3 4; do PV_CUDA_MATVEC_PREFETCH=$P "$D/bin/pv_cuda_bench" --benchmark_filter="$S" 2>&1 | row "P=$P"; done
PV_CUDA_MATVEC_K=1 PV_CUDA_MATVEC_ROWS=1 "$D/bin/pv_cuda_bench" --benchmark_filter="$S" 2>&1 | row "K=1,R=1,P=2"
