#!/usr/bin/env bash
# The test command: install what is missing, build, run every test (ctest: the
# falsifier binary's tests one by one, skips reported as skips), then the main job
# itself so a contract that no longer validates fails the suite.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
pv_install_deps
pv_build
cd "$PV_BUILD"
ctest --output-on-failure -j "$(nproc)" --timeout 600
cd "$PV_ROOT"
"$PV_BUILD/bin/pv" validate --jobs "$(nproc)" contracts/*.yaml
PV_BIN="$PV_BUILD/bin/pv" "$PV_BUILD/bin/pv" validate --config examples/numpy-engine/pv.yaml --evidence-dir examples/numpy-engine/evidence examples/numpy-engine/contracts/*.yaml
