#!/bin/bash
# Session 3, first device call: correctness of the reused-codes matvecs (kernel parity,
# output parity) and the benchmarks of this build beside session 2's kernels
# (pv_cuda_bench_old: 96e0b53's kernels under this bench source), plus A/B of the batch-1
# forms at the target shapes. $1 = carried folder (bin/, lib/).
set -u
. "$(dirname "$0")/device_lib.sh"
device_setup "${1:-}"
device_parity 777 'CudaKernelParity.Matmul*:CudaOutputParity.*'
device_side_by_side "$DEVICE_TARGETS"
for form in rows columns; do
  PV_CUDA_MATVEC_FORM=$form "$D/bin/pv_cuda_bench" \
    --benchmark_filter='^matvec/(Q4_K|Q8_0)/(4096x14336|18944x3584|3584x18944)' >"$OUT/form-$form.log" 2>&1
  echo "form=$form rc=$?"; device_row <"$OUT/form-$form.log"
done
device_pack device-s3
