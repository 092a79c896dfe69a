// Falsifiers for contracts/hardening-v1.yaml, harness side: hostile contracts, gtest
// reports, evidence bundles and index.json make `pv validate` end with a clear error naming
// the file and the place (exit 2, or a FALSIFIED verdict for the one test whose report is
// unusable), within seconds, never a crash, and nothing else lost. The gtest reports come
// from a stand-in test binary (a shell script) that writes whatever report a test asks for.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "falsifiers/support/pv_cli.h"
#include "falsifiers/support/scratch_files.h"
#include "harness/contract.h"
#include "harness/evidence.h"
#include "harness/input_limits.h"
#include "harness/process.h"
#include "harness/testing/pv_test.h"

namespace ph = pv::harness;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using pv::testing::bin_dir;
using pv::testing::read_text;
using pv::testing::run_pv;

// A contract binding `tests` (one falsifier each) of the binary "hostile".
std::string contract_yaml(const std::vector<std::string>& tests, const std::string& version) {
  std::string y = "metadata:\n  id: PVT-HOSTILE\n  version: \"" + version +
                  "\"\n  description: hostile reports\nfalsifiers:\n";
  for (size_t k = 0; k < tests.size(); ++k) {
    y += "  - id: PVT-HOSTILE-00" + std::to_string(k + 1) +
         "\n    rule: r\n    prediction: p\n    if_fails: f\n    status: PARTIAL_ALGORITHM_LEVEL\n"
         "    levels:\n      PARTIAL_ALGORITHM_LEVEL: { tests: [\"hostile:Hostile." +
         tests[k] + "\"] }\n";
  }
  return y;
}

// A bin dir with the stand-in binary "hostile": it lists Hostile.<name> for every file
// reports/<name>.json and, when run, copies that file as its gtest report; a name ending
// in "Fails" prints reports/<name>.out and exits 1 without a report.
struct HostileTree {
  fs::path root, bin, reports, evidence;
  explicit HostileTree(const std::string& tag) {
    root = pv::testing::make_temp_dir("hardening-" + tag);
    bin = root / "bin";
    reports = root / "reports";
    evidence = root / "evidence";
    fs::create_directories(bin);
    fs::create_directories(reports);
    const std::string script =
        "#!/bin/sh\nR='" + reports.string() +
        "'\nfor a in \"$@\"; do case \"$a\" in\n"
        "  --gtest_list_tests) echo Hostile.; for f in \"$R\"/*; do n=$(basename \"$f\"); "
        "echo \"  ${n%.*}\"; done; exit 0;;\n"
        "  --gtest_output=json:*) out=\"${a#--gtest_output=json:}\";;\n"
        "  --gtest_filter=Hostile.*) t=\"${a#--gtest_filter=Hostile.}\";;\n"
        "esac; done\n"
        "if [ -f \"$R/$t.out\" ]; then cat \"$R/$t.out\"; exit 1; fi\n"
        "cat \"$R/$t.json\" > \"$out\"\n";
    pv::testing::write_text(bin / "hostile", script);
    fs::permissions(bin / "hostile", fs::perms::owner_all);
  }
  void report(const std::string& name, const std::string& text) {
    pv::testing::write_text(reports / (name + ".json"), text);
  }
  void output(const std::string& name, const std::string& text) {
    pv::testing::write_text(reports / (name + ".out"), text);
  }
  std::string contract(const std::vector<std::string>& tests,
                       const std::string& version = "1.0.0") {
    const fs::path c = root / "hostile.yaml";
    pv::testing::write_text(c, contract_yaml(tests, version));
    return c.string();
  }
  ph::ProcessResult validate(const std::string& contract, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"validate", "--bin-dir", bin.string(), "--evidence-dir",
                                     evidence.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(contract);
    return run_pv(args, {{"PV_MACHINE_ID", "m1"}});
  }
  json bundle(const std::string& falsifier) {
    return json::parse(read_text(evidence / "runs" / "m1" / "PVT-HOSTILE" / (falsifier + ".json")),
                       nullptr, false);
  }
};

std::string ok_report(const std::string& test) {
  return R"({"testsuites":[{"name":"Hostile","testsuite":[{"name":")" + test +
         R"(","status":"RUN","result":"COMPLETED","time":"0s"}]}]})";
}

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---- gtest reports ----

