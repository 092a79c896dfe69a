// GGUF v3 reader. Every count, length and offset is an untrusted u64: each is checked
// against the bytes left in the file before it sizes an allocation or a loop.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "model/formats/gguf.h"
#include "mutants/mutant.h"

namespace pv::model {
namespace {

using kernels::GgmlType;

// Up-front reservations are capped: counts are checked against the bytes left, but an
// in-memory element is larger than its smallest encoding.
constexpr uint64_t kReserveCap = 4096;

// ggml type names for ids pv knows of but does not implement (clearer errors).
std::string ggml_id_name(uint32_t id) {
  static const std::map<uint32_t, const char*> names = {
      {3, "Q4_1"},     {6, "Q5_0"},   {7, "Q5_1"},    {9, "Q8_1"},     {10, "Q2_K"},
      {11, "Q3_K"},    {13, "Q5_K"},  {15, "Q8_K"},   {16, "IQ2_XXS"}, {17, "IQ2_XS"},
      {18, "IQ3_XXS"}, {19, "IQ1_S"}, {20, "IQ4_NL"}, {21, "IQ3_S"},   {22, "IQ2_S"},
      {23, "IQ4_XS"},  {24, "I8"},    {25, "I16"},    {26, "I32"},     {27, "I64"},
      {28, "F64"},     {29, "IQ1_M"}, {34, "TQ1_0"},  {35, "TQ2_0"},   {39, "MXFP4"}};
  auto it = names.find(id);
  return it == names.end() ? "" : it->second;
}

class GgufParser {
 public:
  explicit GgufParser(std::shared_ptr<const MappedFile> file, GgufReadOptions options = {})
      : cur_(*file), options_(options) {
    out_.file = std::move(file);
  }

  GgufFile parse() {
    parse_header();
    parse_metadata();
    parse_tensor_infos();
    place_tensor_data();
    return std::move(out_);
  }

 private:
  std::string read_string(std::string_view what, uint64_t max_len = UINT64_MAX) {
    uint64_t at = cur_.pos();
    uint64_t len = cur_.u64(what);
    if (len > cur_.remaining()) {
      cur_.fail_at(at, fmt::format("{} length {} exceeds the {} bytes left in the file", what, len,
                                   cur_.remaining()));
    }
    if (len > max_len) {
      cur_.fail_at(at,
                   fmt::format("{} length {} exceeds the limit of {} bytes", what, len, max_len));
    }
    std::string_view b = cur_.bytes(len, what);
    return std::string(b);
  }

  void parse_header() {
    std::string_view magic = cur_.bytes(4, "magic");
    if (magic != "GGUF") {
      cur_.fail_at(0, "not a GGUF file (magic bytes are not \"GGUF\")");
    }
    out_.version = cur_.u32("version");
    if (out_.version != 3) {
      cur_.fail_at(4,
                   fmt::format("GGUF version {} is not supported (only version 3)", out_.version));
    }
  }

  // A little-endian integer of `width` bytes (1, 2, 4 or 8).
  uint64_t read_uint(uint32_t width, std::string_view what) {
    switch (width) {
      case 1:
        return cur_.u8(what);
      case 2:
        return cur_.u16(what);
      case 4:
        return cur_.u32(what);
      default:
        return cur_.u64(what);
    }
  }

  // Counts the memory parsed metadata takes. One GgufValue is ~100 bytes but its smallest
  // encoding is 1: a 10 MB file of u8 arrays would cost 1 GB. Past the limit the file is
  // refused, naming the key being read, before the memory is spent.
  void charge(uint64_t bytes) { charge_at(cur_.pos(), bytes); }
  void charge_at(uint64_t at, uint64_t bytes) {
    metadata_bytes_ += bytes;
    if (metadata_bytes_ > kGgufMaxMetadataMemory) {
      cur_.fail_at(at,
                   fmt::format("metadata needs more than {} MiB of memory once parsed (arrays of "
                               "{} bytes per element in memory); pv refuses metadata this large",
                               kGgufMaxMetadataMemory >> 20, sizeof(GgufValue)));
    }
  }

