#include "harness/shard.h"

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace pv::harness {

ShardSpec parse_shard(std::string_view text) {
  auto bad = [&](const char* why) {
    return std::invalid_argument("--shard '" + std::string(text) + "': " + why +
                                 " (expected i/n with 1 <= i <= n, e.g. 2/4)");
  };
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) throw bad("no '/'");
  ShardSpec s;
  auto parse = [&](std::string_view part, int& out) {
    auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), out);
    if (ec != std::errc() || p != part.data() + part.size() || part.empty()) {
      throw bad("not a number");
    }
  };
  parse(text.substr(0, slash), s.index);
  parse(text.substr(slash + 1), s.count);
  if (s.count < 1) throw bad("n must be at least 1");
  if (s.index < 1 || s.index > s.count) throw bad("i out of range");
  return s;
}

std::vector<std::string> shard_select(std::vector<std::string> ids, ShardSpec s) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::vector<std::string> out;
  for (size_t k = static_cast<size_t>(s.index - 1); k < ids.size(); k += s.count) {
    out.push_back(ids[k]);
  }
  return out;
}

bool in_shard(const std::vector<std::string>& all_ids, std::string_view id, ShardSpec s) {
  auto mine = shard_select(all_ids, s);
  return std::binary_search(mine.begin(), mine.end(), std::string(id));
}

}  // namespace pv::harness
