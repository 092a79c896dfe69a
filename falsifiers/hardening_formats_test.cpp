// Falsifiers for contracts/hardening-v1.yaml, model-file side: hostile GGUF, safetensors
// and config.json inputs end in a FormatError naming the file and the place, quickly and
// in bounded memory; legal files whose data lies at misaligned bytes load with aligned
// data. Every hostile input is built here, small, from the tiny generated checkpoint.
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <fstream>

#include "falsifiers/support/model_files_util.h"
#include "kernels/quant/ggml_types.h"
#include "kernels/quant/quant_blocks.h"
#include "model/formats/finite_scan.h"

namespace {

using namespace pv::model_files_test;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Peak resident memory of this process so far, in MiB.
double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

// The tiny checkpoint re-written with `alignment` and a key-value pair of odd length first, so that
// with alignment 1 the data section (and so every tensor) starts at an odd byte.
std::vector<uint8_t> realigned_gguf(uint32_t alignment) {
  GgufFile src = read_gguf(MappedFile::from_bytes("tiny.gguf", tiny_gguf(nullptr)));
  GgufWriter w(alignment, true);
  // general.*: known not to change the math; 29 bytes in all, so the data lands at an odd byte.
  w.add("general.x", GgufValue::make_string(""));
  for (const auto& kv : src.kvs) {
    if (kv.key != "general.alignment") w.add(kv.key, kv.value);
  }
  for (const auto& t : src.tensors) {
    w.add_tensor(t.name, t.dims, t.type, std::vector<uint8_t>(t.data, t.data + t.nbytes));
  }
  return w.serialize();
}

// ---- crashes: element counts that wrap ----

TEST(Hardening, ShapeProductsNeverWrap) {
  // GGUF: dims whose product wraps u64 to a small number (2^32 * 2^32 = 0 mod 2^64).
  GgufWriter w;
  w.add_tensor("t", {64, 1}, GgmlType::F32, std::vector<uint8_t>(256));
  GgufWriteLayout l;
  std::vector<uint8_t> bytes = w.serialize(&l);
  // Patch n_dims 2 -> dims (2^32, 2^32): the info record grows, so rebuild it by hand.
  GgufFile ok = read_gguf(MappedFile::from_bytes("ok.gguf", bytes));
  ASSERT_EQ(ok.tensors.size(), 1u);
  const uint64_t dims_at = l.tensors[0].n_dims_offset + 4;
  patch<uint64_t>(bytes, dims_at, uint64_t{1} << 32);
  patch<uint64_t>(bytes, dims_at + 8, uint64_t{1} << 32);
  auto e = expect_format_error([&] { read_gguf(MappedFile::from_bytes("wrap.gguf", bytes)); });
  EXPECT_EQ(e.path(), "wrap.gguf");
  EXPECT_EQ(e.offset(), dims_at + 8);
  EXPECT_NE(e.detail().find("overflows"), std::string::npos) << e.what();

  // safetensors: a shape whose product wraps to the byte count of the data.
  SafetensorsWriter sw;
  sw.add_tensor("w", "F32", {4}, std::vector<uint8_t>(16));
  std::vector<uint8_t> st = sw.serialize();
  std::string text(st.begin(), st.end());
  const std::string from = "[4]";
  const size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos);
  // 2^62 * 4 = 2^64 elements: the product wraps to 0.
  std::string hostile = text.substr(0, at) + "[4611686018427387904,4]" + text.substr(at + 3);
  uint64_t header_len = 0;
  std::memcpy(&header_len, hostile.data(), 8);
  header_len += hostile.size() - text.size();
  std::memcpy(hostile.data(), &header_len, 8);
  std::vector<uint8_t> hb(hostile.begin(), hostile.end());
  auto e2 = expect_format_error([&] { read_safetensors(MappedFile::from_bytes("wrap.st", hb)); });
  EXPECT_EQ(e2.path(), "wrap.st");
  EXPECT_EQ(e2.subject(), "tensor 'w'");
}

// ---- crashes: misaligned float loads in legal files ----

