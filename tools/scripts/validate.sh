#!/usr/bin/env bash
# The main job: install what is missing, build, and run `pv validate` over every
# contract on the embedded default fixtures (model/fixtures/). Extra arguments go to
# pv validate (e.g. --jobs 2, --json). Exit code is pv validate's: 0 good, 1 falsified
# or overclaimed, 2 usage/schema errors.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
pv_install_deps
pv_build
cd "$PV_ROOT"
exec "$PV_BUILD/bin/pv" validate "$@" contracts/*.yaml
