#include "model/trace/trace_sink.h"

#include <fmt/format.h>

#include <filesystem>
#include <stdexcept>

#include "model/trace/aprt.h"

namespace pv::model {

std::string qk_rows_of(const ModelConfig& config) {
  return config.rope_style == kernels::RopeStyle::Interleaved ? kQkRowsGgufLlama : kQkRowsHf;
}

TraceDirSink::TraceDirSink(std::string dir, TraceMeta meta, const ModelConfig& config)
    : dir_(std::move(dir)), meta_(std::move(meta)) {
  meta_.entries.clear();
  meta_.qk_rows = qk_rows_of(config);
  meta_.qk_rows_inferred = false;
  meta_.n_heads = config.n_heads;
  meta_.n_kv_heads = config.n_kv_heads;
  meta_.head_dim = config.head_dim;
  std::filesystem::create_directories(dir_);
}

void TraceDirSink::on_stage(Stage stage, int layer, const float* data,
                            const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw std::invalid_argument("negative dimension in a stage shape");
    n *= static_cast<size_t>(d);
  }
  const int l = is_per_layer(stage) ? layer : -1;
  for (const auto& e : meta_.entries) {
    if (e.stage == stage && e.layer == l) {
      // One prefill captures each stage once; a second capture would silently overwrite.
      throw std::logic_error(fmt::format("stage {} captured twice", entry_label(stage, l)));
    }
  }
  TraceEntry e{stage, l, stage_file(stage, l), shape};
  const std::filesystem::path path = std::filesystem::path(dir_) / e.file;
  std::filesystem::create_directories(path.parent_path());
  write_aprt(path.string(), l < 0 ? kWholeModelLayer : static_cast<uint32_t>(l), data, n);
  meta_.entries.push_back(std::move(e));
}

void TraceDirSink::finish() { write_trace_meta(dir_, meta_); }

}  // namespace pv::model
