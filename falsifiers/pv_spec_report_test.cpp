// Falsifiers of contracts/pv-spec-v1.yaml about `pv report` and the markdown summary: the
// page is self-contained and deterministic, a headless Chromium renders the contracts and
// statuses of the evidence (and the page's own tally script agrees), and a bisect's first
// divergence is marked on the curves.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "falsifiers/support/scratch_files.h"
#include "harness/file_bytes.h"
#include "harness/process.h"
#include "harness/report/markdown_summary.h"
#include "harness/report/report_html.h"
#include "harness/sha256.h"
#include "harness/testing/pv_test.h"

namespace {
namespace fs = std::filesystem;
namespace ph = pv::harness;
using nlohmann::json;

using pv::testing::make_temp_dir;
using pv::testing::write_text;

// Two contracts, five falsifiers, every ladder level once; the statuses the page must show.
struct Fixture {
  fs::path root = make_temp_dir("report");
  std::map<std::string, std::pair<std::string, ph::Status>> expected;  // id -> (contract, earned)
  Fixture() {
    const std::vector<std::tuple<std::string, std::string, ph::Status>> rows = {
        {"C-REPORT-ALPHA", "FALSIFY-RA-001", ph::Status::DISCHARGED},
        {"C-REPORT-ALPHA", "FALSIFY-RA-002", ph::Status::FALSIFIED},
        {"C-REPORT-BETA", "FALSIFY-RB-001", ph::Status::FUNCTIONAL},
        {"C-REPORT-BETA", "FALSIFY-RB-002", ph::Status::PARTIAL_ALGORITHM_LEVEL},
        {"C-REPORT-BETA", "FALSIFY-RB-003", ph::Status::BLOCKER_FIXTURE_ABSENT}};
    for (const char* c : {"C-REPORT-ALPHA", "C-REPORT-BETA"}) {
      std::string y = std::string("metadata:\n  id: ") + c +
                      "\n  version: 1.0.0\n  description: report fixture " + c + "\nfalsifiers:\n";
      for (const auto& [cid, fid, s] : rows) {
        if (cid == c) y += "  - id: " + fid + "\n    rule: r\n    status: FALSIFIED\n";
      }
      write_text(root / "contracts" / (std::string(c) + ".yaml"), y);
    }
    for (const auto& [cid, fid, s] : rows) {
      expected[fid] = {cid, s};
      json b;
      b["schema"] = "pv-evidence-v1";
      std::string file = "contracts/" + cid + ".yaml";
      b["contract"] = {{"id", cid},
                       {"version", "1.0.0"},
                       {"file", file},
                       {"sha256", ph::sha256_hex(ph::read_file_bytes(root / file))}};
      b["falsifier"] = {
          {"id", fid},
          {"claimed", "FALSIFIED"},
          {"earned", std::string(ph::status_name(s))},
          {"capped_by", s == ph::Status::BLOCKER_FIXTURE_ABSENT
                            ? json("fixture-absent: cuda-device at PARTIAL_ALGORITHM_LEVEL")
                            : json()}};
      b["tests"] = json::array();
      b["environment"] = {{"machine_id", "m1"}, {"inputs_digest", "d"}};
      b["generated_at"] = "2026-11-22T00:00:00Z";
      write_text(root / "evidence/runs/m1" / cid / (fid + ".json"), b.dump());
    }
    // A bisect in the pv-bisect-v1 shape: drift jumps at layer 2 attn_softmax.
    json st = json::array();
    st.push_back({{"stage", "embedding"}, {"layer", nullptr}, {"cosine", 1.0}, {"nmse", 0.0}});
    for (int l = 0; l < 4; ++l) {
      for (const char* s : {"attn_scores", "attn_softmax", "attention"}) {
        double n = (l >= 2 && std::string(s) != "attn_scores") || l >= 3 ? 3e-3 : 1e-7 * (l + 1);
        st.push_back({{"stage", s}, {"layer", l}, {"cosine", 1 - n / 2}, {"nmse", n}});
      }
    }
    json bis = {{"schema", "pv-bisect-v1"},
                {"ref", "a"},
                {"cand", "b"},
                {"stages", st},
                {"first_divergence",
                 {{"layer", 2},
                  {"stage", "attn_softmax"},
                  {"cosine", 1 - 1.5e-3},
                  {"nmse", 3e-3},
                  {"reason", "nmse 1000x floor"}}}};
    write_text(root / "bisect.json", bis.dump());
  }
  ~Fixture() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  ph::ProcessResult pv_report(const fs::path& out) const {
    ph::ProcessOptions o;
    o.argv = {std::string(PV_BINARY_DIR) + "/bin/pv",
              "report",
              "--out",
              out.string(),
              "--evidence",
              (root / "evidence").string(),
              "--root",
              root.string(),
              "--spec",
              (root / "spec/none.md").string(),
              "--bisect",
              (root / "bisect.json").string(),
              "--markdown",
              (out / "summary.md").string()};
    o.tail_bytes = 1 << 16;
    return ph::run_process(o);
  }
};

TEST(Report, HtmlIsSelfContainedAndDeterministic) {
  Fixture fx;
  fs::path a = fx.root / "out-a", b = fx.root / "out-b";
  auto ra = fx.pv_report(a);
  ASSERT_EQ(ra.exit_code, 0) << ra.stderr_text;
  ASSERT_EQ(fx.pv_report(b).exit_code, 0);
  const std::string html = ph::read_file_bytes(a / "index.html");
  EXPECT_EQ(html, ph::read_file_bytes(b / "index.html")) << "same inputs, same bytes";
  // Nothing the page could fetch: no URLs, no external src/href, no CSS imports.
  for (const char* needle : {"http:", "https:", "src=", "href=", "@import", "url(", "//cdn"}) {
    EXPECT_EQ(html.find(needle), std::string::npos) << "found " << needle;
  }
  EXPECT_NE(html.find("<svg"), std::string::npos);
  // The fixture contracts would fail pv validate (no prediction, no levels): the report
  // reads them leniently through the contract loader and still says what each claims.
  for (const char* c : {"C-REPORT-ALPHA", "C-REPORT-BETA"}) {
    EXPECT_NE(html.find(std::string("report fixture ") + c), std::string::npos) << c;
  }
  pv::testing::record_metric("report_bytes", static_cast<double>(html.size()));
}

TEST(Report, BisectCurvesMarkFirstDivergence) {
  Fixture fx;
  json bis = json::parse(ph::read_file_bytes(fx.root / "bisect.json"));
  std::string sec = ph::render_bisect_section("b.json", bis);
  EXPECT_NE(sec.find("first divergence: layer 2 attn_softmax"), std::string::npos) << sec;
  // The mark sits on the curves: a marker group in both charts, and one polyline per stage.
  size_t marks = 0;
  for (size_t p = 0; (p = sec.find("class=\"first-divergence\"", p)) != std::string::npos; ++p)
    ++marks;
  EXPECT_EQ(marks, 2u);
  EXPECT_NE(sec.find("data-stage=\"attn_softmax\""), std::string::npos);
  bis["first_divergence"] = nullptr;
  std::string clean = ph::render_bisect_section("b.json", bis);
  EXPECT_EQ(clean.find("class=\"first-divergence\""), std::string::npos);
  EXPECT_NE(clean.find("no divergence"), std::string::npos);
}

TEST(Report, MarkdownSummaryNamesProblemsFirst) {
  Fixture fx;
  fs::path out = fx.root / "out";
  ASSERT_EQ(fx.pv_report(out).exit_code, 0);
  const std::string md = ph::read_file_bytes(out / "summary.md");
  EXPECT_NE(md.find("**5 falsifiers**"), std::string::npos) << md;
  size_t attention = md.find("### Needs attention");
  ASSERT_NE(attention, std::string::npos) << md;
  EXPECT_LT(md.find(":x: `FALSIFY-RA-002` FALSIFIED"), md.find("### C-REPORT-ALPHA"));
  EXPECT_NE(md.find("| `FALSIFY-RB-003` | BLOCKER_FIXTURE_ABSENT |"), std::string::npos);
}

// The page as a browser renders it: Chromium (headless, no network, fresh profile) dumps
// the DOM after the page's script ran; every contract and every falsifier's status must be
// there, and the script's own count of rendered rows must match the evidence.
TEST(Report, ChromiumRendersContractsAndStatuses) {
  if (!fs::exists("/usr/bin/chromium")) PV_SKIP_FIXTURE_ABSENT("chromium");
  Fixture fx;
  fs::path out = fx.root / "out";
  ASSERT_EQ(fx.pv_report(out).exit_code, 0);
  fs::path profile = make_temp_dir("chromium-profile");
  auto chromium = [&](std::vector<std::string> extra) {
    ph::ProcessOptions o;
    o.argv = {"/usr/bin/chromium",
              "--headless",
              "--no-sandbox",
              "--disable-gpu",
              "--disable-quic",
              "--no-first-run",
              "--disable-background-networking",
              "--disable-component-update",
              "--disable-sync",
              "--user-data-dir=" + profile.string()};
    o.argv.insert(o.argv.end(), extra.begin(), extra.end());
    o.argv.push_back("file://" + (out / "index.html").string());
    o.timeout = std::chrono::seconds(120);
    o.tail_bytes = 1 << 22;
    return ph::run_process(o);
  };
  auto dom = chromium({"--dump-dom"});
  ASSERT_TRUE(dom.ok()) << dom.describe() << "\n" << dom.stderr_text;
  const std::string& d = dom.stdout_text;
  EXPECT_NE(d.find("data-rendered=\"yes\""), std::string::npos) << "the page's script did not run";
  EXPECT_NE(d.find("rendered 5 falsifiers: BLOCKER_FIXTURE_ABSENT 1, DISCHARGED 1, FALSIFIED 1, "
                   "FUNCTIONAL 1, PARTIAL_ALGORITHM_LEVEL 1"),
            std::string::npos);
  for (const char* c : {"C-REPORT-ALPHA", "C-REPORT-BETA"}) {
    EXPECT_NE(d.find(std::string("data-contract=\"") + c + "\""), std::string::npos) << c;
  }
  for (const auto& [fid, ce] : fx.expected) {
    std::regex row("<tr data-falsifier=\"" + fid + "\" data-earned=\"([A-Z_]+)\"");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(d, m, row)) << fid << " missing from the rendered page";
    EXPECT_EQ(m[1].str(), ph::status_name(ce.second)) << fid;
  }
  EXPECT_NE(d.find("fixture-absent: cuda-device"), std::string::npos) << "the cap must be shown";
  // And as pixels: a screenshot of the requested size that is not blank.
  fs::path shot = out / "report.png";
  auto png = chromium({"--window-size=1200,1800", "--screenshot=" + shot.string()});
  ASSERT_TRUE(png.ok()) << png.describe();
  std::string bytes = ph::read_file_bytes(shot);
  ASSERT_GT(bytes.size(), 24u);
  EXPECT_EQ(bytes.substr(1, 3), "PNG");
  auto be32 = [&](size_t off) {
    return (static_cast<uint32_t>(static_cast<unsigned char>(bytes[off])) << 24) |
           (static_cast<uint32_t>(static_cast<unsigned char>(bytes[off + 1])) << 16) |
           (static_cast<uint32_t>(static_cast<unsigned char>(bytes[off + 2])) << 8) |
           static_cast<uint32_t>(static_cast<unsigned char>(bytes[off + 3]));
  };
  EXPECT_EQ(be32(16), 1200u);
  EXPECT_EQ(be32(20), 1800u);
  // A blank page compresses to a few KB; the rendered tables and charts do not.
  EXPECT_GT(bytes.size(), 30000u);
  pv::testing::record_metric("screenshot_bytes", static_cast<double>(bytes.size()));
  if (const char* keep = std::getenv("PV_REPORT_SCREENSHOT"); keep != nullptr && *keep != '\0') {
    fs::copy_file(shot, keep, fs::copy_options::overwrite_existing);
  }
  std::error_code ec;
  fs::remove_all(profile, ec);
}

}  // namespace
