#!/bin/bash
# Final device call: model-level CPU-vs-CUDA parity (direct, with the per-stage tables),
# `pv validate` of the CUDA contracts writing evidence bundles with the GPU fingerprint,
# pv generate / trace / bisect on the CUDA backend, compute-sanitizer memcheck, benchmarks.
# $1 = carried folder: bin/ (pv, pv_falsifiers, pv_cuda_bench), lib/, src/ (the source
# tree the contracts' inputs_digest is computed over).
set -u
D=$(cd "${1:-.devcarry/cuda}" && pwd)
export LD_LIBRARY_PATH=$D/lib PV_SOURCE_DIR=$D/src
# The model fixtures travel in the repository copy (identical bytes); only the three the
# contracts use go into the source tree the digests are computed over.
for m in qwen2-gqa7-tied qwen2-gqa4 llama-gqa8; do cp -r model/fixtures/$m "$D/src/model/fixtures/"; done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
"$D/bin/pv_falsifiers" --gtest_filter='CudaOutputParity.*' >"$OUT/output_parity.log" 2>&1
echo "output parity rc=$?"; grep -E '^\[ +(OK|FAILED|SKIPPED) |beyond|greedy 32|Failure|first stage' "$OUT/output_parity.log" | head -40
F=$D/src/model/fixtures/qwen2-gqa4/qwen2-gqa4-q4_k.gguf
"$D/bin/pv" generate --model "$F" --tokens 1,7,42,5 --max-new 16 --backend cuda 2>&1 | tail -3
"$D/bin/pv" generate --model "$F" --tokens 1,7,42,5 --max-new 16 --backend cpu 2>&1 | tail -3
if "$D/bin/pv" trace --help >/dev/null 2>&1; then
  for b in cpu cuda; do
    "$D/bin/pv" trace --model "$F" --tokens 1,7,42,5 --stages all --layers all --backend $b \
      --out "/tmp/trace-$b" >/dev/null 2>&1; echo "trace $b rc=$?"
  done
  "$D/bin/pv" bisect /tmp/trace-cpu /tmp/trace-cuda >"$OUT/bisect_cpu_vs_cuda.txt" 2>&1
  echo "bisect rc=$?"; head -60 "$OUT/bisect_cpu_vs_cuda.txt"
fi
cd "$D/src"
"$D/bin/pv" validate --bin-dir "$D/bin" --evidence-dir /tmp/ev --timeout 600 \
  contracts/kernel-parity-v1.yaml contracts/cpu-vs-gpu-output-parity-v1.yaml >"$OUT/validate.log" 2>&1
echo "validate rc=$?"; cat "$OUT/validate.log" | tail -40
tar -C /tmp -czf "$OUT/evidence.tar.gz" ev
cd - >/dev/null
PV_SEED=12345 compute-sanitizer --tool memcheck --error-exitcode 99 "$D/bin/pv_falsifiers" \
  --gtest_filter='CudaKernelParity.*:CudaOracleBlocks.*:CudaOutputParity.First*' >"$OUT/memcheck.log" 2>&1
echo "memcheck rc=$?"; grep -E 'ERROR SUMMARY|PASSED|FAILED' "$OUT/memcheck.log"
[ "${PV_BENCH:-1}" = 1 ] && "$D/bin/pv_cuda_bench" --benchmark_out="$OUT/cuda_bench.json" --benchmark_out_format=json >/tmp/bench.log 2>&1
echo "bench rc=$?"; grep -E 'copy|matvec|decode' /tmp/bench.log | awk '{print $1, $2, $3}'
