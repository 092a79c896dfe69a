// Deterministic sharding of falsifiers for `pv validate --shard i/n`. Shards are 1-based
// (i in 1..n, matching a Slurm array `--array=1-n`). Falsifier ids are sorted and dealt
// round-robin: shard i takes the ids at sorted positions i-1, i-1+n, ... so every id lands
// in exactly one shard, shards differ in size by at most one, and the slice depends only on
// the set of ids, never on file order or the machine.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pv::harness {

struct ShardSpec {
  int index = 1;  // 1-based
  int count = 1;
};

// Parses "i/n" (1 <= i <= n); throws std::invalid_argument with a plain sentence otherwise.
ShardSpec parse_shard(std::string_view text);

// The ids (deduplicated) that shard `s` runs, in sorted order.
std::vector<std::string> shard_select(std::vector<std::string> ids, ShardSpec s);

// Whether `id` belongs to shard `s` among `all_ids`.
bool in_shard(const std::vector<std::string>& all_ids, std::string_view id, ShardSpec s);

}  // namespace pv::harness

#include <functional>

namespace pv::harness {

// The selection `pv validate --shard i/n` applies: falsifier ids of all the given contract
// files (read leniently; the strict loader reports their problems) dealt round-robin.
std::function<bool(const std::string&)> shard_filter(const std::vector<std::string>& contract_files,
                                                     ShardSpec s);

}  // namespace pv::harness
