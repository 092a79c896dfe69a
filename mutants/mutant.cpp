#include "mutants/mutant.h"

#include <cstdio>
#include <cstdlib>
#include <iterator>

namespace pv::mutant {
namespace {

constexpr Info kCatalogue[] = {
    {Bug::None, "none", "", "", "no bug", false},
    {Bug::AttnScaleHd128, "attn-scale-hd128", "kernels/cpu/attention.cpp attention_heads",
     "contracts/kernel-parity-v1.yaml",
     "attention scale 1/11 instead of 1/sqrt(128), only at head_dim 128", false},
    {Bug::SoftmaxNoMax, "softmax-no-max", "kernels/cpu/attention.cpp attention_heads",
     "contracts/kernel-parity-v1.yaml",
     "attention softmax exponentiates raw scores (no max-subtraction)", false},
    {Bug::AttnThreadSplitKv, "attn-thread-split-kv", "kernels/cpu/cpu_backend.cpp attention",
     "contracts/kernel-parity-v1.yaml",
     "threaded attention splits over KV heads, so query heads past n_kv are never computed", false},
    {Bug::RopePairing, "rope-pairing", "kernels/cpu/ops.cpp rope",
     "contracts/kernel-parity-v1.yaml", "RoPE rotates the other convention's element pairs", false},
    {Bug::KvHeadMapping, "kv-head-mapping", "kernels/cpu/attention.cpp attention_heads",
     "contracts/gqa-head-mapping-v1.yaml", "query head h reads KV head h % n_kv", false},
    {Bug::ScaleByHeadDim, "scale-by-head-dim", "kernels/cpu/attention.cpp attention_heads",
     "contracts/kernel-parity-v1.yaml", "attention scale 1/head_dim instead of 1/sqrt(head_dim)",
     false},
    {Bug::MaskOffByOnePrefill, "mask-off-by-one-prefill",
     "kernels/cpu/attention.cpp attention_heads", "contracts/kernel-parity-v1.yaml",
     "causal mask lets query t see key t+1 when T > 1", false},
    {Bug::KvCacheRowDecode, "kv-cache-row-decode", "model/forward.cpp attention_block",
     "contracts/model-loader-v1.yaml", "a one-token step writes its K/V one cache row early",
     false},
    {Bug::SwigluSwapped, "swiglu-swapped", "model/forward.cpp ffn_block",
     "contracts/qwen2-cpu-vs-hf-oracle-v1.yaml", "SwiGLU computes silu(up) * gate", false},
    {Bug::Q4kSubScale, "q4k-sub-scale", "kernels/quant/quant_blocks.h q4k_scale_min",
     "contracts/quant-blocks-v1.yaml",
     "Q4_K sub-blocks 4..7 read the min's low nibble as the scale's", false},
    {Bug::Int8RoundAway, "int8-round-away", "kernels/cpu/matmul_scalar.cpp quantize_act_block",
     "contracts/quant-blocks-v1.yaml",
     "scalar int8 activation codes round half away from zero, not half to even", false},
    {Bug::TokenizerMergeOrder, "tokenizer-merge-order", "model/tokenizer/tokenizer.cpp bpe",
     "contracts/tokenizer-bpe-v1.yaml", "BPE applies the highest-ranked merge first", false},
    {Bug::PretokenizeDigitRuns, "pretokenize-digit-runs",
     "model/tokenizer/pretokenize.cpp pretokenize", "contracts/tokenizer-bpe-v1.yaml",
     "the Qwen2 pre-tokenizer keeps a run of digits in one piece instead of one per digit", false},
    {Bug::DigestSkipsLastGlob, "digest-skips-last-glob",
     "harness/source_tree.cpp SourceTree::inputs_digest", "contracts/pv-harness-v1.yaml",
     "inputs_digest leaves out the files of the last declared input glob", false},
    {Bug::CreditIgnoresRuns, "credit-ignores-runs", "harness/grader.cpp grade_falsifier",
     "contracts/pv-harness-v1.yaml",
     "committed evidence credited though it ran fewer times than the level's runs:", false},
    {Bug::CreditIgnoresLevel, "credit-ignores-level", "harness/grader.cpp grade_falsifier",
     "contracts/pv-harness-v1.yaml",
     "credit looks a test up by name only, so a test bound at two levels is judged by its "
     "first entry",
     false},
    {Bug::SkipCountsAsPass, "skip-counts-as-pass", "harness/grader.cpp fold_runs",
     "contracts/pv-harness-v1.yaml", "a skipped run folds into a pass", false},
    {Bug::MissingTestAccepted, "missing-test-accepted", "harness/validate.cpp binding check",
     "contracts/pv-harness-v1.yaml", "a bound test the binary does not list is accepted", false},
    {Bug::MergeIgnoresFlaky, "merge-ignores-flaky", "harness/evidence_merge.cpp merge_one",
     "contracts/pv-spec-v1.yaml",
     "merged runs that disagree (passed here, failed there) are not marked flaky", false},
    {Bug::AmendUnbumpedAccepted, "amend-unbumped-accepted", "harness/spec/amend.cpp plan_amendment",
     "contracts/pv-spec-v1.yaml",
     "a contract whose file changed under the same metadata.version is not refused", false},
    {Bug::GgufMisalignedAccepted, "gguf-misaligned-accepted",
     "model/formats/gguf_reader.cpp place_tensor_data", "contracts/model-files-v1.yaml",
     "a tensor data offset that is not a multiple of general.alignment is accepted", false},
    {Bug::SafetensorsOverlapAccepted, "safetensors-overlap-accepted",
     "model/formats/safetensors_reader.cpp exact cover", "contracts/model-files-v1.yaml",
     "tensors whose data_offsets overlap are accepted", false},
    {Bug::AprtTrailingBytes, "aprt-trailing-bytes", "model/trace/aprt.cpp aprt_decode",
     "contracts/trace-save-tensor-v1.yaml",
     "an APRT file longer than 12 + 4*count bytes is read without error", false},
    {Bug::CaptureNotAdditive, "capture-not-additive", "model/forward.cpp Forward::emit",
     "contracts/trace-save-tensor-v1.yaml",
     "capturing a stage writes its values back shifted by one element", false},
    {Bug::CudaAttnScaleHd128, "cuda-attn-scale-hd128", "kernels/cuda/attention.cu attention",
     "contracts/cpu-vs-gpu-output-parity-v1.yaml",
     "CUDA attention scale 1/11 instead of 1/sqrt(128), only at head_dim 128", true},
    {Bug::CudaRopePairing, "cuda-rope-pairing", "kernels/cuda/cuda_backend.cpp rope",
     "contracts/cpu-vs-gpu-output-parity-v1.yaml",
     "CUDA RoPE rotates the other convention's element pairs", true},
    {Bug::ShapeProductWraps, "shape-product-wraps", "model/formats/mapped_file.cpp mul_overflows",
     "contracts/hardening-v1.yaml",
     "a shape or byte-size product that wraps around 2^64 is used as if it fitted", false},
    {Bug::NonFiniteAccepted, "nonfinite-accepted", "model/formats/finite_scan.cpp first_non_finite",
     "contracts/hardening-v1.yaml", "NaN or infinite weights and quant scales load without error",
     false},
    {Bug::NonRegularFileRead, "non-regular-file-read", "model/formats/mapped_file.cpp open_regular",
     "contracts/hardening-v1.yaml",
     "a FIFO, socket or device named as a model file is not refused before it is read", false},
    {Bug::MustKillIgnored, "must-kill-ignored", "harness/must_kill.cpp cap_by_must_kill",
     "contracts/pv-harness-v1.yaml",
     "a falsifier whose must_kill bug survives keeps the status it earned", false},
    {Bug::KNormDropped, "k-norm-dropped", "model/forward.cpp Forward::layer",
     "contracts/families-cpu-vs-hf-oracle-v1.yaml",
     "Qwen3's per-head RMSNorm of k (k_norm) is skipped; q_norm still runs", false},
    {Bug::Llama3SmoothBandUnscaled, "llama3-smooth-band-unscaled", "model/rope.cpp rope_table",
     "contracts/families-cpu-vs-hf-oracle-v1.yaml",
     "llama3 RoPE scaling keeps the base frequency in the blended band between low and high",
     false},
    {Bug::CudaWeightCacheByAddress, "cuda-weight-cache-by-address",
     "kernels/cuda/cuda_backend.cpp prepare_weight", "contracts/kernel-parity-v1.yaml",
     "CUDA finds a prepared weight by its host address and size alone, so a model mapped "
     "where a freed one was gets the old weights",
     true},
};

constexpr bool in_bug_order() {
  for (size_t i = 0; i < std::size(kCatalogue); ++i) {
    if (static_cast<size_t>(kCatalogue[i].bug) != i) return false;
  }
  return std::size(kCatalogue) == static_cast<size_t>(Bug::kCount);
}
static_assert(in_bug_order(), "kCatalogue lists every Bug, in order");

Bug read_env() {
  const char* v = std::getenv("PV_MUTANT");
  if (v == nullptr || *v == '\0') return Bug::None;
  if (const Info* i = find(v)) return i->bug;
  std::fprintf(stderr, "PV_MUTANT=%s: no such planted bug; the catalogue has:", v);
  for (const auto& i : kCatalogue) std::fprintf(stderr, " %.*s", int(i.name.size()), i.name.data());
  std::fprintf(stderr, "\n");
  std::exit(2);
}

}  // namespace

Catalogue catalogue() { return {kCatalogue, std::size(kCatalogue)}; }

const Info* find(std::string_view name) {
  for (const auto& i : kCatalogue) {
    if (i.name == name) return &i;
  }
  return nullptr;
}

const Info& info(Bug bug) { return kCatalogue[static_cast<size_t>(bug)]; }

Bug active() {
  static const Bug bug = read_env();
  return bug;
}

}  // namespace pv::mutant
