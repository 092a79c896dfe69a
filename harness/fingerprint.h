// Where evidence was made: git state, compiler, CPU, GPU/driver (read from nvidia-smi
// through the no-shell runner; the harness never links CUDA), host and a short machine id.
#pragma once

#include <string>

namespace pv::harness {

struct Environment {
  std::string git_commit;
  bool git_dirty = false;
  std::string compiler;
  std::string cpu;
  std::string gpu;  // "" when no NVIDIA GPU is visible
  std::string driver;
  std::string cuda_runtime;  // the CUDA version nvidia-smi reports (tests may override)
  std::string host;
  std::string machine_id;  // $PV_MACHINE_ID, else sha256(cpu|gpu|driver|host)[:12]
};

Environment collect_environment(const std::string& source_root);
std::string machine_id_of(const Environment& env);

}  // namespace pv::harness
