#!/bin/bash
# H200 sweep of the batch-1 int8-activation matvec: L2 prefetch distance
# (PV_CUDA_MATVEC_PREFETCH, row groups ahead) and (K, R) forms on the shapes.
set -u
D=$(cd "${1:-.devcarry/lead}" && pwd)
export LD_LIBRARY_PATH=$D/lib
row() { awk -v t="$1" '/^matvec/{printf "%s %-44s %9s %s ", t, $1, $2, $3; for (i=5;i<=NF;i++) if ($i ~ /ratio_vs_copy/) printf "%s ", $i; printf "\n"}'; }
S='matvec/Q(4_K|8_0)/(4096x14336|3584x18944|18944x3584|152064x3584)'
for P in 2 4 8 12; do PV_CUDA_MATVEC_PREFETCH=$P "$D/bin/pv_cuda_bench" --benchmark_filter="$S" 2>&1 | row "P=$P"; done
for KR in "1 1" "2 1" "2 2" "4 1"; do set -- $KR
  for P in 2 6; do
  PV_CUDA_MATVEC_PREFETCH=$P PV_CUDA_MATVEC_K=$1 PV_CUDA_MATVEC_ROWS=$2 "$D/bin/pv_cuda_bench" --benchmark_filter="$S" 2>&1 | row "K=$1,R=$2,P=$P"; done; done
