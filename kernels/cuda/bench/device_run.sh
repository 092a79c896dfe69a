#!/bin/bash
# One device call: GPU facts, every CUDA falsifier (twice, for the runs a DISCHARGED level
# asks), the kernel-parity sweep under compute-sanitizer memcheck, and the CUDA benchmarks.
# Run from the repository root of the device copy with the carried folder as $1
# (binaries in $1/bin, shared libs in $1/lib, a source tree with fixtures in $1/src).
set -u
D=${1:-.devcarry/cuda}
export LD_LIBRARY_PATH=$D/lib PV_SOURCE_DIR=$D/src
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
for run in 1 2; do
  "$D/bin/pv_falsifiers" --gtest_filter="${PV_FILTER:-Cuda*}" \
    --gtest_output="json:$OUT/cuda_tests_run$run.json" >"$OUT/cuda_tests_run$run.log" 2>&1
  echo "tests run $run rc=$?"; grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED|worst nmse|nmse [0-9]|exact' \
    "$OUT/cuda_tests_run$run.log" | head -40
done
if [ "${PV_MEMCHECK:-1}" = 1 ]; then
  PV_SEED=12345 compute-sanitizer --tool memcheck --error-exitcode 99 \
    "$D/bin/pv_falsifiers" --gtest_filter='CudaKernelParity.*:CudaOracleBlocks.*' \
    >"$OUT/memcheck.log" 2>&1
  echo "memcheck rc=$?"; tail -4 "$OUT/memcheck.log"
fi
if [ "${PV_BENCH:-1}" = 1 ]; then
  "$D/bin/pv_cuda_bench" --benchmark_out="$OUT/cuda_bench.json" --benchmark_out_format=json \
    ${PV_BENCH_FILTER:+--benchmark_filter=$PV_BENCH_FILTER} >"$OUT/cuda_bench.log" 2>&1
  echo "bench rc=$?"; cat "$OUT/cuda_bench.log" | cut -c1-220
fi
