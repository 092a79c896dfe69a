#!/bin/bash
# Session 3: every kernel launched as a programmatic dependent (the small ops wait first
# thing): all CUDA falsifiers, then decode and matvec timings with it and without PDL
# (PV_CUDA_PDL=0) in the same call. $1 = carried folder (bin/, lib/).
set -u
. "$(dirname "$0")/device_lib.sh"
device_setup "${1:-}"
device_parity 782 'Cuda*'
for pdl in 1 0; do
  echo "PV_CUDA_PDL=$pdl"
  PV_CUDA_PDL=$pdl "$D/bin/pv_cuda_bench" \
    --benchmark_filter='^matvec/(Q4_K|Q8_0)/(4096x14336|3584x3584)|decode' 2>&1 | device_row
done
