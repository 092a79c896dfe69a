// pv validate: run the falsifiers contracts bind, earn their statuses, write evidence.
// Logic lives in harness/ (validate.h, report.h); this file is only the CLI surface.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include "harness/atomic_file.h"
#include "harness/process.h"
#include "harness/report/markdown_summary.h"
#include "harness/report/validate_report.h"
#include "harness/shard.h"
#include "harness/signing.h"
#include "harness/temp_files.h"
#include "harness/validate.h"
#include "tools/command.h"

namespace {

constexpr const char* kFooter = R"(Exit codes:
  0  every falsifier earned at least its claimed status (promotions waiting are shown)
  1  a falsifier was FALSIFIED (a bound test failed, crashed or timed out), or a claim
     is above what was earned (overclaim)
  2  usage error or schema errors (every problem is listed as file:line:col)
  3  environment error: the temp dir (TMPDIR) is full or unwritable, or the evidence dir
     stayed locked by another pv validate; no claim was graded

Bound tests run as `<bin-dir>/<binary> --gtest_filter=<test> --gtest_output=json:...`
(no shell), with PV_SEED=<seed> and RC_PARAMS="seed=<seed>"; ctest, pytest, cargo test
and plain commands run likewise, each reporting through its JUnit report or libtest
output and the result file PV_RESULT_FILE (harness/README.md). Replay a failure with the
seed printed in its counterexample. Evidence bundles go to
<evidence-dir>/runs/<machine-id>/<contract-id>/<falsifier-id>.json and an index to
<evidence-dir>/index.json (see harness/README.md). Set PV_MACHINE_ID to pin the machine id.)";

std::string self_dir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

struct Args {
  std::vector<std::string> contracts;
  bool schema_only = false;
  int jobs = 1;
  bool json = false;
  std::string junit;
  std::string evidence_dir;
  std::string bin_dir;
  std::string config;  // pv.yaml (harness/README.md)
  std::string source_root;
  double timeout_s = 600;
  double lock_wait_s = 600;
  int64_t seed = -1;
  bool no_evidence = false;
  std::string shard;     // "i/n": run a deterministic slice (harness/shard.h)
  std::string markdown;  // write a markdown summary (harness/report/markdown_summary.h)
  bool mutants = false;  // also check must_kill promises (harness/must_kill.h)
  std::string sign_key;  // private key signing every bundle written (harness/signing.h)
  std::string allowed_signers;
};

int run_validate(const Args& a) {
  namespace ph = pv::harness;
  ph::ValidateOptions o;
  if (!a.shard.empty()) o.select = ph::shard_filter(a.contracts, ph::parse_shard(a.shard));
  o.contracts = a.contracts;
  o.schema_only = a.schema_only;
  o.jobs = a.jobs;
  o.bin_dir = a.bin_dir.empty() ? self_dir() : a.bin_dir;
  o.config = a.config;
  o.evidence_dir = a.evidence_dir;
  o.source_root = a.source_root;
  o.timeout = std::chrono::milliseconds(static_cast<int64_t>(a.timeout_s * 1000));
  if (a.seed >= 0) o.seed = static_cast<uint64_t>(a.seed);
  o.write_evidence = !a.no_evidence;
  o.mutants = a.mutants;
  o.allowed_signers = a.allowed_signers;
  std::optional<ph::SigningKey> key;
  {
    std::string key_file = a.sign_key;
    if (const char* env = std::getenv("PV_SIGN_KEY"); key_file.empty() && env != nullptr) {
      key_file = env;
    }
    if (!key_file.empty()) {
      try {
        key = ph::load_signing_key(key_file);
      } catch (const std::exception& e) {
        std::cerr << "pv validate: " << e.what() << "\n";
        return ph::kExitUsage;
      }
      o.sign_key = &*key;
    }
  }
  const bool tty = isatty(STDERR_FILENO) != 0 && !a.json;
  if (tty) {
    o.progress = [](size_t done, size_t total, const ph::RunJob& job) {
      std::cerr << fmt::format("\r\033[K[{}/{}] {}:{}", done, total, job.binary, job.test)
                << std::flush;
    };
  }
  // Ctrl-C / SIGTERM are handled by pv's signal thread (tools/main.cpp): running tests and
  // their trees are killed and temp files removed before pv dies of the signal.
  o.on_lock_wait = [](const std::string& msg) { std::cerr << "pv validate: " << msg << "\n"; };
  o.lock_wait = std::chrono::milliseconds(static_cast<int64_t>(a.lock_wait_s * 1000));
  ph::ValidateResult r;
  try {
    r = ph::validate(o);
  } catch (const ph::EnvironmentError& e) {
    std::cerr << "pv validate: environment error: " << e.what() << "\n";
    return ph::kExitEnvironment;
  }
  if (tty && r.ran) std::cerr << "\r\033[K" << std::flush;
  if (a.json) {
    std::cout << ph::to_json(r, a.schema_only).dump(2) << "\n";
  } else {
    // Schema problems go to stderr (like a compiler); the table to stdout.
    if (!r.diags.empty()) {
      ph::print_human(std::cerr, r, a.schema_only);
    } else {
      ph::print_human(std::cout, r, a.schema_only);
    }
  }
  if (!a.junit.empty()) {
    try {
      ph::write_file_atomic(a.junit, ph::to_junit(r));
    } catch (const std::exception& e) {
      std::cerr << "pv validate: cannot write JUnit report: " << e.what() << "\n";
      return ph::kExitUsage;
    }
  }
  if (!a.markdown.empty() && !r.evidence_dir.empty() && r.ran && !a.no_evidence) {
    try {
      ph::write_markdown_summary(r.evidence_dir, r.contracts.front().root, a.markdown);
    } catch (const std::exception& e) {
      std::cerr << "pv validate: cannot write markdown summary: " << e.what() << "\n";
      return ph::kExitUsage;
    }
  }
  return r.exit_code;
}