TEST(Hardening, MisalignedTensorDataIsReadAligned) {
  const std::vector<uint8_t> aligned_bytes = tiny_gguf(nullptr);
  const std::vector<uint8_t> packed = realigned_gguf(1);
  GgufFile a = read_gguf(MappedFile::from_bytes("aligned.gguf", aligned_bytes));
  GgufFile p = read_gguf(MappedFile::from_bytes("align1.gguf", packed));
  ASSERT_EQ(p.alignment, 1u);
  ASSERT_EQ(a.tensors.size(), p.tensors.size());
  int misplaced = 0;  // tensors whose bytes lie at a misaligned offset in the file
  for (size_t k = 0; k < p.tensors.size(); ++k) {
    const auto& t = p.tensors[k];
    if (t.file_offset(p.data_start) % 4 != 0) ++misplaced;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % MappedFile::kTensorAlign, 0u) << t.name;
    const auto* b = a.find_tensor(t.name);
    ASSERT_NE(b, nullptr);
    ASSERT_EQ(b->nbytes, t.nbytes);
    EXPECT_EQ(std::memcmp(b->data, t.data, t.nbytes), 0) << t.name;
  }
  ASSERT_GT(misplaced, 0) << "the hostile file must place data at misaligned bytes";
  pv::testing::record_metric("gguf_misaligned_tensors", misplaced);
  // And the loader takes the file (its weights are the aligned views).
  EXPECT_NO_THROW(load_gguf_model(MappedFile::from_bytes("align1.gguf", packed)));

  // safetensors whose header length is not a multiple of 4 (the writer pads to 8: strip
  // the padding and one byte more by hand).
  SafetensorsWriter sw;
  std::vector<uint8_t> f32(64);
  for (size_t k = 0; k < 16; ++k) {
    const float v = 0.25f * static_cast<float>(k);
    std::memcpy(f32.data() + 4 * k, &v, 4);
  }
  sw.add_tensor("w", "F32", {16}, f32);
  std::vector<uint8_t> st = sw.serialize();
  uint64_t hl = 0;
  std::memcpy(&hl, st.data(), 8);
  std::string header(st.begin() + 8, st.begin() + 8 + static_cast<long>(hl));
  while (!header.empty() && header.back() == ' ') header.pop_back();
  header += " ";  // odd lengths: e.g. 8 + 61
  if ((8 + header.size()) % 4 == 0) header += " ";
  uint64_t nl = header.size();
  std::vector<uint8_t> odd(8);
  std::memcpy(odd.data(), &nl, 8);
  odd.insert(odd.end(), header.begin(), header.end());
  odd.insert(odd.end(), f32.begin(), f32.end());
  ASSERT_NE((8 + nl) % 4, 0u);
  SafetensorsFile sf = read_safetensors(MappedFile::from_bytes("odd.safetensors", odd));
  ASSERT_EQ(sf.tensors.size(), 1u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(sf.tensors[0].data) % MappedFile::kTensorAlign, 0u);
  EXPECT_EQ(std::memcmp(sf.tensors[0].data, f32.data(), 64), 0);
}

// ---- memory: metadata arrays ----

