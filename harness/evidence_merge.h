// Evidence across runs and machines. Reads pv-evidence-v1 bundles (DESIGN.md shape) from
// any number of directories, tells machines apart by their environment fingerprint (ids
// joined by one signing key being one machine: count_machines, harness/signing.h), and
// merges every falsifier's runs into one verdict:
//   - stale bundles (their contract file changed, or their inputs no longer match the tree
//     according to the staleness check) earn nothing and are listed;
//   - a test that passed in one run and failed in another makes the falsifier FLAKY: it
//     earns only the level every run reached (the minimum);
//   - otherwise the falsifier earns the best level any fresh run earned (a machine without
//     a GPU does not hold back the machine that had one), and DISCHARGED additionally needs
//     the `runs: N` / `machines: N` its contract asks for, counted over the agreeing runs.
// The merged index is what `pv amend`, `pv report` and the markdown summary read.
#pragma once

#include <array>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "harness/evidence.h"
#include "harness/ladder.h"

namespace pv::harness {

// A bundle as the one reader gives it (harness/evidence.h), plus where it was read and
// what the merge derives from it.
struct BundleRecord : EvidenceBundle {
  std::filesystem::path path;  // where it was read
  std::string file_sha256;     // digest of the bundle's bytes: identifies this run's evidence
  std::string machine;         // environment fingerprint (12 hex digits)
  std::string machine_desc;    // "host / gpu" for people
  // key_id of the key whose signature verifies over the bundle ("" when unsigned or edited;
  // whether that key is allowed is the grader's question): `machines: N` counts machine
  // ids joined by one key as one machine (count_machines, harness/signing.h).
  std::string signer_key_id;
  // runs_required / machines_required: from the bundle when recorded, else from the
  // DISCHARGED level of its contract.
  std::string stale_reason;  // empty when fresh
};

// Why `file` (a contract path a bundle recorded) does not name a file inside `root`: "is
// an absolute path", "leaves the source root through '..'", "resolves (through a link)
// outside the source root"; "" when it does. contract.file is the bundle author's string:
// a tool that opens it must check it first, or a bundle makes pv read any file.
std::string contract_file_outside_root(const std::string& file, const std::filesystem::path& root);

// Parses one bundle; throws std::runtime_error naming the file and the field on bad input.
// `source_root` resolves contract.file to read the contract's DISCHARGED runs/machines
// (only a contract file inside the source root is read).
BundleRecord read_bundle(const std::filesystem::path& file,
                         const std::filesystem::path& source_root);

// Every *.json under `dir` (recursively, sorted) whose "schema" is pv-evidence-v1.
// index.json and other JSON files are ignored.
std::vector<BundleRecord> read_bundles(const std::filesystem::path& dir,
                                       const std::filesystem::path& source_root);

// Decides whether a bundle is stale: returns the reason, or empty when fresh.
using StalenessCheck = std::function<std::string(const BundleRecord&)>;
// Default check, the harness core's rule: when the bundle records its `inputs` globs, their
// inputs_digest recomputed over the tree under source_root must equal the recorded one;
// otherwise the contract file must still exist and hash to contract.sha256. A bundle that
// marks itself "stale" is stale.
StalenessCheck contract_staleness_check(std::filesystem::path source_root);

struct MergedFalsifier {
  std::string contract_id, contract_version, contract_file, falsifier_id;
  std::string contract_sha256;  // of the contract file the verdict was earned under
  Status claimed = Status::FALSIFIED;
  Status earned = Status::FALSIFIED;
  std::string capped_by;  // why not higher: the grader's reason, "flaky: ...", "runs: 1 of 2"
  bool flaky = false;
  bool stale = false;  // every bundle for it is stale
  std::string stale_reason;
  int runs = 0;      // fresh runs counted
  int machines = 0;  // distinct machines among them (count_machines: one key, one machine)
  std::vector<std::string> inputs_digests;  // sorted, unique, over fresh bundles
  std::string bundle;                       // the bundle that earned the verdict (path)
  std::string bundle_sha256;
  std::string generated_at;               // of that bundle
  std::map<std::string, double> metrics;  // of that bundle's tests (first wins per name)
  std::vector<std::pair<std::string, Status>> verdicts;  // (machine, earned) per fresh run
};

// Counts per ladder level (index = Status value).
struct Tally {
  std::array<int, 5> count{};
  int total() const;
  bool operator==(const Tally&) const = default;
};

struct MergedIndex {
  std::vector<MergedFalsifier> falsifiers;  // sorted by (contract id, falsifier id)
  std::map<std::string, Tally> per_contract;
  Tally total;
  std::vector<std::string> stale_bundles;  // "path: reason"
  std::string latest_generated_at;         // max over fresh bundles ("" when none)
  int bundles_read = 0;
  // Digest of what the index claims (contract id/version/sha, falsifier, claimed, earned,
  // capped_by, flaky, inputs digests): independent of paths, timings and generation times,
  // so re-running unchanged sources yields the same digest.
  std::string digest;
};

MergedIndex merge_bundles(const std::vector<BundleRecord>& bundles, const StalenessCheck& stale);

// JSON form written by `pv evidence merge --out` (schema pv-merged-index-v1).
std::string merged_index_json(const MergedIndex& index);

// Status name, or "FLAKY ..." helpers for people.
std::string tally_line(const Tally& t);

}  // namespace pv::harness

namespace pv::harness {

// Copies each distinct bundle (by content) to out/bundles/<machine>/<sha12>-<name>.json so
// a merged directory is itself evidence `pv amend` and `pv report` can read. Returns the
// number of files written (existing identical copies are left alone).
int copy_bundles_into(const std::vector<BundleRecord>& bundles, const std::filesystem::path& out);

// A table for people: falsifier, earned, runs/machines, flaky or why capped; then the tally.
std::string format_merged_table(const MergedIndex& index);

}  // namespace pv::harness
