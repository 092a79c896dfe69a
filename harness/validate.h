// `pv validate` as a library call: load + check every contract (all problems, with
// file:line:col), bind tests against each binary's listing (listed once per binary),
// run them, grade, and write evidence bundles and index.json.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "harness/contract.h"
#include "harness/evidence.h"
#include "harness/fingerprint.h"
#include "harness/gtest_listing.h"
#include "harness/runner.h"
#include "harness/signing.h"

namespace pv::harness {

// kExitEnvironment: the machine failed pv (a full or unwritable $TMPDIR, a locked evidence
// dir), so no claim was graded; validate() throws EnvironmentError (temp_files.h) for it.
enum ExitCode : int { kExitOk = 0, kExitFalsified = 1, kExitUsage = 2, kExitEnvironment = 3 };

struct ValidateOptions {
  std::vector<std::string> contracts;
  bool schema_only = false;  // parse + binding check; run nothing, write nothing
  int jobs = 1;
  std::string bin_dir;  // where test binaries live (required); searched first
  // pv.yaml (harness/README.md): "" -> <source root of the first contract>/pv.yaml when
  // there is one. Adds bin dirs, environment and runner settings.
  std::string config;
  std::string evidence_dir;  // "" -> <source root of the first contract>/evidence
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
  std::optional<uint64_t> seed;  // base seed; fresh when absent
  bool write_evidence = true;
  std::function<void(size_t, size_t, const RunJob&)> progress;
  ListingCache* listing = nullptr;  // shared cache (benchmarks); one per call otherwise
  std::string source_root;          // "" -> found from the contract files (.git above)
  // Signs every bundle written (pv validate --sign-key, PV_SIGN_KEY); unsigned when null.
  const SigningKey* sign_key = nullptr;
  // Who may vouch for committed evidence: "" -> <source root>/evidence/allowed_signers.
  // Read from the source tree, never from --evidence-dir: the evidence being judged must
  // not name its own judges.
  std::string allowed_signers;
  // Which falsifiers to run and grade (all when empty): `pv validate --shard i/n`.
  std::function<bool(const std::string& falsifier_id)> select;
  // `pv validate --mutants`: also plant each falsifier's must_kill bugs (harness/
  // must_kill.h) and cap what a falsifier earns when one of them survives.
  bool mutants = false;
  // How long to wait for another validate writing into the same evidence dir
  // (harness/evidence_lock.h), and what to say while waiting.
  std::chrono::milliseconds lock_wait{std::chrono::minutes(10)};
  std::function<void(const std::string&)> on_lock_wait;
};

struct ValidateResult {
  Diagnostics diags;
  std::deque<Contract> contracts;  // stable addresses: verdicts point into it
  std::vector<FalsifierVerdict> verdicts;
  Environment env;
  bool ran = false;
  uint64_t seed = 0;
  std::string evidence_dir;
  std::vector<std::string> bundles_written;
  std::string index_path;
  std::vector<std::string> io_errors;
  std::vector<std::string> warnings;  // problems pv worked around (a rebuilt index.json)
  int binaries_listed = 0;
  int tests_run = 0;
  int exit_code = kExitOk;
};

// Throws EnvironmentError (harness/temp_files.h) when pv cannot work here: $TMPDIR is not
// writable or full, or the evidence dir stays locked by another validate.
ValidateResult validate(const ValidateOptions& opts);

}  // namespace pv::harness
