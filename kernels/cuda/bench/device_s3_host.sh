#!/bin/bash
# Session 3: is the stream launch-bound? host_enqueue_us (host time to enqueue one matvec
# or one decode token) beside the GPU time. $1 = carried folder (bin/, lib/).
set -u
. "$(dirname "$0")/device_lib.sh"
device_setup "${1:-}"
lscpu | grep -E 'Model name|^CPU\(s\)'
"$D/bin/pv_cuda_bench" \
  --benchmark_filter='^matvec/(Q4_K|Q8_0)/(4096x14336|3584x3584|18944x3584)|decode' 2>&1 | device_row
