#include "ptq/core/metrics.h"

#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "ptq/core/batch.h"

namespace ptq::core {
namespace {

TEST(MetricsTest, ArgMaxTakesTheFirstOfTies) {
  const float logits[] = {1, 3, 3, 0};
  EXPECT_EQ(ArgMax(logits, 4), 1);
}

TEST(MetricsTest, TopKRanksTiesByClassIndex) {
  const float logits[] = {5, 1, 5, 2, 5, 0, 4};
  EXPECT_TRUE(InTopK(logits, 7, 0, 1));
  EXPECT_FALSE(InTopK(logits, 7, 2, 1));  // tied with class 0, ranks second
  EXPECT_TRUE(InTopK(logits, 7, 4, 3));
  EXPECT_FALSE(InTopK(logits, 7, 3, 4));  // 5, 5, 5, 4 rank above it
  EXPECT_TRUE(InTopK(logits, 7, 3, 5));
  EXPECT_FALSE(InTopK(logits, 7, 9, 5));  // not a class
}

// Six classes, four images, worked out by hand:
//   image 0: label 2, logits best-first 2        -> top-1 and top-5
//   image 1: label 0, label ranks 5th             -> top-5 only
//   image 2: label 5, label ranks last (6th)      -> neither
//   image 3: unlabelled                           -> not counted
TEST(MetricsTest, AccuracyByHand) {
  const std::vector<float> logits = {
      0, 1, 9, 2, 3, 4,  //
      1, 9, 8, 7, 6, 0,  //
      5, 4, 3, 2, 1, 0,  //
      1, 2, 3, 4, 5, 6,  //
  };
  const std::vector<int32_t> labels = {2, 0, 5, kNoLabel};
  AccuracyMeter meter;
  meter.Add(logits.data(), 2, 6, labels.data());
  meter.Add(logits.data() + 12, 2, 6, labels.data() + 2);
  EXPECT_EQ(meter.count(), 3);
  EXPECT_DOUBLE_EQ(meter.top1(), 100.0 / 3);
  EXPECT_DOUBLE_EQ(meter.top5(), 200.0 / 3);
}

// Regression: NaN compares false with everything, so a NaN row used to rank its label first
// and an all-NaN model scored top-1 100.
TEST(MetricsTest, NonFiniteLogitsAreNeverRightAndAreCounted) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> all_nan = {nan, nan, nan};
  const std::vector<float> one_nan = {0, 5, nan};
  EXPECT_FALSE(InTopK(all_nan.data(), 3, 0, 1));
  EXPECT_FALSE(InTopK(all_nan.data(), 3, 2, 3));
  EXPECT_FALSE(InTopK(one_nan.data(), 3, 1, 1));
  const std::vector<float> logits = {nan, nan, nan, /**/ 0, inf, 1, /**/ 3, 1, 2};
  const std::vector<int32_t> labels = {0, 1, 0};
  AccuracyMeter meter;
  meter.Add(logits.data(), 3, 3, labels.data());
  EXPECT_EQ(meter.non_finite_rows(), 2);
  EXPECT_DOUBLE_EQ(meter.top1(), 200.0 / 3);  // +Inf still ranks highest; the NaN row is wrong
  const absl::Status status = RequireFiniteLogits(meter, "fp32");
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(status.message().find("fp32 model produced NaN or Inf logits for 2 images"), absl::string_view::npos)
      << status;
  AccuracyMeter finite;
  finite.Add(logits.data() + 6, 1, 3, labels.data());
  EXPECT_TRUE(RequireFiniteLogits(finite, "int8").ok());
}

TEST(MetricsTest, EmptyMetersReportZero) {
  EXPECT_EQ(AccuracyMeter().top1(), 0);
  EXPECT_EQ(AgreementMeter().percent(), 0);
}

TEST(MetricsTest, AgreementComparesTopOneClasses) {
  const std::vector<float> fp32 = {0, 9, 1, /**/ 7, 0, 0, /**/ 0, 0, 1, /**/ 2, 2, 0};
  const std::vector<float> int8 = {0, 8, 2, /**/ 0, 7, 0, /**/ 0, 1, 2, /**/ 3, 3, 0};
  AgreementMeter meter;
  meter.Add(fp32.data(), int8.data(), 4, 3);
  // Argmax pairs: (1,1) (0,1) (2,2) (0,0): three of four agree.
  EXPECT_EQ(meter.count(), 4);
  EXPECT_DOUBLE_EQ(meter.percent(), 75.0);
}

}  // namespace
}  // namespace ptq::core
