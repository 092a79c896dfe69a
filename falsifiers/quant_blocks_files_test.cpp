// Falsifiers of contracts/quant-blocks-v1.yaml through files and the pv binary: GGUF files
// whose weights are stored in the types llama.cpp's usual mixes use load and run on the CPU;
// row lengths are checked against each type's block size at load, naming the tensor;
// `pv dequant` writes exactly ggml's known answers; `pv inspect` shows a file holding a tensor
// of a type pv does not decode in full, marking that tensor.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "falsifiers/support/scratch_files.h"
#include "harness/process.h"
#include "harness/testing/pv_test.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/quant/ggml_types.h"
#include "model/fixtures/fixture_gen.h"
#include "model/formats/gguf.h"
#include "model/formats/gguf_writer.h"
#include "model/formats/mapped_file.h"
#include "model/forward.h"
#include "model/loading/loader.h"

namespace {

namespace fs = std::filesystem;
using pv::kernels::GgmlType;
using pv::testing::record_metric;

constexpr GgmlType kNewTypes[] = {GgmlType::Q4_1,   GgmlType::Q5_0,  GgmlType::Q5_1,
                                  GgmlType::Q2_K,   GgmlType::Q3_K,  GgmlType::Q5_K,
                                  GgmlType::IQ4_NL, GgmlType::IQ4_XS};

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

pv::harness::ProcessResult run_pv(std::vector<std::string> args) {
  pv::harness::ProcessOptions po;
  po.argv = {std::string(PV_BINARY_DIR) + "/bin/pv"};
  po.argv.insert(po.argv.end(), args.begin(), args.end());
  po.timeout = std::chrono::seconds(120);
  po.tail_bytes = 1 << 20;
  return pv::harness::run_process(po);
}

const std::vector<int32_t> kPrompt = {1, 17, 42, 99, 7, 3, 250, 11, 200, 64};

std::vector<float> prompt_logits(const pv::model::LoadedModel& m) {
  pv::kernels::CpuBackend be(1);
  pv::model::Forward f(m.config, m.weights, be, 64);
  std::vector<float> logits(kPrompt.size() * static_cast<size_t>(m.config.vocab));
  f.eval(kPrompt.data(), static_cast<int>(kPrompt.size()), logits.data());
  return logits;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += double{a[i]} * b[i];
    aa += double{a[i]} * a[i];
    bb += double{b[i]} * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

// A GGUF whose 2-D weights are all stored as each new type (rows of 256: every block type
// applies) loads through the ordinary loader and runs a prefill on the CPU backend; its logits
// track the F32 file's of the same checkpoint (cosine floor per type: the coarser the type,
// the lower; the contract's thresholds hold the numbers).
TEST(QuantBlocksFiles, GgufWithNewTypesLoadsAndRuns) {
  const fs::path dir = pv::testing::make_temp_dir("quant-files");
  pv::model::FixtureSpec spec;
  spec.name = "quant-mix";
  spec.n_layers = 1;  // the smallest shape every block type fits: quantizing is the cost
  spec.hidden = 256;
  spec.ffn = 256;
  spec.n_heads = 8;
  spec.n_kv_heads = 2;
  spec.vocab = 256;
  spec.seed = 0x51A7ull;
  const std::string f32_path = (dir / "f32.gguf").string();
  pv::model::fixture_gguf(spec, GgmlType::F32, nullptr).write(f32_path);
  const auto ref = prompt_logits(pv::model::load_model(f32_path));
  double worst = 1;
  for (GgmlType t : kNewTypes) {
    const std::string tn(pv::kernels::type_name(t));
    const std::string path = (dir / (tn + ".gguf")).string();
    pv::model::fixture_gguf(spec, t, nullptr).write(path);
    const pv::model::LoadedModel m = pv::model::load_model(path);
    size_t of_type = 0;
    for (const auto& ti : m.tensors) of_type += ti.type == tn ? 1 : 0;
    EXPECT_GE(of_type, 7u * static_cast<size_t>(spec.n_layers))
        << tn << ": weights not stored as " << tn;
    const auto got = prompt_logits(m);
    size_t nonfinite = 0;
    for (float v : got) nonfinite += std::isfinite(v) ? 0 : 1;
    EXPECT_EQ(nonfinite, 0u) << tn;
    const double c = cosine(ref, got);
    record_metric("cosine_vs_f32_" + tn, c);
    worst = std::min(worst, c);
    // Q2_K carries ~7% NMSE per weight, so its logits drift furthest.
    const double floor = t == GgmlType::Q2_K ? 0.80 : (t == GgmlType::Q3_K ? 0.93 : 0.97);
    EXPECT_GE(c, floor) << tn << " logits vs the F32 file's";
  }
  record_metric("cosine_vs_f32_min", worst);
}

// A [2, 512] tensor "blk.0.ffn_down.weight" of `type` whose row length field (dims[0]) is
// patched to `row` (the writer only writes whole blocks), parsed from memory.
pv::model::GgufFile parse_with_row(GgmlType type, uint64_t row) {
  pv::model::GgufWriter w;
  w.add_tensor("blk.0.ffn_down.weight", {512, 2}, type,
               std::vector<uint8_t>(pv::kernels::row_bytes(type, 512) * 2, 0));
  pv::model::GgufWriteLayout layout;
  auto bytes = w.serialize(&layout);
  std::memcpy(bytes.data() + layout.tensors[0].n_dims_offset + 4, &row, 8);
  return pv::model::read_gguf(pv::model::MappedFile::from_bytes("mem.gguf", std::move(bytes)));
}

// Rows that are not whole blocks are refused at load, naming the tensor, the type and the
// length; a 32-value type takes any multiple of 32 (288: not a multiple of 256, as the
// 896-wide rows of Qwen2.5-0.5B that make llama.cpp fall back from the K-quants).
TEST(QuantBlocksFiles, GgufRowsMustBeWholeBlocks) {
  size_t refused = 0, accepted = 0;
  for (GgmlType t : kNewTypes) {
    const std::string tn(pv::kernels::type_name(t));
    const int bv = pv::kernels::traits(t).block_values;
    for (uint64_t row : {uint64_t{288}, uint64_t{32 * 3}, uint64_t{256}, uint64_t{100}}) {
      const bool whole = row % static_cast<uint64_t>(bv) == 0;
      try {
        const auto f = parse_with_row(t, row);
        ++accepted;
        EXPECT_TRUE(whole) << tn << " rows of " << row << " accepted";
        EXPECT_EQ(f.tensors.at(0).dims.at(0), row);
      } catch (const pv::model::FormatError& e) {
        ++refused;
        const std::string msg = e.what();
        EXPECT_FALSE(whole) << tn << " rows of " << row << " refused: " << msg;
        for (const std::string& needle :
             {std::string("blk.0.ffn_down.weight"), tn, std::to_string(row)}) {
          EXPECT_NE(msg.find(needle), std::string::npos) << msg << " does not name " << needle;
        }
      }
    }
  }
  record_metric("rows_refused", static_cast<double>(refused));
  record_metric("rows_accepted", static_cast<double>(accepted));
}

struct KnownAnswer {
  const char* file;
  GgmlType type;
};
constexpr KnownAnswer kKnown[] = {
    {"q4_0", GgmlType::Q4_0}, {"q4_1", GgmlType::Q4_1},     {"q5_0", GgmlType::Q5_0},
    {"q5_1", GgmlType::Q5_1}, {"q8_0", GgmlType::Q8_0},     {"q2_K", GgmlType::Q2_K},
    {"q3_K", GgmlType::Q3_K}, {"q4_K", GgmlType::Q4_K},     {"q5_K", GgmlType::Q5_K},
    {"q6_K", GgmlType::Q6_K}, {"iq4_nl", GgmlType::IQ4_NL}, {"iq4_xs", GgmlType::IQ4_XS}};

// A GGUF holding "kat.<type>" tensors (the ggml known-answer blocks, 2 rows each) and
// "odd.weight", a Q8_0 tensor whose type field is patched to IQ2_XXS (16), a type pv does not
// decode, plus a few metadata entries.
std::string write_known_answer_gguf(const fs::path& dir, bool with_unsupported) {
  const std::string src = pv::testing::source_dir() + "/kernels/quant/testdata/ggml-blocks/";
  pv::model::GgufWriter w;
  w.add("general.architecture", pv::model::GgufValue::make_string("pv-known-answers"));
  w.add("general.name", pv::model::GgufValue::make_string("ggml blocks"));
  w.add("pv.test.count", pv::model::GgufValue::make_u32(12));
  for (const auto& k : kKnown) {
    auto blocks = read_bytes(src + k.file + ".blocks");
    const auto& tr = pv::kernels::traits(k.type);
    const uint64_t n = blocks.size() / tr.block_bytes * static_cast<uint64_t>(tr.block_values);
    w.add_tensor(std::string("kat.") + k.file, {n / 2, 2}, k.type, std::move(blocks));
  }
  if (with_unsupported) {
    w.add_tensor("odd.weight", {256}, GgmlType::Q8_0, std::vector<uint8_t>(8 * 34, 0));
  }
  pv::model::GgufWriteLayout layout;
  auto bytes = w.serialize(&layout);
  if (with_unsupported) {
    const uint32_t iq2_xxs = 16;
    std::memcpy(bytes.data() + layout.tensors.back().type_offset, &iq2_xxs, 4);
  }
  const std::string path = (dir / (with_unsupported ? "kat-odd.gguf" : "kat.gguf")).string();
  pv::model::write_file_atomic(path, bytes);
  return path;
}

// pv dequant through the real binary: every known-answer tensor comes out as exactly the
// bytes ggml's decoder produced; an unsupported type, a missing tensor and a non-GGUF file
// are errors naming what is wrong, exit 2.
TEST(QuantBlocksFiles, DequantCliWritesGgmlKnownAnswers) {
  const fs::path dir = pv::testing::make_temp_dir("quant-dequant");
  const std::string gguf = write_known_answer_gguf(dir, true);
  const std::string src = pv::testing::source_dir() + "/kernels/quant/testdata/ggml-blocks/";
  size_t mismatched_types = 0;
  for (const auto& k : kKnown) {
    const std::string out = (dir / (std::string(k.file) + ".out")).string();
    const auto r = run_pv({"dequant", gguf, std::string("kat.") + k.file, "--out", out});
    ASSERT_TRUE(r.ok()) << k.file << ": " << r.describe() << "\n" << r.stderr_text;
    const bool same = read_bytes(out) == read_bytes(src + k.file + ".f32");
    mismatched_types += same ? 0 : 1;
    EXPECT_TRUE(same) << k.file << ": pv dequant output differs from ggml's floats";
  }
  record_metric("types_checked", static_cast<double>(std::size(kKnown)));
  record_metric("types_mismatched", static_cast<double>(mismatched_types));

  const auto odd = run_pv({"dequant", gguf, "odd.weight", "--out", (dir / "odd.out").string()});
  EXPECT_EQ(odd.exit_code, 2) << odd.describe();
  EXPECT_NE(odd.stderr_text.find("odd.weight"), std::string::npos) << odd.stderr_text;
  EXPECT_NE(odd.stderr_text.find("IQ2_XXS (16)"), std::string::npos) << odd.stderr_text;
  EXPECT_FALSE(fs::exists(dir / "odd.out"));
  const auto missing = run_pv({"dequant", gguf, "no.such", "--out", (dir / "x.out").string()});
  EXPECT_EQ(missing.exit_code, 2) << missing.describe();
  EXPECT_NE(missing.stderr_text.find("no.such"), std::string::npos) << missing.stderr_text;
  pv::testing::write_text(dir / "not.gguf", "not a gguf file at all");
  const auto bad = run_pv(
      {"dequant", (dir / "not.gguf").string(), "kat.q4_0", "--out", (dir / "y.out").string()});
  EXPECT_EQ(bad.exit_code, 2) << bad.describe();
  EXPECT_NE(bad.stderr_text.find("not.gguf"), std::string::npos) << bad.stderr_text;
}

// pv inspect of a GGUF holding one tensor of a type pv does not decode: exit 0, every
// metadata entry and every tensor listed, that tensor marked with its ggml name and id; the
// JSON form says the same.
TEST(QuantBlocksFiles, InspectShowsUnsupportedTensorTypes) {
  const fs::path dir = pv::testing::make_temp_dir("quant-inspect");
  const std::string gguf = write_known_answer_gguf(dir, true);
  const auto r = run_pv({"inspect", gguf});
  ASSERT_EQ(r.exit_code, 0) << r.describe() << "\n" << r.stderr_text;
  size_t missing = 0;
  std::vector<std::string> needles = {"general.architecture", "pv-known-answers",
                                      "general.name",         "pv.test.count",
                                      "odd.weight",           "unsupported: IQ2_XXS (16)"};
  for (const auto& k : kKnown) needles.push_back(std::string("kat.") + k.file);
  for (const auto& n : needles) {
    const bool found = r.stdout_text.find(n) != std::string::npos;
    missing += found ? 0 : 1;
    EXPECT_TRUE(found) << "pv inspect output lacks " << n << ":\n" << r.stdout_text;
  }
  record_metric("expected_items_missing", static_cast<double>(missing));

  const auto j = run_pv({"inspect", "--json", gguf});
  ASSERT_EQ(j.exit_code, 0) << j.describe() << "\n" << j.stderr_text;
  const auto doc = nlohmann::json::parse(j.stdout_text);
  ASSERT_EQ(doc.at("tensors").size(), std::size(kKnown) + 1);
  const auto& last = doc.at("tensors").back();
  EXPECT_EQ(last.at("name"), "odd.weight");
  EXPECT_EQ(last.at("supported"), false);
  EXPECT_EQ(last.at("type"), "IQ2_XXS");
  EXPECT_EQ(last.at("type_id"), 16);
  EXPECT_EQ(doc.at("unsupported_tensors"), 1);
  EXPECT_EQ(doc.at("metadata").size(), 3u);

  // The loaders' read_gguf (without keep_unsupported_types) still refuses it, naming the type.
  try {
    (void)pv::model::read_gguf(gguf);
    ADD_FAILURE() << "read_gguf accepted a tensor of type IQ2_XXS";
  } catch (const pv::model::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("IQ2_XXS"), std::string::npos) << e.what();
  }
}

}  // namespace
