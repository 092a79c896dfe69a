#!/bin/bash
# Session 3: does leaving room for the next matvec's blocks (fewer resident blocks per SM,
# so a programmatic dependent's blocks start, load their first row groups and wait beside
# the running kernel) cut the fixed cost per matvec? $1 = carried folder (bin/, lib/).
set -u
D=$(cd "${1:-.devcarry/lead}" && pwd)
export LD_LIBRARY_PATH=$D/lib
row() { awk '/^(copy|matvec|decode)/{printf "%-44s %9s ", $1, $2; for (i=5;i<=NF;i++) if ($i ~ /ratio_vs_copy|ratio_vs_same_size_read|tok_per_s=/) printf "%s ", $i; printf "\n"}'; }
for cap in 1 2; do for a in 1 3; do for r in 1 2; do
  echo "blocks/SM<=$cap ahead=$a R=$r"
  PV_CUDA_MATVEC_BLOCKS_PER_SM=$cap PV_CUDA_MATVEC_PREFETCH=$a PV_CUDA_MATVEC_ROWS=$r \
    "$D/bin/pv_cuda_bench" --benchmark_filter='^matvec/(Q4_K|Q8_0)/(4096x14336|18944x3584|3584x18944)' 2>&1 | row
done; done; done
