// contracts/trace-save-tensor-v1.yaml, the open trace format: safetensors traces beside
// APRT directories (round trip bit-exact, either form on either side of pv diff/bisect),
// traces written by another program (Python, no pv code), the aliases of other tools'
// stage names, user stages with a declared order in bisect, and refused token ids.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "falsifiers/support/trace_helpers.h"
#include "harness/testing/pv_test.h"
#include "kernels/cpu/cpu_backend.h"
#include "model/trace/aprt.h"
#include "model/trace/bisect.h"
#include "model/trace/trace_compare.h"
#include "model/trace/trace_dir.h"
#include "model/trace/trace_store.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using pv::model::Stage;

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void spit(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
}

// The message of what `fn` throws; "" (and a failure) when it does not.
template <class F>
std::string error_of(F fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

// Debian's python3 (tools/scripts/common.sh installs python3-numpy for it); "" if none.
std::string python() {
  for (const char* p : {"/usr/bin/python3", "/usr/local/bin/python3"}) {
    if (fs::exists(p)) return p;
  }
  return "";
}

int sh(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

// Every stage of both traces compared bit for bit: count of stages and the worst |a-b|.
std::pair<size_t, double> max_diff(const std::string& a, const std::string& b, bool common) {
  const auto d = pv::model::diff_trace_dirs(a, b, 5, !common);
  double worst = 0;
  for (const auto& s : d.stages) {
    worst = std::max(worst, s.stats.max_abs);
    EXPECT_FALSE(s.stats.nonfinite_mismatch) << pv::model::stage_diff_label(s);
  }
  return {d.stages.size(), worst};
}

const std::vector<int32_t> kTokens = {3, 17, 42, 5, 9};

// APRT -> safetensors -> APRT gives byte-identical stage files and the same index, and
// the safetensors trace reads the same float bits; the CLI writes a safetensors trace
// that pv diff compares against the APRT one at zero difference, in both directions.
TEST(TraceFormat, Falsify006_SafetensorsRoundTripBitExact) {
  const uint64_t seed = pv::testing::seed();
  auto m = pv::testing::trace_model(seed, pv::kernels::GgmlType::Q4_K);
  pv::testing::TempDir tmp("st-roundtrip");
  pv::kernels::CpuBackend cpu(1);
  pv::testing::trace_all(m->config, m->weights, cpu, kTokens, tmp.sub("a"), 3);
  const auto a = pv::model::open_trace(tmp.sub("a"));
  pv::model::write_safetensors_trace(a, tmp.sub("t.safetensors"));
  const auto t = pv::model::open_trace(tmp.sub("t.safetensors"));
  ASSERT_EQ(t.format, pv::model::TraceFormat::Safetensors);
  pv::model::write_aprt_trace(t, tmp.sub("b"));
  const auto b = pv::model::read_trace_meta(tmp.sub("b"));
  ASSERT_EQ(a.meta.entries.size(), b.entries.size());
  ASSERT_EQ(a.meta.entries.size(), t.meta.entries.size());
  EXPECT_EQ(b.tokens, a.meta.tokens);
  EXPECT_EQ(b.greedy_tokens, a.meta.greedy_tokens);
  EXPECT_EQ(b.qk_rows, a.meta.qk_rows);
  EXPECT_EQ(b.n_heads, a.meta.n_heads);
  EXPECT_EQ(b.head_dim, a.meta.head_dim);
  EXPECT_EQ(b.weight_type, a.meta.weight_type);
  size_t bytes = 0;
  for (size_t i = 0; i < b.entries.size(); ++i) {
    const auto& ea = a.meta.entries[i];
    const auto& eb = b.entries[i];
    EXPECT_EQ(pv::model::entry_label(ea), pv::model::entry_label(eb));
    EXPECT_EQ(ea.shape, eb.shape);
    EXPECT_EQ(ea.shape, t.meta.entries[i].shape);
    const std::string fa = slurp(tmp.sub("a") + "/" + ea.file);
    EXPECT_EQ(fa, slurp(tmp.sub("b") + "/" + eb.file)) << ea.file;
    const auto va = pv::model::read_stage(a, ea);
    const auto vt = pv::model::read_stage(t, t.meta.entries[i]);
    ASSERT_EQ(va.size(), vt.size());
    EXPECT_EQ(std::memcmp(va.data(), vt.data(), 4 * va.size()), 0) << ea.file;
    bytes += fa.size();
  }
  // The file is plain safetensors: header JSON with string metadata and pv's key scheme.
  const std::string raw = slurp(tmp.sub("t.safetensors"));
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  const json h = json::parse(raw.substr(8, n));
  EXPECT_EQ(h["__metadata__"]["schema"], "pv-trace-v1");
  EXPECT_EQ(json::parse(h["__metadata__"]["tokens"].get<std::string>()), json(kTokens));
  EXPECT_EQ(h["L1.attn_softmax"]["dtype"], "F32");
  EXPECT_TRUE(h.contains("embedding") && h.contains("lm_head") && h.contains("L0.qkv_bias"));
  pv::testing::record_metric("round_trip_stages", double(b.entries.size()));
  EXPECT_GT(bytes, 0u);

  // The CLI: pv trace --out x.safetensors, and pv diff across the two forms.
  const std::string model = pv::testing::source_dir() + "/model/fixtures/qwen2-gqa4/hf";
  if (!fs::exists(model + "/config.json")) PV_SKIP_FIXTURE_ABSENT("model:qwen2-gqa4");
  std::string out;
  for (const auto& dst : {tmp.sub("cli"), tmp.sub("cli.safetensors")}) {
    ASSERT_EQ(pv::testing::run_pv({"trace", "--model", model, "--tokens", "5,9,100,3", "--max-new",
                                   "2", "--out", dst},
                                  &out),
              0)
        << out;
  }
  EXPECT_NE(out.find("safetensors"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(tmp.sub("cli.safetensors.aprt-tmp")));
  for (const auto& [x, y] : {std::pair{tmp.sub("cli"), tmp.sub("cli.safetensors")},
                             std::pair{tmp.sub("cli.safetensors"), tmp.sub("cli")}}) {
    ASSERT_EQ(pv::testing::run_pv({"diff", x, y, "--json"}, &out), 0) << out;
    const json d = json::parse(out);
    ASSERT_EQ(d["stages"].size(), 3u + 17u * 2u) << out.substr(0, 400);
    for (const auto& s : d["stages"]) EXPECT_EQ(s["max_abs"], 0.0) << s.dump();
  }
  ASSERT_EQ(pv::testing::run_pv({"bisect", tmp.sub("cli.safetensors"), tmp.sub("cli")}, &out), 0)
      << out;
  ASSERT_EQ(
      pv::testing::run_pv({"trace-convert", tmp.sub("cli.safetensors"), tmp.sub("conv")}, &out), 0)
      << out;
  for (const auto& e : pv::model::read_trace_meta(tmp.sub("cli")).entries) {
    EXPECT_EQ(slurp(tmp.sub("cli") + "/" + e.file), slurp(tmp.sub("conv") + "/" + e.file))
        << e.file;
  }
}

// A trace written by Python with no pv code: (1) json+struct only, the embedding rows
// gathered from the fixture's own model.safetensors, diffs to exactly zero against pv's
// embedding stage; (2) FORMAT.md's numpy example, run as printed, rewrites pv's trace
// under llama.cpp's names and pv reads every stage back at zero difference.
TEST(TraceFormat, Falsify007_ForeignWrittenTrace) {
  const std::string py = python();
  if (py.empty()) PV_SKIP_FIXTURE_ABSENT("python3");
  const std::string model = pv::testing::source_dir() + "/model/fixtures/qwen2-gqa4/hf";
  if (!fs::exists(model + "/config.json")) PV_SKIP_FIXTURE_ABSENT("model:qwen2-gqa4");
  pv::testing::TempDir tmp("foreign");
  std::string out;
  ASSERT_EQ(pv::testing::run_pv({"trace", "--model", model, "--tokens", "5,9,100,3", "--max-new",
                                 "0", "--out", tmp.sub("pv")},
                                &out),
            0)
      << out;
  spit(tmp.sub("emb.py"), R"PY(
import json, struct, sys
model, out, tokens = sys.argv[1], sys.argv[2], [int(t) for t in sys.argv[3].split(",")]
with open(model, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    hdr = json.loads(f.read(n))
    t = hdr["model.embed_tokens.weight"]
    assert t["dtype"] == "F32"
    hidden = t["shape"][1]
    rows = b""
    for tok in tokens:
        f.seek(8 + n + t["data_offsets"][0] + 4 * hidden * tok)
        rows += f.read(4 * hidden)
head = {"__metadata__": {"schema": "pv-trace-v1", "n_layers": "2", "tokens": json.dumps(tokens),
                         "producer": "falsifiers: json+struct"},
        "embedding": {"dtype": "F32", "shape": [len(tokens), hidden], "data_offsets": [0, len(rows)]}}
h = json.dumps(head).encode()
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + rows)
)PY");
  ASSERT_EQ(sh(py + " " + tmp.sub("emb.py") + " " + model + "/model.safetensors " +
               tmp.sub("emb.safetensors") + " 5,9,100,3"),
            0);
  const auto [n_emb, worst_emb] = max_diff(tmp.sub("pv"), tmp.sub("emb.safetensors"), true);
  EXPECT_EQ(n_emb, 1u);
  EXPECT_EQ(worst_emb, 0.0);
  pv::testing::record_metric("python_embedding_max_abs", worst_emb);

  if (sh(py + " -c 'import numpy' 2>/dev/null") != 0) PV_SKIP_FIXTURE_ABSENT("python3-numpy");
  const std::string doc = slurp(pv::testing::source_dir() + "/model/trace/FORMAT.md");
  const size_t at = doc.find("<!-- numpy-example -->");
  ASSERT_NE(at, std::string::npos) << "FORMAT.md lost its numpy example";
  const size_t begin = doc.find("```python\n", at) + 10;
  const size_t end = doc.find("```", begin);
  ASSERT_LT(begin, end);
  // Reads pv's trace (APRT, plain struct) and hands it to write_trace as llama.cpp names.
  spit(tmp.sub("doc.py"), doc.substr(begin, end - begin) + R"PY(
import os, sys
src, dst = sys.argv[1], sys.argv[2]
idx = json.load(open(os.path.join(src, "trace.json")))
llama = {"attn_norm": "attn_norm", "q_post_rope": "Qcur", "k_post_rope": "Kcur",
         "attn_softmax": "kq_soft_max", "attention": "kqv_out", "ffn_out": "ffn_out",
         "post_ffn_residual": "l_out", "final_norm": "result_norm", "lm_head": "result_output"}
stages = {}
for e in idx["stages"]:
    raw = open(os.path.join(src, e["file"]), "rb").read()
    a = np.frombuffer(raw[12:], dtype="<f4").reshape(e["shape"])
    name = llama.get(e["stage"], e["stage"])
    if e["layer"] is None:
        stages[name] = a
    elif name in ("Qcur", "Kcur", "kq_soft_max", "kqv_out", "l_out") or e["stage"] == "attn_norm":
        stages["%s-%d" % (name, e["layer"])] = a
    else:
        stages["L%d.%s" % (e["layer"], name)] = a
write_trace(dst, idx["tokens"], idx["n_layers"], stages, qk_rows=idx["qk_rows"],
            n_heads=idx["n_heads"], n_kv_heads=idx["n_kv_heads"], head_dim=idx["head_dim"])
)PY");
  ASSERT_EQ(
      sh(py + " " + tmp.sub("doc.py") + " " + tmp.sub("pv") + " " + tmp.sub("doc.safetensors")), 0);
  const auto [n_doc, worst_doc] = max_diff(tmp.sub("pv"), tmp.sub("doc.safetensors"), false);
  EXPECT_EQ(n_doc, pv::model::read_trace_meta(tmp.sub("pv")).entries.size());
  EXPECT_EQ(worst_doc, 0.0);
  pv::testing::record_metric("numpy_example_stages", double(n_doc));
  pv::testing::record_metric("numpy_example_max_abs", worst_doc);
}

// llama.cpp's and aprender's names read as pv's stages (a trace.json "stage" and a
// safetensors key alike) and compare at zero against pv's own names; kq (unscaled) is
// refused unless declared as a user stage; an undeclared unknown name is refused naming
// it and the file.
TEST(TraceFormat, Falsify008_StageAliases) {
  const uint64_t seed = pv::testing::seed();
  auto m = pv::testing::trace_model(seed, pv::kernels::GgmlType::F32);
  pv::testing::TempDir tmp("aliases");
  pv::kernels::CpuBackend cpu(1);
  pv::testing::trace_all(m->config, m->weights, cpu, kTokens, tmp.sub("pv"), 0);
  // The same trace with every aliased stage renamed, in the directory form.
  fs::copy(tmp.sub("pv"), tmp.sub("al"), fs::copy_options::recursive);
  json j = json::parse(slurp(tmp.sub("al") + "/trace.json"));
  const std::map<std::string, std::string> rename = {
      {"q_post_rope", "Qcur"},     {"k_post_rope", "Kcur"},        {"attn_softmax", "kq_soft_max"},
      {"attention", "kqv_out"},    {"post_ffn_residual", "l_out"}, {"final_norm", "result_norm"},
      {"lm_head", "result_output"}};
  size_t renamed = 0;
  for (auto& e : j["stages"]) {
    auto it = rename.find(e["stage"].get<std::string>());
    if (it == rename.end()) continue;
    const std::string file =
        pv::model::stage_file(it->second, e["layer"].is_null() ? -1 : e["layer"].get<int>());
    fs::rename(tmp.sub("al") + "/" + e["file"].get<std::string>(), tmp.sub("al") + "/" + file);
    e["stage"] = it->second;
    e["file"] = file;
    ++renamed;
  }
  spit(tmp.sub("al") + "/trace.json", j.dump(1));
  EXPECT_EQ(renamed, 5u * 2u + 2u);
  const auto [n_dir, worst_dir] = max_diff(tmp.sub("pv"), tmp.sub("al"), false);
  EXPECT_EQ(n_dir, 3u + 17u * 2u);
  EXPECT_EQ(worst_dir, 0.0);
  // The safetensors form: llama.cpp's "<name>-<N>" keys, and aprender's layer_output.
  const auto pv_st = pv::model::open_trace(tmp.sub("pv"));
  {
    pv::model::OpenTrace t = pv::model::open_trace(tmp.sub("al"));
    pv::model::write_safetensors_trace(t, tmp.sub("canon.safetensors"));
  }
  const auto meta = pv::model::read_trace_meta(tmp.sub("al"));
  for (const auto& e : meta.entries) {
    EXPECT_TRUE(e.user.empty()) << pv::model::entry_label(e);  // all resolved to pv stages
  }
  EXPECT_EQ(pv::model::parse_safetensors_key("Qcur-7"), (std::pair<std::string, int>{"Qcur", 7}));
  EXPECT_EQ(pv::model::parse_safetensors_key("L7.layer_output"),
            (std::pair<std::string, int>{"layer_output", 7}));
  EXPECT_EQ(pv::model::parse_safetensors_key("result_norm"),
            (std::pair<std::string, int>{"result_norm", -1}));
  EXPECT_EQ(*pv::model::resolve_stage_name("l_out", false, "x"), Stage::post_ffn_residual);
  EXPECT_EQ(*pv::model::resolve_stage_name("layer_output", false, "x"), Stage::post_ffn_residual);
  // kq-N is q.k^T unscaled: refused as attn_scores, accepted when declared as a user stage.
  json k = json::parse(slurp(tmp.sub("pv") + "/trace.json"));
  for (auto& e : k["stages"]) {
    if (e["stage"] == "attn_scores") {
      e["stage"] = "kq";
      e["file"] = pv::model::stage_file(std::string("attn_scores"), e["layer"].get<int>());
    }
  }
  spit(tmp.sub("pv") + "/trace.json", k.dump(1));
  std::string msg = error_of([&] { pv::model::read_trace_meta(tmp.sub("pv")); });
  EXPECT_NE(msg.find("trace.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"kq\" (llama.cpp) is refused"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1/sqrt(head_dim)"), std::string::npos) << msg;
  std::vector<std::string> order;
  for (int s = 0; s < pv::model::kStageCount; ++s) {
    const std::string name(pv::model::stage_name(static_cast<Stage>(s)));
    order.push_back(name == "attn_scores" ? "kq" : name);
  }
  k["stage_order"] = order;
  for (auto& e : k["stages"]) {
    if (e["stage"] == "kq")
      e["file"] = pv::model::stage_file(std::string("kq"), e["layer"].get<int>());
  }
  for (int l = 0; l < 2; ++l) {
    fs::rename(tmp.sub("pv") + "/" + pv::model::stage_file(std::string("attn_scores"), l),
               tmp.sub("pv") + "/" + pv::model::stage_file(std::string("kq"), l));
  }
  spit(tmp.sub("pv") + "/trace.json", k.dump(1));
  const auto declared = pv::model::read_trace_meta(tmp.sub("pv"));
  size_t users = 0;
  for (const auto& e : declared.entries) users += e.user == "kq";
  EXPECT_EQ(users, 2u);
  // An unknown, undeclared name: refused with the name and the file.
  k.erase("stage_order");
  spit(tmp.sub("pv") + "/trace.json", k.dump(1));
  msg = error_of([&] { pv::model::read_trace_meta(tmp.sub("pv")); });
  EXPECT_NE(msg.find(tmp.sub("pv") + "/trace.json"), std::string::npos) << msg;
  k["stages"][3]["stage"] = "rope_q";
  spit(tmp.sub("pv") + "/trace.json", k.dump(1));
  msg = error_of([&] { pv::model::read_trace_meta(tmp.sub("pv")); });
  EXPECT_NE(msg.find("unknown stage \"rope_q\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("not declared in \"stage_order\""), std::string::npos) << msg;
  (void)pv_st;
}

// Two traces of an engine with its own stage names and order (no pv stage at all), one
// with a planted divergence in one user stage of one layer: bisect names exactly that
// stage, in the declared order (which is not alphabetical); pv bisect exits 1 naming it,
// with the reference as APRT and the candidate as safetensors.
TEST(TraceFormat, Falsify009_UserStageOrderInBisect) {
  const uint64_t seed = pv::testing::seed();
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  pv::testing::TempDir tmp("user-stages");
  const std::vector<std::string> order = {"tok_embed", "wq_proj", "rot", "mix", "act", "head"};
  const int L = 3, T = 4, W = 16;
  // Values: each stage a function of the previous one, so a divergence propagates.
  auto write = [&](const std::string& dir, int bug_layer, const std::string& bug_stage) {
    fs::create_directories(dir);
    json st = json::array();
    std::vector<float> x(T * W);
    std::mt19937_64 r2(seed);
    for (auto& v : x) v = nd(r2);
    auto emit = [&](const std::string& name, int layer) {
      std::vector<float> y = x;
      if (layer == bug_layer && name == bug_stage) {
        for (size_t i = 0; i < y.size(); i += 3) y[i] += 0.5f;  // the planted bug
      }
      x = y;
      const std::string file = pv::model::stage_file(name, layer);
      fs::create_directories(fs::path(dir + "/" + file).parent_path());
      pv::model::write_aprt(dir + "/" + file, layer < 0 ? pv::model::kWholeModelLayer : layer,
                            y.data(), y.size());
      st.push_back({{"stage", name},
                    {"layer", layer < 0 ? json(nullptr) : json(layer)},
                    {"file", file},
                    {"shape", {T, W}}});
      for (size_t i = 0; i < x.size(); ++i) x[i] = 0.9f * x[i] + 0.1f * x[(i + 1) % x.size()];
    };
    emit("tok_embed", -1);
    for (int l = 0; l < L; ++l) {
      for (const char* s : {"wq_proj", "rot", "mix", "act"}) emit(s, l);
    }
    emit("head", -1);
    // Listed out of order: the order comes from stage_order, not from the list.
    std::vector<json> shuffled(st.begin(), st.end());
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    st = shuffled;
    json j = {{"schema", "pv-trace-v1"}, {"n_layers", L}, {"tokens", {1, 2, 3, 4}},
              {"stage_order", order},    {"stages", st},  {"producer", "my-engine"}};
    spit(dir + "/trace.json", j.dump(1));
  };
  write(tmp.sub("ref"), -1, "");
  write(tmp.sub("bug"), 1, "mix");
  const auto meta = pv::model::read_trace_meta(tmp.sub("ref"));
  ASSERT_EQ(meta.entries.size(), 2u + 4u * L);
  EXPECT_EQ(pv::model::entry_label(meta.entries.front()), "tok_embed");
  EXPECT_EQ(pv::model::entry_label(meta.entries[1]), "L0 wq_proj");
  EXPECT_EQ(pv::model::entry_label(meta.entries[3]), "L0 mix");
  EXPECT_EQ(pv::model::entry_label(meta.entries.back()), "head");
  // Candidate as safetensors: the order travels in __metadata__ "stage_order".
  pv::model::write_safetensors_trace(pv::model::open_trace(tmp.sub("bug")),
                                     tmp.sub("bug.safetensors"));
  const auto d = pv::model::diff_trace_dirs(tmp.sub("ref"), tmp.sub("bug.safetensors"), 5, true);
  const auto r = pv::model::bisect(d, pv::model::BisectCriterion{});
  ASSERT_TRUE(r.first.has_value());
  const auto& row = r.rows[*r.first];
  EXPECT_EQ(row.user, "mix");
  EXPECT_EQ(row.layer, 1);
  EXPECT_EQ(*r.first, 1u + 4u + 2u);  // tok_embed, layer 0's four, L1 wq_proj, L1 rot
  std::string out;
  EXPECT_EQ(
      pv::testing::run_pv({"bisect", tmp.sub("ref"), tmp.sub("bug.safetensors"), "--json"}, &out),
      1)
      << out;
  const json bj = json::parse(out);
  EXPECT_EQ(bj["first_divergence"]["stage"], "mix") << out.substr(0, 600);
  EXPECT_EQ(bj["first_divergence"]["layer"], 1);
  EXPECT_EQ(pv::testing::run_pv({"bisect", tmp.sub("ref"), tmp.sub("ref")}, &out), 0) << out;
  // A stage missing from a declared order is refused, naming it.
  json j = json::parse(slurp(tmp.sub("ref") + "/trace.json"));
  j["stage_order"] = {"tok_embed", "wq_proj", "rot", "mix", "head"};
  spit(tmp.sub("ref") + "/trace.json", j.dump(1));
  const std::string msg = error_of([&] { pv::model::read_trace_meta(tmp.sub("ref")); });
  EXPECT_NE(msg.find("unknown stage \"act\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("not declared in \"stage_order\""), std::string::npos) << msg;
  // A pv stage left out of a declared order, likewise.
  j["stage_order"] = {"tok_embed", "wq_proj", "rot", "mix", "act", "head"};
  size_t emb = 0;
  while (j["stages"][emb]["stage"] != "tok_embed") ++emb;
  j["stages"][emb]["stage"] = "embedding";
  j["stages"][emb]["file"] = "embedding.bin";
  fs::rename(tmp.sub("ref") + "/tok_embed.bin", tmp.sub("ref") + "/embedding.bin");
  spit(tmp.sub("ref") + "/trace.json", j.dump(1));
  const std::string msg2 = error_of([&] { pv::model::read_trace_meta(tmp.sub("ref")); });
  EXPECT_NE(msg2.find("stage \"embedding\" is not in \"stage_order\""), std::string::npos) << msg2;
}

// Token ids that do not fit int32 (or are negative, or not integers) are refused naming
// the file, the key, the index and where it is; before, 2^32 + 3 read as 3.
TEST(TraceFormat, Falsify010_TokenIdRefused) {
  const uint64_t seed = pv::testing::seed();
  auto m = pv::testing::trace_model(seed, pv::kernels::GgmlType::F32);
  pv::testing::TempDir tmp("tokens");
  pv::kernels::CpuBackend cpu(1);
  pv::testing::trace_all(m->config, m->weights, cpu, {3, 4, 5}, tmp.sub("a"), 2);
  pv::testing::trace_all(m->config, m->weights, cpu, {3, 4, 5}, tmp.sub("b"), 2);
  const std::string path = tmp.sub("b") + "/trace.json";
  const std::string good = slurp(path);
  size_t refused = 0;
  for (const auto& [bad, key, why] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"4294967299", "tokens", "does not fit a token id"},
           {"-1", "tokens", "is negative"},
           {"3.5", "tokens", "is not an integer"},
           {"\"3\"", "tokens", "is not an integer"},
           {"18446744073709551619", "tokens", "is not an integer"},
           {"4294967296", "greedy_tokens", "does not fit a token id"}}) {
    json j = json::parse(good);
    j[key][2] = json::parse(bad);
    // One element per line, so the reported line:col can be checked.
    std::string text = j.dump(1);
    spit(path, text);
    const std::string msg = error_of([&] { pv::model::read_trace_meta(tmp.sub("b")); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("\"" + key + "\"[2]"), std::string::npos) << msg;
    EXPECT_NE(msg.find(why), std::string::npos) << msg;
    const size_t off = pv::model::array_element_offset(text, key, 2);
    ASSERT_NE(off, std::string::npos);
    const std::string as_written = json::parse(bad).dump();  // 2^64+3 is written as a float
    EXPECT_EQ(text.compare(off, as_written.size(), as_written), 0) << text.substr(off, 20);
    EXPECT_NE(msg.find(path + ":" + pv::model::line_col(text, off)), std::string::npos) << msg;
    std::string out;
    EXPECT_EQ(pv::testing::run_pv({"diff", tmp.sub("a"), tmp.sub("b")}, &out), 2) << out;
    ++refused;
  }
  // The same in a safetensors trace's metadata.
  spit(path, good);
  auto t = pv::model::open_trace(tmp.sub("b"));
  t.meta.tokens = {3, 4, 55};  // so that the bad list below has the same length
  pv::model::write_safetensors_trace(t, tmp.sub("b.safetensors"));
  std::string raw = slurp(tmp.sub("b.safetensors"));
  const size_t at = raw.find("[3,4,55]");
  ASSERT_NE(at, std::string::npos);
  raw.replace(at, 8, "[3,4,-5]");
  spit(tmp.sub("bad.safetensors"), raw);
  const std::string msg = error_of([&] { pv::model::open_trace(tmp.sub("bad.safetensors")); });
  EXPECT_NE(msg.find(tmp.sub("bad.safetensors")), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"tokens\"[2] = -5 is negative"), std::string::npos) << msg;
  EXPECT_NE(msg.find("character 6 of __metadata__ \"tokens\""), std::string::npos) << msg;
  // The unmodified traces read and compare as equal tokens.
  EXPECT_EQ(pv::model::read_any_trace_meta(tmp.sub("b.safetensors")).tokens,
            (std::vector<int32_t>{3, 4, 55}));
  pv::testing::record_metric("token_ids_refused", double(refused + 1));
}

}  // namespace
