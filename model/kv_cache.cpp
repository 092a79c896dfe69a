#include "model/kv_cache.h"

#include <stdexcept>
#include <string>

namespace pv::model {

KvCache::KvCache(kernels::Backend& backend, int n_layers, int max_seq, int kv_dim)
    : backend_(backend), n_layers_(n_layers), max_seq_(max_seq), kv_dim_(kv_dim) {
  if (n_layers <= 0 || max_seq <= 0 || kv_dim <= 0) {
    throw std::invalid_argument("KV cache: layers, max_seq and kv_dim must be positive (got " +
                                std::to_string(n_layers) + ", " + std::to_string(max_seq) + ", " +
                                std::to_string(kv_dim) + ")");
  }
  data_ = backend_.alloc(2 * plane() * static_cast<size_t>(n_layers_));
}

KvCache::~KvCache() { backend_.free(data_); }

void KvCache::reserve_for(int T) const {
  if (T <= 0 || position_ + T > max_seq_) {
    throw std::length_error("KV cache: " + std::to_string(T) + " new token(s) at position " +
                            std::to_string(position_) + " exceed max_seq " +
                            std::to_string(max_seq_));
  }
}

}  // namespace pv::model
