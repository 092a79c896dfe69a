// GgufValue builders and rendering (shared by the reader, the writer and pv inspect).
#include <fmt/format.h>

#include "model/formats/gguf.h"

namespace pv::model {

std::string_view gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::U8:
      return "u8";
    case GgufType::I8:
      return "i8";
    case GgufType::U16:
      return "u16";
    case GgufType::I16:
      return "i16";
    case GgufType::U32:
      return "u32";
    case GgufType::I32:
      return "i32";
    case GgufType::F32:
      return "f32";
    case GgufType::BOOL:
      return "bool";
    case GgufType::STRING:
      return "string";
    case GgufType::ARRAY:
      return "array";
    case GgufType::U64:
      return "u64";
    case GgufType::I64:
      return "i64";
    case GgufType::F64:
      return "f64";
  }
  return "?";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::U16:
    case GgufType::I16:
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::U64:
    case GgufType::I64:
      return true;
    default:
      return false;
  }
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
  switch (type) {
    case GgufType::U8:
    case GgufType::U16:
    case GgufType::U32:
    case GgufType::U64:
      return std::to_string(u);
    case GgufType::I8:
    case GgufType::I16:
    case GgufType::I32:
    case GgufType::I64:
      return std::to_string(i);
    case GgufType::F32:
    case GgufType::F64:
      return fmt::format("{:g}", f);
    case GgufType::BOOL:
      return b ? "true" : "false";
    case GgufType::STRING: {
      std::string s = str.size() > 60 ? str.substr(0, 57) + "..." : str;
      return "\"" + s + "\"";
    }
    case GgufType::ARRAY: {
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
