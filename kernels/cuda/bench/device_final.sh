#!/bin/bash
# Final device call of a session: `pv validate` of the CUDA contracts on the GPU (evidence
# bundles with the device fingerprint), pv generate / trace / bisect CPU vs CUDA,
# compute-sanitizer memcheck, and the benchmarks of this build beside the previous
# kernels' (pv_cuda_bench_old: the previous session's kernels built with this bench
# source; session 2: 7b7782e, session 3: 96e0b53) on the same GPU.
# $1 = carried folder: bin/ (pv, pv_falsifiers, pv_cuda_bench[, pv_cuda_bench_old]), lib/.
# PV_DEVICE_VALIDATE_ONLY=1 stops after the evidence bundles.
set -u
D=$(cd "${1:-.devcarry/lead}" && pwd)
export LD_LIBRARY_PATH=$D/lib PV_SOURCE_DIR=$PWD
# The device copy's .git is stale: the commit staged beside the binaries names the sources.
[ -f "$D/commit" ] && export PV_GIT_COMMIT="$(cat "$D/commit")"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
"$D/bin/pv" validate --bin-dir "$D/bin" --source-root . --evidence-dir /tmp/ev --timeout 600 \
  contracts/kernel-parity-v1.yaml contracts/cpu-vs-gpu-output-parity-v1.yaml >"$OUT/validate.log" 2>&1
echo "validate rc=$?"; tail -30 "$OUT/validate.log"
tar -C /tmp -czf "$OUT/evidence.tar.gz" ev
[ "${PV_DEVICE_VALIDATE_ONLY:-0}" = 1 ] && exit 0  # evidence refresh only
"$D/bin/pv_falsifiers" --gtest_filter='CudaOutputParity.*:CudaGqa*' >"$OUT/output_parity.log" 2>&1
echo "output parity rc=$?"; grep -E 'greedy 32|chain nmse|PASSED|FAILED' "$OUT/output_parity.log"
F=model/fixtures/qwen2-gqa4/qwen2-gqa4-q4_k.gguf
for b in cpu cuda; do "$D/bin/pv" generate --model "$F" --tokens 1,7,42,5 --max-new 16 --backend $b 2>&1 | tail -2; done
for F in model/fixtures/qwen2-gqa4/qwen2-gqa4-q4_k.gguf model/fixtures/qwen2-gqa7-tied/qwen2-gqa7-tied-q8_0.gguf; do
  n=$(basename "$F" .gguf)
  for b in cpu cuda; do
    "$D/bin/pv" trace --model "$F" --tokens 1,7,42,5 --stages all --layers all --backend $b \
      --out "/tmp/trace-$n-$b" >/dev/null 2>&1; echo "trace $n $b rc=$?"
  done
  "$D/bin/pv" bisect "/tmp/trace-$n-cpu" "/tmp/trace-$n-cuda" >"$OUT/bisect-$n-cpu-vs-cuda.txt" 2>&1
  echo "bisect $n rc=$?"; head -50 "$OUT/bisect-$n-cpu-vs-cuda.txt"
done
PV_SEED=12345 compute-sanitizer --tool memcheck --error-exitcode 99 "$D/bin/pv_falsifiers" \
  --gtest_filter='CudaKernelParity.*:CudaOracleBlocks.*:CudaOutputParity.First*' >"$OUT/memcheck.log" 2>&1
echo "memcheck rc=$?"; grep -E 'ERROR SUMMARY|PASSED|FAILED' "$OUT/memcheck.log"
row() { awk '/^(copy|matvec|decode)/{printf "%-48s %9s %s ", $1, $2, $3; for (i=5;i<=NF;i++) if ($i ~ /ratio|tok_per_s|GBps/) printf "%s ", $i; printf "\n"}'; }
for b in pv_cuda_bench pv_cuda_bench_old; do
  [ -x "$D/bin/$b" ] || continue
  "$D/bin/$b" --benchmark_out="$OUT/$b.json" --benchmark_out_format=json >"$OUT/$b.log" 2>&1
  echo "$b rc=$?"; row <"$OUT/$b.log"
done
# One archive back (the device returns a limited number of files).
tar -C "$OUT" -czf /tmp/device-final.tgz . && rm -rf "${OUT:?}"/* && mv /tmp/device-final.tgz "$OUT/"
