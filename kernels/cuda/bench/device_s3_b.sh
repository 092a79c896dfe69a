#!/bin/bash
# Session 3, second round: parity of the retuned forms, this build's benchmarks beside
# session 2's kernels (pv_cuda_bench_old), the lm_head shapes in both forms, and the
# isolated durations of one matvec and one same-size read kernel under ncu.
# $1 = carried folder (bin/, lib/).
set -u
. "$(dirname "$0")/device_lib.sh"
device_setup "${1:-}"
device_parity 778 'CudaKernelParity.Matmul*:CudaOutputParity.*'
device_side_by_side "$DEVICE_TARGETS"
for form in rows columns; do
  PV_CUDA_MATVEC_FORM=$form "$D/bin/pv_cuda_bench" \
    --benchmark_filter='^matvec/(Q4_K|Q8_0)/(152064x3584|18944x3584)' >"$OUT/form-$form.log" 2>&1
  echo "form=$form rc=$?"; device_row <"$OUT/form-$form.log"
done
timeout 240 ncu --clock-control none --metrics gpu__time_duration.sum,dram__bytes_read.sum \
  -k 'regex:matvec_act_int8|read_fold' -c 12 "$D/bin/pv_cuda_bench" \
  --benchmark_filter='^matvec/Q4_K/4096x14336' >"$OUT/ncu.log" 2>&1
echo "ncu rc=$?"; grep -E 'matvec_act_int8|read_fold|gpu__time_duration|dram__bytes_read|ERR' "$OUT/ncu.log" | cut -c1-150 | head -60
device_pack device-s3b
