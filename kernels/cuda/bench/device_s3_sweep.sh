#!/bin/bash
# Session 3 sweep: where the fixed per-matvec cost goes at the target shapes, by env knob:
# slots per thread (K), rows per group (R), L2 prefetch distance. Ran on the one-buffer
# kernel of 46827d0's parent, where PV_CUDA_MATVEC_PREFETCH=a asked L2 for the group a
# strides ahead (today's 1 = that 2). Plus an nsys timeline when the device has nsys (the
# lent one did not). $1 = carried folder (bin/, lib/).
set -u
. "$(dirname "$0")/device_lib.sh"
device_setup "${1:-}"
F='^matvec/(Q4_K|Q8_0)/(4096x14336|18944x3584|3584x18944)'
for k in 1 2; do for r in 1 2; do for a in 0 2 4 8; do
  echo "K=$k R=$r ahead=$a"
  PV_CUDA_MATVEC_FORM=columns PV_CUDA_MATVEC_K=$k PV_CUDA_MATVEC_ROWS=$r PV_CUDA_MATVEC_PREFETCH=$a \
    "$D/bin/pv_cuda_bench" --benchmark_filter="$F" 2>&1 | device_row
done; done; done
which nsys ncu
if command -v nsys >/dev/null; then
  nsys profile -o /tmp/mv --force-overwrite true "$D/bin/pv_cuda_bench" \
    --benchmark_filter='^matvec/Q4_K/4096x14336' >/dev/null 2>&1
  nsys stats --report cuda_gpu_trace --format csv /tmp/mv.nsys-rep >"$OUT/trace.csv" 2>/dev/null
  nsys stats --report cuda_gpu_kern_sum /tmp/mv.nsys-rep 2>/dev/null | head -20
fi