  GgufValue read_value(GgufType type, int depth) {
    if (depth == 0) charge(sizeof(GgufValue));  // array items are charged with their array
    GgufValue v;
    v.type = type;
    const GgufTypeInfo& info = gguf_type_info(type);
    const std::string what = fmt::format("{} value", info.name);
    switch (info.kind) {
      case GgufKind::Unsigned:
        v.u = read_uint(info.min_bytes, what);
        break;
      case GgufKind::Signed: {
        // Sign-extends the low `width` bytes (C++20 shifts are arithmetic).
        const int shift = 64 - 8 * static_cast<int>(info.min_bytes);
        v.i = static_cast<int64_t>(read_uint(info.min_bytes, what) << shift) >> shift;
        break;
      }
      case GgufKind::Float:
        v.f = info.min_bytes == 4 ? cur_.f32(what) : cur_.f64(what);
        break;
      case GgufKind::Bool: {
        uint64_t at = cur_.pos();
        uint8_t b = cur_.u8(what);
        if (b > 1) cur_.fail_at(at, fmt::format("bool value {} is neither 0 nor 1", b));
        v.b = b == 1;
        break;
      }
      case GgufKind::String:
        v.str = read_string(what);
        charge(v.str.size());
        break;
      case GgufKind::Array: {
        if (depth >= kGgufMaxArrayDepth) {
          cur_.fail(fmt::format("arrays nested deeper than {} levels", kGgufMaxArrayDepth));
        }
        uint64_t at = cur_.pos();
        uint32_t et = cur_.u32("array element type");
        if (gguf_type_info(et) == nullptr) {
          cur_.fail_at(at, fmt::format("unknown array element type id {}", et));
        }
        v.elem_type = static_cast<GgufType>(et);
        uint64_t count_at = cur_.pos();
        uint64_t count = cur_.u64("array element count");
        uint64_t min_size = gguf_type_info(v.elem_type).min_bytes;
        if (count > cur_.remaining() / min_size) {
          cur_.fail_at(count_at,
                       fmt::format("array of {} {} elements needs at least {} bytes per element "
                                   "but only {} bytes are left in the file",
                                   count, gguf_type_name(v.elem_type), min_size, cur_.remaining()));
        }
        // The whole array is charged before any element is read: a refused array costs
        // nothing, and the error points at its count.
        charge_at(count_at, count * sizeof(GgufValue));
        // count is bounded by the bytes left, but one GgufValue is ~100 bytes: reserve
        // only a capped amount so memory grows with elements actually read.
        v.items.reserve(std::min<uint64_t>(count, kReserveCap));
        for (uint64_t k = 0; k < count; ++k) v.items.push_back(read_value(v.elem_type, depth + 1));
        break;
      }
    }
    return v;
  }

  void parse_metadata() {
    uint64_t tc_at = cur_.pos();
    tensor_count_ = cur_.u64("tensor count");
    uint64_t kc_at = cur_.pos();
    uint64_t kv_count = cur_.u64("metadata key/value count");
    // A tensor info is at least 8 (name) + 4 (n_dims) + 8 (one dim) + 4 (type) + 8 (offset).
    if (tensor_count_ > cur_.remaining() / 32) {
      cur_.fail_at(tc_at, fmt::format("tensor count {} cannot fit in the {} bytes left in the file",
                                      tensor_count_, cur_.remaining()));
    }
    // A key/value is at least 8 (key length) + 4 (type) + 1 (smallest value).
    if (kv_count > cur_.remaining() / 13) {
      cur_.fail_at(kc_at, fmt::format("metadata count {} cannot fit in the {} bytes left in the "
                                      "file",
                                      kv_count, cur_.remaining()));
    }
    out_.kvs.reserve(std::min<uint64_t>(kv_count, kReserveCap));
    std::set<std::string, std::less<>> seen;
    for (uint64_t k = 0; k < kv_count; ++k) {
      GgufKV kv;
      kv.offset = cur_.pos();
      cur_.set_subject(fmt::format("metadata entry {}", k));
      kv.key = read_string("key");
      cur_.set_subject(key_subject(kv.key));
      if (!seen.insert(kv.key).second) cur_.fail_at(kv.offset, "duplicate metadata key");
      uint64_t type_at = cur_.pos();
      uint32_t t = cur_.u32("value type");
      if (gguf_type_info(t) == nullptr)
        cur_.fail_at(type_at, fmt::format("unknown value type id {}", t));
      kv.value = read_value(static_cast<GgufType>(t), 0);
      out_.kvs.push_back(std::move(kv));
    }
    cur_.set_subject("");
    if (const GgufKV* a = out_.find_kv("general.alignment")) {
      cur_.set_subject(key_subject(a->key));
      if (a->value.type != GgufType::U32) {
        cur_.fail_at(a->offset, fmt::format("general.alignment must be u32, found {}",
                                            gguf_type_name(a->value.type)));
      }
      uint64_t al = a->value.u;
      if (al == 0 || (al & (al - 1)) != 0) {
        cur_.fail_at(a->offset, fmt::format("alignment {} is not a power of two", al));
      }
      out_.alignment = static_cast<uint32_t>(al);
      cur_.set_subject("");
    }
  }

