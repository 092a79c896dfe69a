// TEST-ONLY variant of the forward: a kernels::Backend decorator that forwards every op
// to the real CPU backend except one attention sub-stage, where it plants a known bug.
// The production forward and kernels stay untouched; the planted-bug falsifiers check
// that `pv bisect` names exactly the sub-stage each bug lives in.
#pragma once

#include <memory>
#include <string_view>

#include "kernels/backend.h"

namespace pv::testing {

enum class PlantedBug {
  None,          // naive reimplementation of attention, no bug (controls the decorator)
  RopePairing,   // RoPE pairs the other way (interleaved for half-split)  -> q_post_rope
  MissingScale,  // Q·Kᵀ without the 1/sqrt(head_dim) scale               -> attn_scores
  KvHeadScores,  // K read from KV head h % H_kv instead of h / (H/H_kv)   -> attn_scores
  MaskOffByOne,  // causal mask lets query t see key t+1                   -> attn_softmax
  KvHeadValues,  // V read from KV head h % H_kv (scores right)            -> attention
};

std::string_view planted_bug_name(PlantedBug bug);
// The stage where the bug first shows (DESIGN.md stage name).
std::string_view planted_bug_stage(PlantedBug bug);

// Wraps `inner` (not owned; must outlive the decorator).
std::unique_ptr<kernels::Backend> make_planted_bug_backend(kernels::Backend& inner, PlantedBug bug);

}  // namespace pv::testing
