#!/bin/bash
# The GPU evidence and measurements of one build, on a machine with an NVIDIA GPU, run
# from the repository root (kernels/cuda/README.md says how the lent machine runs it):
#   1. pv validate --mutants of the CUDA contracts (kernel-parity-v1, cpu-vs-gpu-output-
#      parity-v1; the GPU-only planted bugs run here, the CPU has no CUDA to plant them in):
#      evidence bundles carrying this device's fingerprint, packed as evidence.tar.gz,
#      which unpacks into evidence/ (runs/<machine-id>/<contract>/<falsifier>.json);
#   2. the CUDA-only model tests with their per-stage tables, pv generate on both
#      backends, and pv trace + pv bisect CPU vs CUDA on a Q4_K and a Q8_0 fixture;
#   3. compute-sanitizer memcheck over the op parity tests (their cuda instances), the
#      oracle blocks and the first-token model parity;
#   4. pv_cuda_bench (PV_DEVICE_BENCH_FILTER, default every benchmark), and beside it
#      pv_cuda_bench_old when bin/ holds one (older kernels built with this bench source).
# $1 = the folder with bin/ (pv, pv_falsifiers, pv_cuda_bench[, pv_cuda_bench_old]), lib/
# (their shared libraries) and `commit` (default .devcarry/lead; a CUDA build folder works
# on a machine with the -dev packages). $OUT = where the results go: gpu.txt,
# validate.log and evidence.tar.gz, and after a full run everything in one device.tgz.
# PV_DEVICE_VALIDATE_ONLY=1 stops after step 1 (an evidence refresh only).
set -u
# shellcheck source=kernels/cuda/bench/device_lib.sh
. "$(dirname "$0")/device_lib.sh"
device_setup "${1:-}" || exit 1

rm -rf /tmp/ev
"$D/bin/pv" validate --mutants --bin-dir "$D/bin" --source-root . --evidence-dir /tmp/ev --timeout 600 \
  contracts/kernel-parity-v1.yaml contracts/cpu-vs-gpu-output-parity-v1.yaml >"$OUT/validate.log" 2>&1
echo "validate rc=$?"
tail -30 "$OUT/validate.log"
tar -C /tmp/ev -czf "$OUT/evidence.tar.gz" runs
[ "${PV_DEVICE_VALIDATE_ONLY:-0}" = 1 ] && exit 0

# The op tests are value-parameterised over the backends (their cuda instances end in
# /cuda); the model-level and oracle-block tests are CUDA-only suites.
"$D/bin/pv_falsifiers" --gtest_filter='CudaOutputParity.*:CudaGqaAttention.*' \
  >"$OUT/output_parity.log" 2>&1
echo "output parity rc=$?"
grep -E 'greedy 32|chain nmse|PASSED|FAILED' "$OUT/output_parity.log"

F=model/fixtures/qwen2-gqa4/qwen2-gqa4-q4_k.gguf
for b in cpu cuda; do
  "$D/bin/pv" generate --model "$F" --tokens 1,7,42,5 --max-new 16 --backend $b 2>&1 | tail -2
done
for F in model/fixtures/qwen2-gqa4/qwen2-gqa4-q4_k.gguf \
  model/fixtures/qwen2-gqa7-tied/qwen2-gqa7-tied-q8_0.gguf; do
  n=$(basename "$F" .gguf)
  for b in cpu cuda; do
    "$D/bin/pv" trace --model "$F" --tokens 1,7,42,5 --stages all --layers all --backend $b \
      --out "/tmp/trace-$n-$b" >/dev/null 2>&1
    echo "trace $n $b rc=$?"
  done
  "$D/bin/pv" bisect "/tmp/trace-$n-cpu" "/tmp/trace-$n-cuda" >"$OUT/bisect-$n-cpu-vs-cuda.txt" 2>&1
  echo "bisect $n rc=$?"
  head -50 "$OUT/bisect-$n-cpu-vs-cuda.txt"
done

PV_SEED=12345 compute-sanitizer --tool memcheck --error-exitcode 99 "$D/bin/pv_falsifiers" \
  --gtest_filter='*/cuda:KernelParityCuda.*:CudaOracleBlocks.*:CudaOutputParity.First*' >"$OUT/memcheck.log" 2>&1
echo "memcheck rc=$?"
grep -E 'ERROR SUMMARY|PASSED|FAILED' "$OUT/memcheck.log"

device_bench "${PV_DEVICE_BENCH_FILTER:-.}"
device_pack device
