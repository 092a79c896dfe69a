#!/bin/bash
# Session 3: two register buffers for R = 1 forms only (device_s3_c.sh measured them on
# every form): parity, the benchmarks beside session 2's kernels, and R = 1 for the forms
# that round x. $1 = carried folder (bin/, lib/).
set -u
. "$(dirname "$0")/device_lib.sh"
device_setup "${1:-}"
device_parity 780 'CudaKernelParity.Matmul*:CudaOutputParity.*'
device_side_by_side "$DEVICE_TARGETS"
echo "R=1"; PV_CUDA_MATVEC_ROWS=1 "$D/bin/pv_cuda_bench" \
  --benchmark_filter='^matvec_rounding_x/(Q4_K|Q8_0)/(4096x14336|18944x3584)' 2>&1 | device_row
device_pack device-s3e
