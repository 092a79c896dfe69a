#!/bin/bash
# Session 3: is the stream launch-bound? host_enqueue_us (host time to enqueue one matvec
# or one decode token) beside the GPU time. $1 = carried folder (bin/, lib/).
set -u
D=$(cd "${1:-.devcarry/lead}" && pwd)
export LD_LIBRARY_PATH=$D/lib
lscpu | grep -E 'Model name|^CPU\(s\)'
"$D/bin/pv_cuda_bench" --benchmark_filter='^matvec/(Q4_K|Q8_0)/(4096x14336|3584x3584|18944x3584)|decode' 2>&1 |
  awk '/^(matvec|decode)/{printf "%-44s %9s ", $1, $2; for (i=5;i<=NF;i++) if ($i ~ /host_enqueue|ratio_vs_copy|tok_per_s=/) printf "%s ", $i; printf "\n"}'
