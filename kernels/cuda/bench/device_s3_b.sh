#!/bin/bash
# Session 3, second round: parity of the retuned forms, this build's benchmarks beside
# session 2's kernels (pv_cuda_bench_old), the lm_head shapes in both forms, and the
# isolated durations of one matvec and one same-size read kernel under ncu.
# $1 = carried folder (bin/, lib/).
set -u
D=$(cd "${1:-.devcarry/lead}" && pwd)
export LD_LIBRARY_PATH=$D/lib PV_SOURCE_DIR=$PWD
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
PV_SEED=778 "$D/bin/pv_falsifiers" --gtest_filter='CudaKernelParity.Matmul*:CudaOutputParity.*' \
  >"$OUT/parity.log" 2>&1
echo "parity rc=$?"; grep -E 'cases, worst|PASSED|FAILED|Failure' "$OUT/parity.log" | head -20
row() { awk '/^(copy|matvec|decode)/{printf "%-44s %9s ", $1, $2; for (i=5;i<=NF;i++) if ($i ~ /ratio|tok_per_s=/) printf "%s ", $i; printf "\n"}'; }
F='copy|matvec.*/(Q4_K|Q8_0)/(4096x14336|18944x3584|3584x18944|152064x3584|3584x3584)|decode'
for b in pv_cuda_bench pv_cuda_bench_old; do
  "$D/bin/$b" --benchmark_filter="$F" --benchmark_out="$OUT/$b.json" \
    --benchmark_out_format=json >"$OUT/$b.log" 2>&1
  echo "$b rc=$?"; row <"$OUT/$b.log"
done
for form in rows columns; do
  PV_CUDA_MATVEC_FORM=$form "$D/bin/pv_cuda_bench" \
    --benchmark_filter='^matvec/(Q4_K|Q8_0)/(152064x3584|18944x3584)' >"$OUT/form-$form.log" 2>&1
  echo "form=$form rc=$?"; row <"$OUT/form-$form.log"
done
timeout 240 ncu --clock-control none --metrics gpu__time_duration.sum,dram__bytes_read.sum \
  -k 'regex:matvec_act_int8|read_fold' -c 12 "$D/bin/pv_cuda_bench" \
  --benchmark_filter='^matvec/Q4_K/4096x14336' >"$OUT/ncu.log" 2>&1
echo "ncu rc=$?"; grep -E 'matvec_act_int8|read_fold|gpu__time_duration|dram__bytes_read|ERR' "$OUT/ncu.log" | cut -c1-150 | head -60
tar -C "$OUT" -czf /tmp/device-s3b.tgz . && rm -rf "${OUT:?}"/* && mv /tmp/device-s3b.tgz "$OUT/"
