#include "quant/histogram_math.h"

#include <gtest/gtest.h>

#include <cmath>

namespace ptq::core {
namespace {

AbsHistogram Histogram(std::vector<double> counts, double range) {
  AbsHistogram histogram;
  histogram.counts = std::move(counts);
  histogram.range = range;
  return histogram;
}

// Old [4, 2] over [0, 2], upsampled x2 into fine bins of 0.5: [2, 2, 1, 1]. New max 3 needs
// k = ceil(3 / (2 * 0.5)) = 3 fine bins per new bin: range 3, bins [2+2+1, 1+0+0] = [5, 1].
TEST(HistogramMathTest, ResampleSpreadsCountsOverTheWiderRange) {
  const AbsHistogram wider = ResampleToWiderRange(Histogram({4, 2}, 2), 3, 2);
  EXPECT_DOUBLE_EQ(wider.range, 3);
  EXPECT_EQ(wider.counts, (std::vector<double>{5, 1}));
}

// Old [4, 0, 0, 4] over [0, 4], fine bins of 0.5; new max 10: k = ceil(10 / 2) = 5, range 10.
// Fine bins [2, 2, 0, 0, 0, 0, 2, 2] -> new [2+2+0+0+0, 0+2+2, 0, 0] = [4, 4, 0, 0].
TEST(HistogramMathTest, ResampleRoundsTheRangeUpToWholeFineBins) {
  const AbsHistogram wider = ResampleToWiderRange(Histogram({4, 0, 0, 4}, 4), 10, 2);
  EXPECT_DOUBLE_EQ(wider.range, 10);
  EXPECT_EQ(wider.counts, (std::vector<double>{4, 4, 0, 0}));
  EXPECT_DOUBLE_EQ(wider.total(), 8);
}

// [5, 3, 1, 1] over [0, 4]: cumulative fractions 0.5, 0.8, 0.9, 1.0.
TEST(HistogramMathTest, HistPercentTakesTheCenterOfTheFirstBinReachingIt) {
  const AbsHistogram histogram = Histogram({5, 3, 1, 1}, 4);
  EXPECT_DOUBLE_EQ(HistPercentThreshold(histogram, 0.8), 1.5);
  EXPECT_DOUBLE_EQ(HistPercentThreshold(histogram, 0.85), 2.5);
  EXPECT_DOUBLE_EQ(HistPercentThreshold(histogram, 1.0), 3.5);
}

// Same histogram: the 70th percentile is 7 of 10 counts, 2 into bin 1's 3: 1 + 2/3.
TEST(HistogramMathTest, PercentileInterpolatesInsideTheBin) {
  const AbsHistogram histogram = Histogram({5, 3, 1, 1}, 4);
  EXPECT_NEAR(PercentileThreshold(histogram, 70), 1 + 2.0 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(PercentileThreshold(histogram, 85), 2.5);
}

TEST(HistogramMathTest, KlDivergenceByHand) {
  // P = [3,1,2,4]/10, Q = [2,2,2,2]/8:
  // 0.3 ln(1.2) + 0.1 ln(0.4) + 0.2 ln(0.8) + 0.4 ln(1.6) = 0.10644014
  EXPECT_NEAR(KlDivergence({3, 1, 2, 4}, {2, 2, 2, 2}), 0.1064401, 1e-6);
  // Bins where P is empty add nothing: 2 * 0.5 * ln(0.5 / (1/7)) = ln 3.5.
  EXPECT_NEAR(KlDivergence({1, 0, 1}, {1, 5, 1}), std::log(3.5), 1e-12);
}

// [3, 1, 2, 2, 1, 0, 1, 0] over [0, 8], 2 levels, cuts 4..7:
//   cut 4: P = [3,1,2,2+2], Q = [2,2 | 2,2]             KL = 0.10644
//   cut 5: P = [3,1,2,2,1+1], Q = [2,2 | 5/3,5/3,5/3]   KL = 0.05636  <- smallest
//   cut 6: last kept bin empty, skipped
//   cut 7: P = [3,1,2,2,1,0,1], Q = [2,2,2 | 4/3,4/3,0,4/3]  KL = 0.07588
// Threshold (5 + 0.5) * 1.
TEST(HistogramMathTest, KlSearchOnASmallHistogramByHand) {
  const AbsHistogram histogram = Histogram({3, 1, 2, 2, 1, 0, 1, 0}, 8);
  EXPECT_DOUBLE_EQ(KlThreshold(histogram, /*levels=*/2, /*start_bin=*/4), 5.5);
  EXPECT_NEAR(KlDivergence({3, 1, 2, 2, 2}, {2, 2, 5.0 / 3, 5.0 / 3, 5.0 / 3}), 0.0563573, 1e-6);
  EXPECT_NEAR(KlDivergence({3, 1, 2, 2, 1, 0, 1}, {2, 2, 2, 4.0 / 3, 4.0 / 3, 0, 4.0 / 3}), 0.0758819, 1e-6);
}

// ReLU6 outputs: 500 bins of 100 below 3, and 1000 values saturated at 6 in the last of 1024
// bins over [0, 6]. Clipping the spike would move 2% of the values by up to 3; the threshold is
// the spike's upper edge, 1024 * 6 / 1024.
TEST(HistogramMathTest, KlNeverCutsAClampSpike) {
  std::vector<double> counts(1024, 0);
  std::fill(counts.begin(), counts.begin() + 500, 100.0);
  counts[1023] = 1000;
  const AbsHistogram saturated = Histogram(counts, 6);
  EXPECT_EQ(ClampSpikeBin(saturated), 1023);
  EXPECT_DOUBLE_EQ(KlThreshold(saturated, 128), 6.0);
  // Without the spike PaddleSlim's search cuts the same histogram at its start bin or above;
  // with it folded into bin 511 (a cut there) KL sees nearly nothing wrong.
  counts[1023] = 0;
  EXPECT_LT(KlThreshold(Histogram(counts, 6), 128), 3.1);
}

TEST(HistogramMathTest, ATailIsNotAClampSpike) {
  // The hand example above: the last non-empty bin (1) is not above the 8 bins below it (9).
  EXPECT_EQ(ClampSpikeBin(Histogram({3, 1, 2, 2, 1, 0, 1, 0}, 8)), -1);
  // Above its neighbours, but under kClampSpikeFraction (0.1%) of 1e6 values.
  std::vector<double> counts(1024, 0);
  counts[0] = 1e6;
  counts[1023] = 1000;  // 1000 / 1001000 < 0.1%
  EXPECT_EQ(ClampSpikeBin(Histogram(counts, 1)), -1);
  counts[1023] = 1002;  // 1002 / 1001002 > 0.1%
  EXPECT_EQ(ClampSpikeBin(Histogram(counts, 1)), 1023);
  // Far below the top of the range: an isolated group, not values held at the range's end.
  counts[1023] = 0;
  counts[1000] = 1e6;
  EXPECT_EQ(ClampSpikeBin(Histogram(counts, 1)), -1);
}

TEST(HistogramMathTest, KlDefaultsToPaddleSlimsStartBin) {
  // 1024 bins with mass only in the lowest bins: every cut from (1024 - 1) / 2 = 511 has an
  // empty last bin, so KL falls back to the last non-empty bin at or below the start.
  std::vector<double> counts(1024, 0);
  counts[0] = 100;
  counts[10] = 5;
  EXPECT_DOUBLE_EQ(KlThreshold(Histogram(counts, 1024), 127), 10.5);
}

// [10, 0, 0, 1] over [0, 4] with centers 0.5 and 3.5, one level (step = T):
//   T=1: 10 * 0.5^2 (0.5 rounds up to 1) + (3.5 - 1)^2 = 8.75
//   T=2: 10 * 0.25 + 1.5^2 = 4.75;  T=3: 2.5 + 0.25 = 2.75;  T=4: 2.5 + (3.5 - 4)^2 = 2.75
// The first minimum wins: T = 3.
TEST(HistogramMathTest, MseTakesTheEdgeWithTheLeastSquaredError) {
  EXPECT_DOUBLE_EQ(MseThreshold(Histogram({10, 0, 0, 1}, 4), 1), 3);
}

}  // namespace
}  // namespace ptq::core
