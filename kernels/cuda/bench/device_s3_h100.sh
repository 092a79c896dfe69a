#!/bin/bash
# Session 3: the H200-tuned forms on an H100 (copy ~3 TB/s): the target shapes and decode,
# this build beside session 2's kernels, plus the kernel-parity and output-parity tests.
# $1 = carried folder (bin/, lib/).
set -u
. "$(dirname "$0")/device_lib.sh"
device_setup "${1:-}"
device_parity 783 'CudaKernelParity.Matmul*:CudaOutputParity.*'
device_side_by_side "$DEVICE_TARGETS"
device_pack device-s3-h100
