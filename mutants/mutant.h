// The planted-bug catalogue: named, realistic bugs compiled into pv and its kernels, each
// switched on at run time by PV_MUTANT=<name> (read once per process) and never active
// unless named. `pv mutants` plants them one at a time under the falsifiers that claim
// to cover the code and reports which falsifier kills which bug (the kill matrix).
//
// A hook is one line at the site of the bug: `if (pv::mutant::planted(Bug::X)) ...`,
// checked once per call, outside the inner loops. This library depends on nothing of pv,
// so kernels/, model/ and harness/ may all use it.
#pragma once

#include <cstddef>
#include <string_view>

namespace pv::mutant {

enum class Bug : int {
  None = 0,
  AttnScaleHd128,          // attention scale wrong only when head_dim == 128
  SoftmaxNoMax,            // attention softmax without max-subtraction (overflows on large logits)
  AttnThreadSplitKv,       // threaded CPU attention splits its work over KV heads, not query heads
  RopePairing,             // RoPE pairs the other convention's elements
  KvHeadMapping,           // query head h reads KV head h % n_kv instead of h / (n / n_kv)
  ScaleByHeadDim,          // attention scale 1/head_dim instead of 1/sqrt(head_dim)
  MaskOffByOnePrefill,     // causal mask lets query t see key t+1, in prefill (T > 1) only
  KvCacheRowDecode,        // decode (T == 1) writes K/V one cache row early
  SwigluSwapped,           // SwiGLU computes silu(up) * gate instead of silu(gate) * up
  Q4kSubScale,             // Q4_K sub-blocks 4..7 take the min's low bits as the scale's
  Int8RoundAway,           // scalar int8 activation codes round half away from zero
  TokenizerMergeOrder,     // BPE applies the highest-ranked merge first instead of the lowest
  PretokenizeDigitRuns,    // the pre-tokenizer keeps digit runs together (one digit each)
  DigestSkipsLastGlob,     // inputs_digest leaves out the last declared input glob
  CreditIgnoresRuns,       // committed evidence credited though it ran fewer than `runs:` times
  CreditIgnoresLevel,      // credit lookup ignores the level a test is bound at
  SkipCountsAsPass,        // a skipped run folds into a pass
  MissingTestAccepted,     // a bound test the binary does not list is accepted
  MergeIgnoresFlaky,       // evidence merge never marks a falsifier flaky
  AmendUnbumpedAccepted,   // pv amend accepts a changed contract under its old version
  GgufMisalignedAccepted,  // GGUF tensor data offsets off the alignment accepted
  SafetensorsOverlapAccepted,  // safetensors tensors with overlapping data_offsets accepted
  AprtTrailingBytes,           // an APRT file longer than its element count accepted
  CaptureNotAdditive,          // capturing a stage writes a shifted copy back into it
  CudaAttnScaleHd128,          // CUDA attention scale wrong only when head_dim == 128
  CudaRopePairing,             // CUDA RoPE rotates the other convention's pairs
  ShapeProductWraps,           // the overflow check of shape/size products is skipped
  NonFiniteAccepted,           // the load-time scan for NaN/Inf weights and scales finds nothing
  NonRegularFileRead,          // a FIFO or device named as a model file is opened and read
  MustKillIgnored,             // validate --mutants never caps a falsifier whose bug survived
  KNormDropped,                // Qwen3's per-head k_norm is not applied
  Llama3SmoothBandUnscaled,    // llama3 RoPE scaling leaves the blended middle band unscaled
  CudaWeightCacheByAddress,    // CUDA serves a cached weight by host address, not its bytes
  kCount
};

struct Info {
  Bug bug;
  std::string_view name;         // what PV_MUTANT takes
  std::string_view code;         // the file (and function) the bug lives in
  std::string_view contract;     // the contract file that claims to cover that code
  std::string_view description;  // the bug, in one line
  bool gpu_only;                 // only a CUDA run can kill it
};

// The whole catalogue, in Bug order (C++17 here: the CUDA sources include this header).
struct Catalogue {
  const Info* first;
  size_t count;
  const Info* begin() const { return first; }
  const Info* end() const { return first + count; }
};
Catalogue catalogue();
const Info* find(std::string_view name);  // nullptr: no such bug
const Info& info(Bug bug);

// The bug PV_MUTANT names, read on first use. An unknown name prints the catalogue's
// names to stderr and exits with status 2: a mistyped bug must not run as "no bug".
Bug active();
inline bool planted(Bug bug) { return active() == bug; }

}  // namespace pv::mutant
