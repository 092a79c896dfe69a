// GgufValue builders and rendering (shared by the reader, the writer and pv inspect).
#include <fmt/format.h>

#include <iterator>

#include "model/formats/gguf.h"

namespace pv::model {

namespace {

constexpr GgufTypeInfo kTypes[] = {
    {GgufType::U8, "u8", GgufKind::Unsigned, 1},
    {GgufType::I8, "i8", GgufKind::Signed, 1},
    {GgufType::U16, "u16", GgufKind::Unsigned, 2},
    {GgufType::I16, "i16", GgufKind::Signed, 2},
    {GgufType::U32, "u32", GgufKind::Unsigned, 4},
    {GgufType::I32, "i32", GgufKind::Signed, 4},
    {GgufType::F32, "f32", GgufKind::Float, 4},
    {GgufType::BOOL, "bool", GgufKind::Bool, 1},
    {GgufType::STRING, "string", GgufKind::String, 8},
    {GgufType::ARRAY, "array", GgufKind::Array, 12},
    {GgufType::U64, "u64", GgufKind::Unsigned, 8},
    {GgufType::I64, "i64", GgufKind::Signed, 8},
    {GgufType::F64, "f64", GgufKind::Float, 8},
};

constexpr bool in_type_order() {
  for (size_t i = 0; i < std::size(kTypes); ++i) {
    if (static_cast<size_t>(kTypes[i].type) != i) return false;
  }
  return std::size(kTypes) == static_cast<size_t>(GgufType::F64) + 1;
}
static_assert(in_type_order(), "kTypes lists every GgufType, in id order");

}  // namespace

const GgufTypeInfo* gguf_type_info(uint32_t type_id) {
  return type_id < std::size(kTypes) ? &kTypes[type_id] : nullptr;
}

const GgufTypeInfo& gguf_type_info(GgufType t) { return kTypes[static_cast<size_t>(t)]; }

std::string_view gguf_type_name(GgufType t) { return gguf_type_info(t).name; }

bool GgufValue::is_integer() const {
  const GgufKind k = gguf_type_info(type).kind;
  return k == GgufKind::Unsigned || k == GgufKind::Signed;
}

namespace {
GgufValue unsigned_value(GgufType t, uint64_t v) {
  GgufValue g;
  g.type = t;
  g.u = v;
  return g;
}
GgufValue signed_value(GgufType t, int64_t v) {
  GgufValue g;
  g.type = t;
  g.i = v;
  return g;
}
GgufValue float_value(GgufType t, double v) {
  GgufValue g;
  g.type = t;
  g.f = v;
  return g;
}
}  // namespace

GgufValue GgufValue::make_u8(uint8_t v) { return unsigned_value(GgufType::U8, v); }
GgufValue GgufValue::make_i8(int8_t v) { return signed_value(GgufType::I8, v); }
GgufValue GgufValue::make_u16(uint16_t v) { return unsigned_value(GgufType::U16, v); }
GgufValue GgufValue::make_i16(int16_t v) { return signed_value(GgufType::I16, v); }
GgufValue GgufValue::make_u32(uint32_t v) { return unsigned_value(GgufType::U32, v); }
GgufValue GgufValue::make_i32(int32_t v) { return signed_value(GgufType::I32, v); }
GgufValue GgufValue::make_u64(uint64_t v) { return unsigned_value(GgufType::U64, v); }
GgufValue GgufValue::make_i64(int64_t v) { return signed_value(GgufType::I64, v); }
GgufValue GgufValue::make_f32(float v) { return float_value(GgufType::F32, v); }
GgufValue GgufValue::make_f64(double v) { return float_value(GgufType::F64, v); }
GgufValue GgufValue::make_bool(bool v) {
  GgufValue g;
  g.type = GgufType::BOOL;
  g.b = v;
  return g;
}
GgufValue GgufValue::make_string(std::string v) {
  GgufValue g;
  g.type = GgufType::STRING;
  g.str = std::move(v);
  return g;
}
GgufValue GgufValue::make_array(GgufType elem, std::vector<GgufValue> items) {
  GgufValue g;
  g.type = GgufType::ARRAY;
  g.elem_type = elem;
  g.items = std::move(items);
  return g;
}
GgufValue GgufValue::make_string_array(const std::vector<std::string>& v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (const auto& s : v) items.push_back(make_string(s));
  return make_array(GgufType::STRING, std::move(items));
}
GgufValue GgufValue::make_i32_array(const std::vector<int32_t>& v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (int32_t x : v) items.push_back(make_i32(x));
  return make_array(GgufType::I32, std::move(items));
}

std::string GgufValue::summary(size_t max_items) const {
  switch (gguf_type_info(type).kind) {
    case GgufKind::Unsigned:
      return std::to_string(u);
    case GgufKind::Signed:
      return std::to_string(i);
    case GgufKind::Float:
      return fmt::format("{:g}", f);
    case GgufKind::Bool:
      return b ? "true" : "false";
    case GgufKind::String: {
      std::string s = str.size() > 60 ? str.substr(0, 57) + "..." : str;
      return "\"" + s + "\"";
    }
    case GgufKind::Array: {
      std::string s = fmt::format("{}[{}] [", gguf_type_name(elem_type), items.size());
      for (size_t k = 0; k < items.size() && k < max_items; ++k) {
        if (k) s += ", ";
        s += items[k].summary(max_items);
      }
      if (items.size() > max_items) s += ", ...";
      return s + "]";
    }
  }
  return "?";
}

uint64_t GgufTensorInfo::numel() const {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;
  return n;
}

const GgufKV* GgufFile::find_kv(std::string_view key) const {
  for (const auto& kv : kvs) {
    if (kv.key == key) return &kv;
  }
  return nullptr;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  for (const auto& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace pv::model
