// What a GoogleTest binary says it contains (--gtest_list_tests), listed once per
// binary per validate run and shared by every contract that binds it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

namespace pv::harness {

// Parses --gtest_list_tests output into full names "Suite.Test", including value- and
// type-parameterized ones ("Evens/FixtureParam.Even/0", "FixtureTyped/0.ZeroIsZero").
std::set<std::string> parse_gtest_list(std::string_view text);

// gtest filter-style pattern match ('*' any run of characters, '?' one character).
bool gtest_pattern_match(std::string_view pattern, std::string_view name);

struct Listing {
  bool ok = false;
  std::string error;  // why the binary could not be listed
  std::set<std::string> tests;
};

class ListingCache {
 public:
  explicit ListingCache(std::string bin_dir) : bin_dir_(std::move(bin_dir)) {}
  // The listing of `binary` (a plain file name inside bin_dir), computed on first use.
  const Listing& get(const std::string& binary);
  // Pre-seed a listing (benchmarks, tests) without running the binary.
  void put(const std::string& binary, Listing listing);
  // `binary` is a plain name inside bin_dir, or a path (a binary found in another bin dir).
  std::string path_of(const std::string& binary) const {
    return binary.find('/') != std::string::npos ? binary : bin_dir_ + "/" + binary;
  }
  const std::string& bin_dir() const { return bin_dir_; }
  int binaries_listed() const { return listed_; }

 private:
  std::string bin_dir_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Listing>> cache_;
  int listed_ = 0;
};

}  // namespace pv::harness
