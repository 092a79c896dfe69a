#!/bin/bash
# Int8-activation, column-stationary batch-1 matvec (matvec_batch1.cu): the CUDA parity
# falsifiers, then the matvec benchmarks with the automatic choice and a K x R sweep.
# $1 = carried folder with bin/ (pv_falsifiers, pv_cuda_bench) and lib/.
set -u
D=$(cd "${1:-.devcarry/lead}" && pwd)
export LD_LIBRARY_PATH=$D/lib PV_SOURCE_DIR=$PWD
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
"$D/bin/pv_falsifiers" --gtest_filter='CudaKernelParity.*:CudaGqa*:CudaOracle*:CudaOutputParity.*' \
  >"$OUT/parity.log" 2>&1
echo "parity rc=$?"
grep -E '^\[ +(OK|FAILED|SKIPPED) |worst nmse|Failure|nmse [0-9]' "$OUT/parity.log" | head -60
# This build and, when carried, the previous kernels' bench side by side on one GPU.
for b in pv_cuda_bench pv_cuda_bench_old; do
  [ -x "$D/bin/$b" ] || continue
  "$D/bin/$b" --benchmark_filter="${BENCH_FILTER:-copy|matvec|decode}" \
    --benchmark_out="$OUT/$b.json" --benchmark_out_format=json >"$OUT/$b.log" 2>&1
  echo "$b rc=$?"
  grep -E '^(copy|matvec|decode)' "$OUT/$b.log" | awk '{printf "%-48s %9s %s ", $1, $2, $3; for (i=5;i<=NF;i++) if ($i ~ /ratio|tok_per_s/) printf "%s ", $i; printf "\n"}'
done
for K in 1 2 4; do
  for R in 1 2; do
    PV_CUDA_MATVEC_K=$K PV_CUDA_MATVEC_ROWS=$R "$D/bin/pv_cuda_bench" \
      --benchmark_filter='matvec/Q(4_K|8_0)/(4096x14336|3584x18944|18944x3584)' 2>&1 |
      grep -E '^matvec' | awk -v k=$K -v r=$R '{printf "K=%s R=%s %-28s %8s us ", k, r, $1, $2; for (i=5;i<=NF;i++) if ($i ~ /ratio/) printf "%s", $i; printf "\n"}'
  done
done
