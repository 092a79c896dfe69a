// FALSIFY-TRACE-011: an APRT file is exactly 12 + 4*count bytes. A file with bytes past
// its elements (a torn rewrite, two tensors concatenated) is refused naming the count
// field's offset, as a truncated one is: reading it would silently drop data.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "harness/testing/pv_test.h"
#include "model/trace/aprt.h"

namespace {

TEST(TraceSaveTensor, AprtLengthMustMatchCount) {
  const std::vector<float> x = {1.5f, -2.0f, 3.25f};
  const std::vector<uint8_t> good = pv::model::aprt_encode(7, x.data(), x.size());
  ASSERT_EQ(good.size(), 12u + 4 * x.size());
  const auto t = pv::model::aprt_decode(good.data(), good.size(), "good.aprt");
  EXPECT_EQ(t.data, x);
  int refused = 0;
  for (size_t extra : {1u, 3u, 4u, 8u}) {
    std::vector<uint8_t> longer = good;
    longer.resize(good.size() + extra, 0);
    try {
      pv::model::aprt_decode(longer.data(), longer.size(), "longer.aprt");
      ADD_FAILURE() << "an APRT file with " << extra << " byte(s) past its elements was read";
    } catch (const pv::model::AprtError& e) {
      ++refused;
      EXPECT_NE(std::string(e.what()).find("longer.aprt"), std::string::npos) << e.what();
      EXPECT_EQ(e.offset(), 8u) << "the count field is at byte 8: " << e.what();
    }
  }
  pv::testing::record_metric("longer_files_refused", refused);
}

}  // namespace