  void parse_tensor_infos() {
    out_.tensor_infos_offset = cur_.pos();
    out_.tensors.reserve(std::min<uint64_t>(tensor_count_, kReserveCap));
    std::set<std::string, std::less<>> seen;
    for (uint64_t k = 0; k < tensor_count_; ++k) {
      GgufTensorInfo ti;
      ti.info_offset = cur_.pos();
      cur_.set_subject(fmt::format("tensor info {}", k));
      ti.name = read_string("tensor name", kGgufMaxTensorName);
      cur_.set_subject(tensor_subject(ti.name));
      if (ti.name.empty()) cur_.fail_at(ti.info_offset, "empty tensor name");
      if (!seen.insert(ti.name).second) cur_.fail_at(ti.info_offset, "duplicate tensor name");
      uint64_t nd_at = cur_.pos();
      uint32_t n_dims = cur_.u32("n_dims");
      if (n_dims == 0 || n_dims > kGgufMaxDims) {
        cur_.fail_at(nd_at, fmt::format("n_dims {} is outside 1..{}", n_dims, kGgufMaxDims));
      }
      uint64_t numel = 1;
      for (uint32_t d = 0; d < n_dims; ++d) {
        uint64_t d_at = cur_.pos();
        uint64_t dim = cur_.u64("dimension");
        if (dim == 0) cur_.fail_at(d_at, fmt::format("dimension {} is 0", d));
        if (mul_overflows(numel, dim, &numel) || numel > (uint64_t{1} << 50)) {
          cur_.fail_at(d_at, "element count overflows");
        }
        ti.dims.push_back(dim);
      }
      uint64_t type_at = cur_.pos();
      uint32_t type_id = cur_.u32("ggml type");
      auto traits = kernels::type_traits(type_id);
      const auto geometry = kernels::ggml_block_geometry(type_id);
      if (!traits && !(options_.keep_unsupported_types && geometry)) {
        std::string known = ggml_id_name(type_id);
        cur_.fail_at(type_at, known.empty()
                                  ? fmt::format("unknown ggml type id {}", type_id)
                                  : fmt::format("ggml type {} (id {}) is not supported by pv",
                                                known, type_id));
      }
      ti.type_id = type_id;
      ti.type_supported = traits.has_value();
      if (traits) ti.type = traits->type;
      const std::string type_label = traits ? std::string(traits->name) : ggml_id_name(type_id);
      const uint64_t block_values =
          static_cast<uint64_t>(traits ? traits->block_values : geometry->block_values);
      const uint64_t block_bytes = traits ? traits->block_bytes : geometry->block_bytes;
      if (ti.dims[0] % block_values != 0) {
        cur_.fail_at(nd_at, fmt::format("rows of {} values are not a multiple of the {} block "
                                        "size {}",
                                        ti.dims[0], type_label, block_values));
      }
      // numel <= 2^50 and block_bytes <= 292: no overflow.
      ti.nbytes = numel / block_values * block_bytes;
      ti.offset = cur_.u64("tensor data offset");
      out_.tensors.push_back(std::move(ti));
    }
    cur_.set_subject("");
  }

