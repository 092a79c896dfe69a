#include "falsifiers/support/trace_helpers.h"

#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>

#include "model/forward.h"

namespace pv::testing {

std::unique_ptr<model::SyntheticModel> trace_model(uint64_t seed, kernels::GgmlType type) {
  model::SyntheticTypes types = model::SyntheticTypes::all(type);
  types.embedding = kernels::GgmlType::F32;
  return model::make_synthetic_model(model::tiny_qwen2_config(8, 2, 32, 2), seed, types);
}

model::TraceRunResult trace_all(const model::ModelConfig& config, const model::ModelWeights& w,
                                kernels::Backend& backend, const std::vector<int32_t>& tokens,
                                const std::string& dir, int max_new, const std::string& dtype) {
  model::Forward f(config, w, backend, 64);
  model::TraceMeta meta;
  meta.producer = "pv_falsifiers";
  meta.model = "synthetic";
  meta.dtype = dtype;
  meta.weight_type = std::string(kernels::type_name(w.layers.at(0).wq.type));
  const model::StagePlan plan = model::parse_plan("all", "all", config.n_layers);
  return model::run_trace(f, tokens, plan, dir, meta, max_new);
}

int run_pv(const std::vector<std::string>& args, std::string* out) {
  const std::string exe = std::string(PV_BINARY_DIR) + "/bin/pv";
  int pipefd[2];
  if (pipe(pipefd) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 1);
    close(pipefd[0]);
    close(pipefd[1]);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(exe.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  close(pipefd[1]);
  out->clear();
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) out->append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace pv::testing
