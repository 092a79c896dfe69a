#!/usr/bin/env bash
# Shared by the README's two commands: install what is missing (Debian 12 packages),
# then configure and build. Idempotent: a second run installs nothing and rebuilds
# only what changed.
set -euo pipefail

PV_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PV_BUILD="${PV_BUILD:-$PV_ROOT/build}"

# chromium: the report test renders pv report headless (skips as fixture-absent without it).
# libpugixml-dev: the JUnit reports of ctest and pytest. python3-pytest, cargo: the runner
# falsifiers run real pytest suites and cargo crates (harness/testdata/runners/).
# clang, libclang-rt-14-dev: the libFuzzer targets (fuzz/); clang only recommends the
# runtime that holds libFuzzer and the sanitizers, and recommends are not installed here.
PV_PACKAGES=(cmake ninja-build g++ git pkg-config chromium libyaml-cpp-dev libgtest-dev libgmock-dev
             librapidcheck-dev libfmt-dev libcli11-dev nlohmann-json3-dev libbenchmark-dev libicu-dev
             liblzma-dev python3-numpy libpugixml-dev python3-pytest cargo libsodium-dev clang
             libclang-rt-14-dev)

pv_install_deps() {
  local missing=()
  for p in "${PV_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "pv: installing ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

pv_build() {
  # CUDA is built when nvcc is found (PV_CUDA=AUTO); export PV_CUDA=OFF to skip it.
  local cuda_root=/usr/local/cuda
  if [ -x "$cuda_root/bin/nvcc" ] && ! command -v nvcc >/dev/null 2>&1; then
    export PATH="$cuda_root/bin:$PATH"
  fi
  cmake -S "$PV_ROOT" -B "$PV_BUILD" -G Ninja -DCMAKE_BUILD_TYPE="${PV_BUILD_TYPE:-RelWithDebInfo}" \
    -DPV_CUDA="${PV_CUDA:-AUTO}" ${PV_CMAKE_ARGS:-} >/dev/null
  cmake --build "$PV_BUILD" -j "$(nproc)"
}