TEST(Hardening, GgufMetadataMemoryIsBounded) {
  // 24 MB of u8 array elements: ~100 bytes each once parsed, 2.4 GB unchecked.
  const uint64_t n = 24u << 20;
  // Built by hand (GgufValue items would cost the memory under test): the header, one
  // key/value holding a u8 array of n elements, no tensors.
  std::vector<uint8_t> bytes;
  auto put = [&](const void* p, size_t k) {
    const auto* c = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), c, c + k);
  };
  const uint32_t version = 3, arr = 9, u8 = 0;
  const uint64_t tensors = 0, kvs = 1;
  put("GGUF", 4);
  put(&version, 4);
  put(&tensors, 8);
  put(&kvs, 8);
  const std::string key = "pv.hostile.bytes";
  const uint64_t key_len = key.size();
  const uint64_t key_at = bytes.size();
  put(&key_len, 8);
  put(key.data(), key.size());
  put(&arr, 4);
  put(&u8, 4);
  put(&n, 8);
  bytes.resize(bytes.size() + n, 7);
  const double rss0 = peak_rss_mib();
  const auto t0 = Clock::now();
  auto e = expect_format_error([&] { read_gguf(MappedFile::from_bytes("big-meta.gguf", bytes)); });
  const double secs = seconds_since(t0);
  const double grew = peak_rss_mib() - rss0;
  EXPECT_EQ(e.path(), "big-meta.gguf");
  EXPECT_EQ(e.subject(), "key 'pv.hostile.bytes'");
  EXPECT_EQ(e.offset(), key_at + 8 + key.size() + 8);  // the array's element count
  EXPECT_NE(e.detail().find("MiB of memory"), std::string::npos) << e.what();
  std::printf("  refused in %.2f s, peak RSS grew %.0f MiB for a %.0f MiB file\n", secs, grew,
              static_cast<double>(bytes.size()) / (1 << 20));
  pv::testing::record_metric("gguf_meta_refuse_s", secs);
  pv::testing::record_metric("gguf_meta_rss_growth_mib", grew);
  EXPECT_LT(secs, pv::testing::threshold("gguf_meta_refuse_s_max", 10.0));
  EXPECT_LT(grew, pv::testing::threshold("gguf_meta_rss_growth_mib_max", 256.0));
}

// ---- hangs: safetensors header lookup ----

TEST(Hardening, SafetensorsTenThousandTensorsLoadFast) {
  SafetensorsWriter sw;
  for (int k = 0; k < 10000; ++k) {
    sw.add_tensor(fmt::format("model.layers.{}.some_rather_long_projection_name.weight", k), "F32",
                  {1}, std::vector<uint8_t>(4));
  }
  std::vector<uint8_t> bytes = sw.serialize();
  // CPU time of this thread: what the algorithm costs, not how busy the machine is.
  const double c0 = thread_cpu_s();
  SafetensorsFile f = read_safetensors(MappedFile::from_bytes("many.safetensors", bytes));
  int found = 0;
  for (int k = 0; k < 10000; ++k) {
    const auto* t =
        f.find(fmt::format("model.layers.{}.some_rather_long_projection_name.weight", k));
    if (t != nullptr && t->header_offset > 8) ++found;
  }
  const double secs = thread_cpu_s() - c0;
  EXPECT_EQ(found, 10000);
  std::printf("  10,000 tensors read and looked up in %.3f s of CPU time\n", secs);
  pv::testing::record_metric("st_10k_tensors_s", secs);
  EXPECT_LT(secs, pv::testing::threshold("st_10k_tensors_s_max", 1.0));
  // header_offset still names each entry exactly.
  const auto* t = f.find("model.layers.9999.some_rather_long_projection_name.weight");
  ASSERT_NE(t, nullptr);
  const std::string_view h(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  EXPECT_EQ(h.substr(t->header_offset, 10), "\"model.lay");
  EXPECT_EQ(h.find("\"model.layers.9999.some"), t->header_offset);
}

// ---- hangs: FIFOs and devices; deep JSON ----

TEST(Hardening, NonRegularModelFilesAreRefused) {
  fs::path dir = temp_dir("fifo");
  const std::string fifo = (dir / "model.gguf").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto t0 = Clock::now();
  auto e = expect_format_error([&] { MappedFile::open(fifo); });
  EXPECT_EQ(e.path(), fifo);
  EXPECT_NE(e.detail().find("not a regular file"), std::string::npos) << e.what();
  auto z = expect_format_error([&] { load_model("/dev/zero"); });
  EXPECT_EQ(z.path(), "/dev/zero");
  // An HF directory whose config.json is a FIFO.
  fs::path hf = dir / "hf";
  fs::create_directories(hf);
  ASSERT_EQ(::mkfifo((hf / "config.json").c_str(), 0600), 0);
  auto c = expect_format_error([&] { load_model(hf.string()); });
  EXPECT_EQ(c.path(), (hf / "config.json").string());
  EXPECT_NE(c.detail().find("not a regular file"), std::string::npos) << c.what();
  const double secs = seconds_since(t0);
  pv::testing::record_metric("fifo_refuse_s", secs);
  EXPECT_LT(secs, 10.0);
  fs::remove_all(dir);
}

TEST(Hardening, DeepJsonInModelFilesIsRefused) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  std::string header = "{\"__metadata__\":{\"x\":\"y\"},\"a\":" + deep + "}";
  while ((8 + header.size()) % 8 != 0) header += ' ';
  std::vector<uint8_t> bytes(8);
  const uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  bytes.insert(bytes.end(), header.begin(), header.end());
  auto e = expect_format_error([&] { read_safetensors(MappedFile::from_bytes("deep.st", bytes)); });
  EXPECT_EQ(e.path(), "deep.st");
  EXPECT_EQ(e.offset(), 8 + header.find('[') + 255);  // the root object is level 1
  EXPECT_NE(e.detail().find("nested deeper"), std::string::npos);
  fs::path dir = temp_dir("deepcfg");
  std::ofstream(dir / "config.json") << "{\"x\":" << deep << "}";
  auto c = expect_format_error([&] { load_model(dir.string()); });
  EXPECT_EQ(c.path(), (dir / "config.json").string());
  EXPECT_NE(c.detail().find("1:"), std::string::npos) << "names line:col: " << c.what();
  fs::remove_all(dir);
}

