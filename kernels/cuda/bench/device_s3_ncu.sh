#!/bin/bash
# Session 3: Nsight Compute on one Q4_K 4096x14336 matvec (codes reused) and one
# same-size read kernel: DRAM throughput, occupancy, warp stall reasons.
# $1 = carried folder (bin/, lib/).
set -u
. "$(dirname "$0")/device_lib.sh"
device_setup "${1:-}"
timeout 400 ncu --clock-control none --section SpeedOfLight --section Occupancy \
  --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis \
  -k 'regex:matvec_act_int8' --launch-skip 40 -c 1 "$D/bin/pv_cuda_bench" \
  --benchmark_filter='^matvec/Q4_K/4096x14336' >"$OUT/ncu-q4k.log" 2>&1
echo "ncu rc=$?"
grep -vE '^==PROF==|^ *-+ *$|^$' "$OUT/ncu-q4k.log" | grep -E 'matvec|read_fold|Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Theoretical Occupancy|Registers|Block Size|Grid Size|Stall|Warp Cycles|Eligible|L2 Hit|Mem Busy|Max Bandwidth|Waves' | cut -c1-140 | head -80