  void place_tensor_data() {
    const uint64_t size = out_.file->size();
    const uint64_t al = out_.alignment;
    uint64_t end_of_infos = cur_.pos();
    uint64_t data_start = (end_of_infos + al - 1) / al * al;  // end_of_infos <= size: no overflow
    out_.data_start = data_start;
    if (out_.tensors.empty()) return;
    if (data_start > size) {
      // Name the tensor whose data would come first: that is what the file lost.
      const GgufTensorInfo* first = &out_.tensors.front();
      for (const auto& t : out_.tensors) {
        if (t.offset < first->offset) first = &t;
      }
      cur_.set_subject(tensor_subject(first->name));
      cur_.fail_at(end_of_infos, fmt::format("data section would start at byte {} (after "
                                             "padding to alignment {}), past the end of the "
                                             "file (size {})",
                                             data_start, al, size));
    }
    for (auto& ti : out_.tensors) {
      cur_.set_subject(tensor_subject(ti.name));
      // The offset field is the last 8 bytes of the info record; report errors there.
      if (ti.offset % al != 0 && !mutant::planted(mutant::Bug::GgufMisalignedAccepted)) {
        cur_.fail_at(
            ti.info_offset,
            fmt::format("data offset {} is not a multiple of the alignment {}", ti.offset, al));
      }
      uint64_t begin = 0, end = 0;
      if (add_overflows(data_start, ti.offset, &begin) || add_overflows(begin, ti.nbytes, &end) ||
          end > size) {
        cur_.fail_at(ti.info_offset,
                     fmt::format("offset {} + {} bytes runs past the end of the file (data "
                                 "section at byte {}, file size {})",
                                 ti.offset, ti.nbytes, data_start, size));
      }
      ti.data = out_.file->data() + begin;
    }
    // Overlap: sort by offset, each tensor must end before the next begins.
    std::vector<const GgufTensorInfo*> order;
    order.reserve(out_.tensors.size());
    for (const auto& t : out_.tensors) order.push_back(&t);
    std::sort(order.begin(), order.end(),
              [](const auto* a, const auto* b) { return a->offset < b->offset; });
    for (size_t k = 1; k < order.size(); ++k) {
      const GgufTensorInfo* prev = order[k - 1];
      const GgufTensorInfo* t = order[k];
      if (prev->offset + prev->nbytes > t->offset) {
        cur_.set_subject(tensor_subject(t->name));
        cur_.fail_at(t->info_offset, fmt::format("data [{}, {}) overlaps tensor '{}' at [{}, {})",
                                                 t->offset, t->offset + t->nbytes, prev->name,
                                                 prev->offset, prev->offset + prev->nbytes));
      }
    }
    // Only now, with no overlap, are copies of misaligned data bounded by the file size.
    for (auto& ti : out_.tensors) {
      ti.data = out_.file->aligned(static_cast<uint64_t>(ti.data - out_.file->data()), ti.nbytes);
    }
    cur_.set_subject("");
  }

  Cursor cur_;
  GgufReadOptions options_;
  GgufFile out_;
  uint64_t tensor_count_ = 0;
  uint64_t metadata_bytes_ = 0;
};

}  // namespace

bool looks_like_gguf(const MappedFile& file) {
  return file.size() >= 4 && std::memcmp(file.data(), "GGUF", 4) == 0;
}

GgufFile read_gguf(std::shared_ptr<const MappedFile> file) {
  GgufParser p(file);
  return p.parse();
}

GgufFile read_gguf(const std::string& path) { return read_gguf(MappedFile::open(path)); }

GgufFile read_gguf(const std::string& path, const GgufReadOptions& options) {
  GgufParser p(MappedFile::open(path), options);
  return p.parse();
}

}  // namespace pv::model
