#!/bin/bash
# Session 3 sweep: where the fixed per-matvec cost goes at the target shapes. Forms and
# prefetch distances by env knob, plus an nsys timeline (kernel durations vs gaps) when
# the device has nsys. $1 = carried folder (bin/, lib/).
set -u
D=$(cd "${1:-.devcarry/lead}" && pwd)
export LD_LIBRARY_PATH=$D/lib
row() { awk '/^(copy|matvec|decode)/{printf "%-44s %9s ", $1, $2; for (i=5;i<=NF;i++) if ($i ~ /ratio_vs_copy/) printf "%s ", $i; printf "\n"}'; }
F='^matvec/(Q4_K|Q8_0)/(4096x14336|18944x3584|3584x18944)'
for k in 1 2; do for r in 1 2; do for a in 0 2 4 8; do
  echo "K=$k R=$r ahead=$a"
  PV_CUDA_MATVEC_FORM=columns PV_CUDA_MATVEC_K=$k PV_CUDA_MATVEC_ROWS=$r PV_CUDA_MATVEC_PREFETCH=$a \
    "$D/bin/pv_cuda_bench" --benchmark_filter="$F" 2>&1 | row
done; done; done
which nsys ncu
if command -v nsys >/dev/null; then
  nsys profile -o /tmp/mv --force-overwrite true "$D/bin/pv_cuda_bench" \
    --benchmark_filter='^matvec/Q4_K/4096x14336' >/dev/null 2>&1
  nsys stats --report cuda_gpu_trace --format csv /tmp/mv.nsys-rep >"$OUT/trace.csv" 2>/dev/null
  nsys stats --report cuda_gpu_kern_sum /tmp/mv.nsys-rep 2>/dev/null | head -20
fi
