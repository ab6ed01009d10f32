#ifndef PTQ_CORE_SRC_QUANT_HISTOGRAM_MATH_H_
#define PTQ_CORE_SRC_QUANT_HISTOGRAM_MATH_H_

#include <vector>

namespace ptq::core {

// A histogram of |x| over [0, range] in equal bins.
struct AbsHistogram {
  std::vector<double> counts;
  double range = 0;

  double bin_width() const { return counts.empty() ? 0 : range / counts.size(); }
  double total() const;
};

// PaddleSlim's (and PyTorch's) rule for widening a histogram when a batch exceeds its range:
//   1. split each bin into `upsample_bins` fine bins of width range / (bins * upsample_bins),
//      spreading its count evenly (the box filter);
//   2. pick the new range as the smallest whole number of fine bins per new bin that covers
//      `new_max`: k = ceil(new_max / (bins * fine_width)), new range = bins * fine_width * k;
//   3. sum each run of k fine bins into one new bin.
// Counts are preserved. Requires new_max > old.range > 0.
AbsHistogram ResampleToWiderRange(const AbsHistogram& old, double new_max, int upsample_bins);

// HistQuantizer: the center of the first bin where the cumulative fraction reaches `percent`.
double HistPercentThreshold(const AbsHistogram& histogram, double percent);

// PercentileQuantizer: the `percentile` (0..100] of |x|, interpolated linearly inside its bin.
double PercentileThreshold(const AbsHistogram& histogram, double percentile);

// KLQuantizer (PaddleSlim's cal_kl_threshold, after TensorRT's entropy calibration). For each
// candidate cut i from `start_bin` to bins - 1:
//   P = the first i bins, with every count beyond the cut folded into bin i - 1;
//   Q = the first i bins merged into `levels` groups and expanded back, each group's count
//       spread evenly over its non-empty bins;
//   KL(P || Q) = sum P[j] * log(P[j] / Q[j]) over normalized P, Q.
// The cut with the smallest KL wins (the first on ties); the threshold is (cut + 0.5) * width,
// PaddleSlim's formula. Cuts whose last kept bin is empty are skipped. `start_bin` < 0 means
// PaddleSlim's (bins - 1) / 2; cuts below `levels` are never tried.
// One departure from PaddleSlim: when the top of the histogram is a clamp's spike (see
// ClampSpikeBin), no cut is tried and the threshold is that bin's upper edge. KL folds what a
// cut clips into the last kept bin, so clipping a spike of saturated values (ReLU6 outputs at
// 6) costs it almost nothing, while it moves every one of them by the whole clipped distance.
double KlThreshold(const AbsHistogram& histogram, int levels, int start_bin = -1);

// The index of the last non-empty bin when it is a spike of values the model clamped: it is one
// of the top two bins (the range is the largest value seen, so a clamp the first batch reaches
// lands in the last bin), holds at least kClampSpikeFraction of all counts, and more than the
// kClampSpikeWindow bins below it together. -1 otherwise.
inline constexpr double kClampSpikeFraction = 1e-3;
inline constexpr int kClampSpikeWindow = 8;
int ClampSpikeBin(const AbsHistogram& histogram);

// KL divergence sum p log(p / q) of two unnormalized distributions, each normalized by its
// own sum; terms with p = 0 contribute nothing.
double KlDivergence(const std::vector<double>& p, const std::vector<double>& q);

// MSEQuantizer: the bin edge T minimizing the expected squared quantization error of the
// histogram's bin centers c under uniform quantization to `levels` steps on [0, T]:
// error(c) = (c - round(c / s) * s)^2 for c <= T, (c - T)^2 beyond, with s = T / levels.
double MseThreshold(const AbsHistogram& histogram, int levels);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_QUANT_HISTOGRAM_MATH_H_
