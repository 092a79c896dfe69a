// The one table of architecture names pv recognises, in both formats (HF model_type and
// GGUF general.architecture), and whether the forward can run them. An architecture can
// be listed before its forward exists: its config is then read and checked, and loading
// a model of it is refused by name.
#pragma once

#include <string>
#include <string_view>

namespace pv::model {

struct ArchInfo {
  std::string_view name;
  bool forward_supported;
  const char* missing;  // what the forward lacks (when not supported)
};

inline constexpr ArchInfo kArchitectures[] = {
    {"qwen2", true, ""},
    {"llama", true, ""},
    {"qwen3", true, ""},
};

inline const ArchInfo* find_architecture(std::string_view name) {
  for (const ArchInfo& a : kArchitectures)
    if (a.name == name) return &a;
  return nullptr;
}

// "qwen2, llama, qwen3"
inline std::string architecture_list() {
  std::string s;
  for (const ArchInfo& a : kArchitectures) {
    if (!s.empty()) s += ", ";
    s += a.name;
  }
  return s;
}

}  // namespace pv::model