// ---- accepted though wrong ----

TEST(Hardening, NonFiniteWeightsAreRefused) {
  GgufWriteLayout l;
  std::vector<uint8_t> f32 = tiny_gguf(&l);
  const auto& q = layout_tensor(l, "blk.0.attn_q.weight");
  std::vector<uint8_t> nan = f32;
  patch<uint32_t>(nan, q.data_offset + 4 * 37, 0x7FC00000u);
  auto e = expect_format_error([&] { load_gguf_model(MappedFile::from_bytes("nan.gguf", nan)); });
  EXPECT_EQ(e.path(), "nan.gguf");
  EXPECT_EQ(e.offset(), q.info_offset);
  EXPECT_EQ(e.subject(), "tensor 'blk.0.attn_q.weight'");
  EXPECT_NE(e.detail().find("NaN or infinite value at byte 148"), std::string::npos) << e.what();
  // An infinite Q8_0 block scale (fp16 0x7C00) in the second block of a matrix.
  GgufWriteLayout lq;
  std::vector<uint8_t> q8 = tiny_gguf(&lq, GgmlType::Q8_0);
  const auto& up = layout_tensor(lq, "blk.0.ffn_up.weight");
  patch<uint16_t>(q8, up.data_offset + 34, 0x7C00);
  auto e2 = expect_format_error([&] { load_gguf_model(MappedFile::from_bytes("inf.gguf", q8)); });
  EXPECT_EQ(e2.subject(), "tensor 'blk.0.ffn_up.weight'");
  EXPECT_NE(e2.detail().find("block scale at byte 34"), std::string::npos) << e2.what();
  // The scan's cost on the largest fixture, as a fraction of its load time.
  const std::string big = fixtures_dir() + "/qwen2-gqa7-tied/qwen2-gqa7-tied-f32.gguf";
  if (!fs::exists(big)) PV_SKIP_FIXTURE_ABSENT("model:qwen2-gqa7-tied-f32");
  const auto t0 = Clock::now();
  LoadedModel m = load_model(big);
  const double load_s = seconds_since(t0);
  GgufFile g = read_gguf(big);
  const auto t1 = Clock::now();
  int clean = 0;
  for (const auto& t : g.tensors) clean += !first_non_finite(t.type, t.data, t.nbytes);
  const double scan_s = seconds_since(t1);
  EXPECT_EQ(clean, static_cast<int>(g.tensors.size()));
  std::printf("  load %.4f s, of which the finite scan %.4f s (ratio %.3f)\n", load_s, scan_s,
              scan_s / load_s);
  pv::testing::record_metric("finite_scan_over_load", scan_s / load_s);
}