TEST(Hardening, HostileGtestReportsFailOnlyTheirTest) {
  HostileTree t("reports");
  t.report("Good", ok_report("Good"));
  t.report("WrongShape", R"({"testsuites":[1,2,3]})");
  t.report("WrongField",
           R"({"testsuites":[{"name":"Hostile","testsuite":[{"name":7,"status":"RUN"}]}]})");
  t.report("Deep", std::string(200000, '[') + std::string(200000, ']'));
  // Over the report size limit (sparse: costs no disk).
  {
    const fs::path big = t.reports / "Huge.json";
    pv::testing::write_text(big, "{");
    fs::resize_file(big, ph::kMaxGtestReportBytes + 1);
  }
  t.output("Utf8TailFails", std::string(3000, 'x') + "caf\xC3");
  const std::string c =
      t.contract({"Good", "WrongShape", "WrongField", "Deep", "Huge", "Utf8TailFails"});
  const auto t0 = Clock::now();
  const auto r = t.validate(c, {"--jobs", "2"});
  const double secs = seconds_since(t0);
  pv::testing::record_metric("hostile_reports_validate_s", secs);
  EXPECT_EQ(r.term_signal, 0) << r.describe();
  EXPECT_EQ(r.exit_code, 1) << r.stdout_text << r.stderr_text;
  EXPECT_LT(secs, 10.0);
  EXPECT_EQ(t.bundle("PVT-HOSTILE-001")["falsifier"]["earned"], "PARTIAL_ALGORITHM_LEVEL");
  const struct {
    const char* id;
    const char* says;
  } bad[] = {{"PVT-HOSTILE-002", "/testsuites/0: is not an object"},
             {"PVT-HOSTILE-003", "/testsuites/0/testsuite/0: "},
             {"PVT-HOSTILE-004", "nested deeper than 256 levels"},
             {"PVT-HOSTILE-005", "exceed the limit of"}};
  for (const auto& b : bad) {
    const json j = t.bundle(b.id);
    ASSERT_TRUE(j.is_object()) << b.id << " lost its bundle";
    EXPECT_EQ(j["falsifier"]["earned"], "FALSIFIED") << b.id;
    const std::string failure = j["tests"][0]["failure"].get<std::string>();
    EXPECT_NE(failure.find("gtest report of hostile --gtest_filter=Hostile."), std::string::npos)
        << failure;
    EXPECT_NE(failure.find(b.says), std::string::npos) << b.id << ": " << failure;
  }
  // The test whose output tail ends mid-character keeps its bundle, the tail made valid.
  const json u = t.bundle("PVT-HOSTILE-006");
  ASSERT_TRUE(u.is_object()) << "the bundle with a cut UTF-8 tail was lost";
  EXPECT_EQ(u["falsifier"]["earned"], "FALSIFIED");
  const std::string tail = u["tests"][0]["output_tail"].get<std::string>();
  EXPECT_EQ(tail.substr(tail.size() - 6), "caf\xEF\xBF\xBD");
}

