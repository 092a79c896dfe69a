// `pv validate --schema-only` cost at scale: 200 generated contracts of 10 falsifiers
// each (2000 falsifiers, 4000 bound tests, inputs globs), parsed, checked and bound.
//   BM_SchemaOnly_200x10          : the full --schema-only path, including listing the
//                                   test binary (once per run, as pv validate does)
//   BM_SchemaOnly_200x10_Prelisted: the same with the listing cached across runs, to
//                                   separate parsing/checking from the child process
// Target: under 1 s for the full path, so a large contract set validates at interactive
// speed. Needs pv_harness_fixture_tests built.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "harness/validate.h"

namespace {

namespace fs = std::filesystem;
namespace ph = pv::harness;

const char* kTests[] = {"Fixture.Passes", "Fixture.PassesToo", "Fixture.RecordsSeed",
                        "Evens/FixtureParam.Even/0", "FixtureTyped/*.ZeroIsZero"};

struct Corpus {
  std::string dir;
  std::vector<std::string> files;
  Corpus() {
    dir = (fs::temp_directory_path() / "pv-schema-bench-XXXXXX").string();
    if (mkdtemp(dir.data()) == nullptr) return;
    for (int c = 0; c < 200; ++c) {
      std::string y = fmt::format(
          "metadata:\n  id: BENCH-{0:03}\n  version: 1.{0}.0\n  description: generated contract "
          "{0}\n  references: [harness/README.md]\n  depends_on: [{1}]\n"
          "equations:\n  e{0}: {{ formula: \"y = x\", domain: \"x >= 0\" }}\nfalsifiers:\n",
          c, c == 0 ? std::string() : fmt::format("BENCH-{:03}", c - 1));
      for (int f = 0; f < 10; ++f) {
        y += fmt::format(
            "  - id: BENCH-{0:03}-{1:02}\n    rule: generated rule {1}\n    prediction: holds\n"
            "    if_fails: generated\n    status: FUNCTIONAL\n"
            "    inputs: [harness/*.cpp, harness/testdata/*.yaml]\n    levels:\n"
            "      PARTIAL_ALGORITHM_LEVEL: {{ tests: [\"pv_harness_fixture_tests:{2}\"] }}\n"
            "      FUNCTIONAL: {{ tests: [\"pv_harness_fixture_tests:{3}\"], fixtures: "
            "[model:tiny] "
            "}}\n",
            c, f, kTests[(c + f) % 5], kTests[(c + f + 1) % 5]);
      }
      const std::string path = fmt::format("{}/bench-{:03}-v1.yaml", dir, c);
      std::ofstream(path) << y;
      files.push_back(path);
    }
  }
  ~Corpus() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

std::string bin_dir() {
  std::error_code ec;
  return fs::read_symlink("/proc/self/exe", ec).parent_path().string();
}

void run(benchmark::State& state, bool prelisted) {
  static Corpus corpus;
  ph::ListingCache shared(bin_dir());
  if (!fs::exists(bin_dir() + "/pv_harness_fixture_tests")) {
    state.SkipWithError("build pv_harness_fixture_tests first (ninja pv_harness_fixture_tests)");
    return;
  }
  size_t falsifiers = 0;
  for (auto _ : state) {
    ph::ListingCache fresh(bin_dir());
    ph::ValidateOptions o;
    o.contracts = corpus.files;
    o.schema_only = true;
    o.bin_dir = bin_dir();
    o.listing = prelisted ? &shared : &fresh;
    o.source_root = PV_SOURCE_DIR;
    const ph::ValidateResult r = ph::validate(o);
    if (!r.diags.empty()) {
      state.SkipWithError(r.diags.front().str().c_str());
      return;
    }
    falsifiers = 0;
    for (const auto& c : r.contracts) falsifiers += c.falsifiers.size();
    benchmark::DoNotOptimize(falsifiers);
  }
  state.counters["contracts"] = static_cast<double>(corpus.files.size());
  state.counters["falsifiers"] = static_cast<double>(falsifiers);
  state.counters["falsifiers/s"] = benchmark::Counter(
      static_cast<double>(falsifiers) * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_SchemaOnly_200x10(benchmark::State& state) { run(state, false); }
void BM_SchemaOnly_200x10_Prelisted(benchmark::State& state) { run(state, true); }

}  // namespace

BENCHMARK(BM_SchemaOnly_200x10)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_SchemaOnly_200x10_Prelisted)->Unit(benchmark::kMillisecond)->MinTime(2.0);