// Every fp16 scale (and min) field of every quantized type is scanned: an infinite value
// or NaN in the second block of a two-block tensor is found at its own byte offset.
// Offsets are ggml's block layouts (../shared/REFERENCE.md), listed here by field.
TEST(Hardening, NonFiniteScalesOfEveryQuantTypeAreFound) {
  namespace k = pv::kernels;
  struct Case {
    GgmlType type;
    size_t block_bytes;
    std::vector<size_t> scale_offsets;
  };
  const Case cases[] = {
      {GgmlType::Q8_0, sizeof(k::BlockQ8_0), {0}},
      {GgmlType::Q4_0, sizeof(k::BlockQ4_0), {0}},
      {GgmlType::Q4_1, sizeof(k::BlockQ4_1), {0, 2}},
      {GgmlType::Q5_0, sizeof(k::BlockQ5_0), {0}},
      {GgmlType::Q5_1, sizeof(k::BlockQ5_1), {0, 2}},
      {GgmlType::Q2_K, sizeof(k::BlockQ2_K), {80, 82}},
      {GgmlType::Q3_K, sizeof(k::BlockQ3_K), {108}},
      {GgmlType::Q4_K, sizeof(k::BlockQ4_K), {0, 2}},
      {GgmlType::Q5_K, sizeof(k::BlockQ5_K), {0, 2}},
      {GgmlType::Q6_K, sizeof(k::BlockQ6_K), {208}},
      {GgmlType::IQ4_NL, sizeof(k::BlockIQ4_NL), {0}},
      {GgmlType::IQ4_XS, sizeof(k::BlockIQ4_XS), {0}},
  };
  int found = 0, fields = 0;
  for (const Case& c : cases) {
    const std::vector<uint8_t> clean(2 * c.block_bytes, 0);
    EXPECT_FALSE(first_non_finite(c.type, clean.data(), clean.size()))
        << *pv::kernels::ggml_type_name(static_cast<uint32_t>(c.type)) << ": zeros are finite";
    for (size_t off : c.scale_offsets) {
      for (uint16_t bad : {uint16_t{0x7C00}, uint16_t{0xFE00}}) {  // +inf, NaN
        std::vector<uint8_t> b = clean;
        std::memcpy(b.data() + c.block_bytes + off, &bad, 2);
        const auto at = first_non_finite(c.type, b.data(), b.size());
        ++fields;
        if (at && *at == c.block_bytes + off) {
          ++found;
        } else {
          ADD_FAILURE() << *pv::kernels::ggml_type_name(static_cast<uint32_t>(c.type))
                        << ": fp16 0x" << std::hex << bad << std::dec << " at byte "
                        << c.block_bytes + off << " not found";
        }
      }
    }
  }
  pv::testing::record_metric("nonfinite_scale_fields_missed", fields - found);
}

TEST(Hardening, LayersBeyondTheBlockCountAreRefused) {
  FixtureSpec s = tiny_spec();
  s.n_layers = 2;
  TokenizerData tok = tiny_tokenizer();
  GgufFile src = read_gguf(
      MappedFile::from_bytes("two.gguf", fixture_gguf(s, GgmlType::F32, &tok).serialize()));
  GgufWriter w;
  for (const auto& kv : src.kvs) {
    w.add(kv.key, kv.key == "qwen2.block_count" ? GgufValue::make_u32(1) : kv.value);
  }
  for (const auto& t : src.tensors) {
    w.add_tensor(t.name, t.dims, t.type, std::vector<uint8_t>(t.data, t.data + t.nbytes));
  }
  GgufWriteLayout l;
  std::vector<uint8_t> bytes = w.serialize(&l);
  auto e =
      expect_format_error([&] { load_gguf_model(MappedFile::from_bytes("fewer.gguf", bytes)); });
  EXPECT_EQ(e.path(), "fewer.gguf");
  EXPECT_EQ(e.subject(), "tensor 'blk.1.attn_norm.weight'");
  EXPECT_EQ(e.offset(), layout_tensor(l, "blk.1.attn_norm.weight").info_offset);
  EXPECT_NE(e.detail().find("config has 1 layers"), std::string::npos) << e.what();
}

}  // namespace
