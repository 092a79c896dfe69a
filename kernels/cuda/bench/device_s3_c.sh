#!/bin/bash
# Session 3, third round: the column-stationary kernel with two register buffers in turn
# (two row groups per block in flight): parity, the benchmarks beside session 2's kernels,
# and the L2 prefetch distance past the two groups. $1 = carried folder (bin/, lib/).
set -u
. "$(dirname "$0")/device_lib.sh"
device_setup "${1:-}"
device_parity 779 'CudaKernelParity.Matmul*:CudaOutputParity.*'
device_side_by_side "$DEVICE_TARGETS"
for a in 0 2 3; do
  echo "ahead=$a"
  PV_CUDA_MATVEC_PREFETCH=$a "$D/bin/pv_cuda_bench" \
    --benchmark_filter='^matvec/(Q4_K|Q8_0)/(4096x14336|18944x3584|3584x18944)' 2>&1 | device_row
done
echo "R=1"; PV_CUDA_MATVEC_ROWS=1 "$D/bin/pv_cuda_bench" \
  --benchmark_filter='^matvec/(Q4_K|Q8_0)/(4096x14336|18944x3584)' 2>&1 | device_row
device_pack device-s3c
