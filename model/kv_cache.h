// Per-layer K and V rows for every position processed so far, in backend memory.
// Layout per layer: [max_seq, n_kv_heads * head_dim], row p = the (post-RoPE) key or
// value of the token at position p. The forward writes new rows in place (its K/V
// projections land directly in the cache rows), then attends over rows [0, pos).
#pragma once

#include <cstddef>

#include "kernels/backend.h"

namespace pv::model {

class KvCache {
 public:
  KvCache(kernels::Backend& backend, int n_layers, int max_seq, int kv_dim);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  float* k(int layer) { return data_ + layer_offset(layer); }
  float* v(int layer) { return data_ + layer_offset(layer) + plane(); }
  // Row `pos` of layer's K / V.
  float* k_row(int layer, int pos) { return k(layer) + static_cast<size_t>(pos) * kv_dim_; }
  float* v_row(int layer, int pos) { return v(layer) + static_cast<size_t>(pos) * kv_dim_; }

  int max_seq() const { return max_seq_; }
  int kv_dim() const { return kv_dim_; }
  int position() const { return position_; }  // rows filled so far

  // Checks that T more tokens fit; throws std::length_error naming the sizes if not.
  void reserve_for(int T) const;
  void advance(int T) { position_ += T; }
  void reset() { position_ = 0; }  // old rows are simply overwritten later

 private:
  size_t plane() const { return static_cast<size_t>(max_seq_) * kv_dim_; }
  size_t layer_offset(int layer) const { return 2 * plane() * static_cast<size_t>(layer); }

  kernels::Backend& backend_;
  int n_layers_, max_seq_, kv_dim_;
  int position_ = 0;
  float* data_ = nullptr;
};

}  // namespace pv::model