TEST(Hardening, Utf8SanitizerKeepsValidTextAndReplacesTheRest) {
  EXPECT_EQ(ph::sanitize_utf8("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(ph::sanitize_utf8("a\xC3"), "a\xEF\xBF\xBD");
  EXPECT_EQ(ph::sanitize_utf8("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(ph::sanitize_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  EXPECT_EQ(ph::sanitize_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  // Whatever bytes go in, nlohmann can dump the result.
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  EXPECT_NO_THROW(json(ph::sanitize_utf8(all + all.substr(200))).dump());
}

// ---- evidence bundles and index.json ----

TEST(Hardening, BrokenIndexAndBundlesDoNotBreakValidate) {
  HostileTree t("index");
  t.report("Good", ok_report("Good"));
  const std::string c = t.contract({"Good"});
  fs::create_directories(t.evidence);
  // A committed index.json nested 300,000 deep.
  pv::testing::write_text(t.evidence / "index.json",
                          std::string(300000, '[') + std::string(300000, ']'));
  // And a deep bundle from another machine for the same falsifier.
  pv::testing::write_text(t.evidence / "runs" / "gpu" / "PVT-HOSTILE" / "PVT-HOSTILE-001.json",
                          "{\"schema\":\"pv-evidence-v1\",\"x\":" + std::string(300000, '[') +
                              std::string(300000, ']') + "}");
  for (int round = 0; round < 2; ++round) {
    const auto r = t.validate(c);
    EXPECT_EQ(r.term_signal, 0) << r.describe();
    EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
    if (round == 0) {
      EXPECT_NE(r.stdout_text.find("warning: " + (t.evidence / "index.json").string() +
                                   ": ignored and rebuilt from this run: byte 256: JSON nested "
                                   "deeper than 256 levels"),
                std::string::npos)
          << r.stdout_text;
    }
    const json index = json::parse(read_text(t.evidence / "index.json"), nullptr, false);
    ASSERT_TRUE(index.is_object()) << "round " << round;
    EXPECT_EQ(index["falsifiers"].size(), 1u);
  }
  // parse_bundle names the file and the JSON pointer of a bad field.
  try {
    ph::parse_bundle("b.json", R"({"schema":"pv-evidence-v1","contract":{"id":"C"},)"
                               R"("falsifier":{"id":"F","claimed":"GREAT","earned":"FALSIFIED"}})");
    ADD_FAILURE() << "a bad status was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "b.json: /falsifier/claimed is 'GREAT', not a ladder status");
  }
  try {
    ph::parse_bundle("b.json",
                     R"({"schema":"pv-evidence-v1","contract":{"id":"C"},"falsifier":{"id":5}})");
    ADD_FAILURE() << "a numeric id was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "b.json: /falsifier/id is missing or not a string");
  }
}

// ---- contracts ----

// `pv validate --schema-only` of `text`: exit 2 with the diagnostic `expect` (which
// includes the file:line:col), within 10 s.
void expect_contract_refused(const std::string& tag, const std::string& text,
                             const std::string& expect) {
  const fs::path dir = pv::testing::make_temp_dir("hardening-yaml");
  const fs::path c = dir / (tag + ".yaml");
  pv::testing::write_text(c, text);
  const auto t0 = Clock::now();
  const auto r = run_pv({"validate", "--schema-only", "--bin-dir", bin_dir(), c.string()});
  const double secs = seconds_since(t0);
  std::printf("  %s: exit %d in %.2f s\n", tag.c_str(), r.exit_code, secs);
  pv::testing::record_metric("contract_" + tag + "_s", secs);
  EXPECT_EQ(r.term_signal, 0) << tag << ": " << r.describe();
  EXPECT_EQ(r.exit_code, 2) << tag << ": " << r.stdout_text << r.stderr_text;
  EXPECT_LT(secs, 10.0) << tag;
  const std::string out = r.stdout_text + r.stderr_text;
  EXPECT_NE(out.find(c.string() + ":" + expect), std::string::npos) << tag << ": " << out;
  fs::remove_all(dir);
}

const char* kHead =
    "metadata:\n  id: PVT-Y\n  version: 1.0.0\n  description: d\nfalsifiers:\n  - id: PVT-Y-001\n"
    "    rule: r\n    prediction: p\n    if_fails: f\n    status: BLOCKER_FIXTURE_ABSENT\n";

TEST(Hardening, HostileContractsAreRefusedWithLineCol) {
  // A 50 KB version string (std::regex recursed per character and overflowed the stack).
  std::string yaml =
      contract_yaml({"X"}, std::string(50000, '1') + ".0.0-" + std::string(1000, 'a'));
  expect_contract_refused("long-version", yaml, "3:12: error: version '");
  // Billion laughs: nine levels of ten aliases each.
  std::string laughs = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int k = 1; k < 10; ++k) {
    laughs += "a" + std::to_string(k) + ": &a" + std::to_string(k) + " [";
    for (int j = 0; j < 10; ++j) laughs += (j ? ", *a" : "*a") + std::to_string(k - 1);
    laughs += "]\n";
  }
  expect_contract_refused("laughs", laughs, "2:10: error: YAML aliases (*name) are not allowed");
  {
    std::string nul = kHead;
    nul += "    # a";
    nul += '\0';
    nul += "b\n";
    expect_contract_refused("nul", nul, "11:8: error: NUL byte at byte");
  }
  expect_contract_refused("utf8", std::string(kHead) + "    # caf\xC3(\n",
                          "11:10: error: invalid UTF-8 at byte");
  expect_contract_refused("second-doc", std::string(kHead) + "---\nmetadata: {}\n",
                          "11:1: error: a second YAML document");
  expect_contract_refused("deep",
                          "x: " + std::string(100000, '[') + std::string(100000, ']') + "\n", "1:");
  // A contract that is a FIFO: refused at once, not read forever.
  const fs::path dir = pv::testing::make_temp_dir("hardening-fifo");
  const fs::path fifo = dir / "fifo.yaml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto t0 = Clock::now();
  const auto r = run_pv({"validate", "--schema-only", "--bin-dir", bin_dir(), fifo.string()});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_LT(seconds_since(t0), 10.0);
  EXPECT_NE((r.stdout_text + r.stderr_text)
                .find(fifo.string() + ": error: cannot read the contract "
                                      "file: is not a regular file"),
            std::string::npos)
      << r.stdout_text << r.stderr_text;
  fs::remove_all(dir);
}

TEST(Hardening, SemverParserMatchesTheGrammar) {
  for (const char* ok : {"0.0.0", "1.2.3", "10.20.30", "1.0.0-alpha", "1.0.0-alpha.1",
                         "1.0.0-0.3.7", "1.0.0-x.7.z.92", "1.0.0+20130313144700",
                         "1.0.0-beta+exp.sha.5114f85", "1.0.0+21AF26D3-117B344092BD"}) {
    EXPECT_TRUE(ph::is_semver(ok)) << ok;
  }
  for (const char* bad :
       {"", "1", "1.2", "1.2.3.4", "01.2.3", "1.02.3", "1.2.03", "1.2.3-", "1.2.3+", "1.2.3-a..b",
        "1.2.3-a_b", "a.b.c", "1.2.3 ", " 1.2.3", "1..3", "-1.2.3", "1.2.-3", "1.2.3+a+b"}) {
    EXPECT_FALSE(ph::is_semver(bad)) << bad;
  }
  const auto t0 = Clock::now();
  EXPECT_FALSE(ph::is_semver(std::string(1 << 20, '1') + ".0.0"));
  EXPECT_LT(seconds_since(t0), 1.0);
}

}  // namespace
