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
# --mutants: each falsifier's must_kill bugs are planted and its tests rerun; one that no
# longer kills a bug it declares is capped, which fails validate (an overclaim).
"$PV_BUILD/bin/pv" validate --mutants --jobs "$(nproc)" contracts/*.yaml
# The worked example of an outside engine (examples/numpy-engine): its own pytest suite,
# bound by its own contract, validated by the pv just built.
PV_BIN="$PV_BUILD/bin/pv" "$PV_BUILD/bin/pv" validate --config examples/numpy-engine/pv.yaml --evidence-dir examples/numpy-engine/evidence examples/numpy-engine/contracts/*.yaml
# The catalogue's coverage: every CPU bug of the planted-bug catalogue must be killed
# (README: the kill matrix); a bug that no falsifier declares is a hole. Each bug runs
# against the falsifiers that declare it (must_kill), which keeps the gate within
# minutes; validate just ran these tests without a bug, so the baseline is not repeated.
"$PV_BUILD/bin/pv" mutants --no-baseline --declared-only --jobs "$(nproc)" contracts/*.yaml
# The fuzz smoke run (fuzz/README.md): a clang ASan + UBSan build of the readers, every
# committed regression input, then PV_FUZZ_SECONDS of fuzzing per target from the seed
# corpus; any finding fails the suite. PV_FUZZ_SMOKE=0 leaves it out of a local run.
if [ "${PV_FUZZ_SMOKE:-1}" = 1 ]; then
  PV_FUZZ_BUILD="${PV_FUZZ_BUILD:-$PV_BUILD-fuzz}" PV_FUZZ_SECONDS="${PV_FUZZ_SECONDS:-10}" \
    "$PV_ROOT/fuzz/run.sh"
elif [ "${PV_FUZZ_SMOKE}" != 0 ]; then
  echo "test.sh: PV_FUZZ_SMOKE must be 0 or 1, not '${PV_FUZZ_SMOKE}'" >&2
  exit 2
fi