PV_COMMAND("validate", "Run bound falsifiers, earn statuses, write evidence bundles",
           [](CLI::App& sub) -> std::function<int()> {
             auto args = std::make_shared<Args>();
             sub.add_option("contracts", args->contracts, "Contract YAML files")
                 ->required()
                 ->check(CLI::ExistingFile);
             sub.add_flag("--schema-only", args->schema_only,
                          "Parse and check contracts and test bindings; run nothing");
             sub.add_option("-j,--jobs", args->jobs, "Test processes to run at once")
                 ->check(CLI::Range(1, 256));
             sub.add_flag("--json", args->json, "Print the result as JSON on stdout");
             sub.add_option("--junit", args->junit, "Also write a JUnit XML report to FILE");
             sub.add_option("--evidence-dir", args->evidence_dir,
                            "Evidence directory (default: <source root>/evidence)");
             sub.add_option("--bin-dir", args->bin_dir,
                            "Where test binaries live (default: the directory of pv); "
                            "searched before pv.yaml's bin_dirs");
             sub.add_option("--config", args->config,
                            "Per-repo config: bin dirs, runner programs, env (default: "
                            "pv.yaml at the source root, when present)")
                 ->check(CLI::ExistingFile);
             sub.add_option("--source-root", args->source_root,
                            "Root that inputs globs are relative to (default: the directory "
                            "holding .git above the contract, else CMakeLists.txt + contracts/)")
                 ->check(CLI::ExistingDirectory);
             sub.add_option("--timeout", args->timeout_s, "Per-test timeout in seconds")
                 ->check(CLI::PositiveNumber);
             sub.add_option("--lock-wait", args->lock_wait_s,
                            "Seconds to wait for another validate writing into the same "
                            "evidence dir (then exit 3)")
                 ->check(CLI::NonNegativeNumber);
             sub.add_option("--seed", args->seed, "Base seed (default: fresh, printed)")
                 ->check(CLI::NonNegativeNumber);
             sub.add_flag("--no-evidence", args->no_evidence,
                          "Grade without writing bundles or index.json");
             sub.add_option("--shard", args->shard,
                            "Run shard i of n (1-based): sorted falsifier ids dealt round-robin");
             sub.add_flag("--mutants", args->mutants,
                          "Also plant each falsifier's must_kill bugs (PV_MUTANT) and rerun its "
                          "tests: a bug they do not kill caps the falsifier at "
                          "BLOCKER_FIXTURE_ABSENT (capped_by names it)");
             sub.add_option("--markdown", args->markdown,
                            "Also write a markdown summary to FILE (CI step summary)");
             sub.add_option("--sign-key", args->sign_key,
                            "Sign every bundle written with this ed25519 key (pv evidence "
                            "keygen; default: $PV_SIGN_KEY, else unsigned)");
             sub.add_option("--allowed-signers", args->allowed_signers,
                            "Keys whose signed bundles earn credit (default: "
                            "<source root>/evidence/allowed_signers)")
                 ->check(CLI::ExistingFile);
             sub.footer(kFooter);
             return [args] { return run_validate(*args); };
           });

}  // namespace
