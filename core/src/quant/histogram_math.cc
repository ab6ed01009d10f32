#include "quant/histogram_math.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace ptq::core {

double AbsHistogram::total() const { return std::accumulate(counts.begin(), counts.end(), 0.0); }

AbsHistogram ResampleToWiderRange(const AbsHistogram& old, double new_max, int upsample_bins) {
  const size_t bins = old.counts.size();
  const double fine_width = old.range / (static_cast<double>(bins) * upsample_bins);
  const size_t merge = static_cast<size_t>(std::ceil(new_max / (bins * fine_width)));
  AbsHistogram wider;
  wider.range = bins * fine_width * merge;
  wider.counts.assign(bins, 0.0);
  // Fine bin f holds old.counts[f / upsample_bins] / upsample_bins and lands in new bin
  // f / merge. Summed per (old bin, new bin) overlap rather than per fine bin: this runs for
  // every observed activation whose range grows, and the per-fine-bin loop (bins x 64
  // divisions) was 5% of a MobileNetV3-small calibration.
  const size_t upsample = static_cast<size_t>(upsample_bins);
  for (size_t i = 0; i < bins; ++i) {
    if (old.counts[i] == 0) continue;
    const double per_fine_bin = old.counts[i] / upsample_bins;
    const size_t first = i * upsample, end = first + upsample;
    for (size_t j = first / merge; j * merge < end; ++j) {
      const size_t overlap = std::min(end, (j + 1) * merge) - std::max(first, j * merge);
      wider.counts[j] += per_fine_bin * static_cast<double>(overlap);
    }
  }
  return wider;
}

double HistPercentThreshold(const AbsHistogram& histogram, double percent) {
  const double total = histogram.total();
  double cumulative = 0;
  for (size_t i = 0; i < histogram.counts.size(); ++i) {
    cumulative += histogram.counts[i];
    if (cumulative >= percent * total) return (i + 0.5) * histogram.bin_width();
  }
  return histogram.range;
}

double PercentileThreshold(const AbsHistogram& histogram, double percentile) {
  const double target = percentile / 100.0 * histogram.total();
  double cumulative = 0;
  for (size_t i = 0; i < histogram.counts.size(); ++i) {
    const double count = histogram.counts[i];
    if (count > 0 && cumulative + count >= target) {
      return (i + (target - cumulative) / count) * histogram.bin_width();
    }
    cumulative += count;
  }
  return histogram.range;
}

double KlDivergence(const std::vector<double>& p, const std::vector<double>& q) {
  const double p_sum = std::accumulate(p.begin(), p.end(), 0.0);
  const double q_sum = std::accumulate(q.begin(), q.end(), 0.0);
  double divergence = 0;
  for (size_t j = 0; j < p.size(); ++j) {
    if (p[j] == 0) continue;
    // q[j] > 0 wherever p[j] > 0: Q spreads its counts over exactly P's non-empty bins.
    divergence += (p[j] / p_sum) * std::log((p[j] / p_sum) / (q[j] / q_sum));
  }
  return divergence;
}

namespace {

// Q for one candidate cut: the reference bins merged into `levels` groups (the last group takes
// the remainder) and expanded back over the group's non-empty bins.
std::vector<double> QuantizedDistribution(const std::vector<double>& reference, int levels) {
  const size_t cut = reference.size();
  const size_t per_group = cut / static_cast<size_t>(levels);
  std::vector<double> expanded(cut, 0.0);
  for (int group = 0; group < levels; ++group) {
    const size_t begin = group * per_group;
    const size_t end = group == levels - 1 ? cut : begin + per_group;
    double sum = 0;
    size_t non_empty = 0;
    for (size_t j = begin; j < end; ++j) {
      sum += reference[j];
      non_empty += reference[j] != 0;
    }
    for (size_t j = begin; j < end; ++j) {
      expanded[j] = reference[j] == 0 ? 0 : sum / non_empty;
    }
  }
  return expanded;
}

}  // namespace

int ClampSpikeBin(const AbsHistogram& histogram) {
  const std::vector<double>& counts = histogram.counts;
  int top = static_cast<int>(counts.size()) - 1;
  while (top >= 0 && counts[static_cast<size_t>(top)] == 0) --top;
  if (top < static_cast<int>(counts.size()) - 2) return -1;
  const double below = std::accumulate(counts.begin() + std::max(0, top - kClampSpikeWindow), counts.begin() + top, 0.0);
  const double spike = counts[static_cast<size_t>(top)];
  return spike >= kClampSpikeFraction * histogram.total() && spike > below ? top : -1;
}

double KlThreshold(const AbsHistogram& histogram, int levels, int start_bin) {
  const std::vector<double>& counts = histogram.counts;
  const int bins = static_cast<int>(counts.size());
  if (const int spike = ClampSpikeBin(histogram); spike >= 0) return (spike + 1) * histogram.bin_width();
  const int start = std::max(levels, start_bin < 0 ? (bins - 1) / 2 : start_bin);
  double best_divergence = std::numeric_limits<double>::infinity();
  int best_cut = 0;
  for (int cut = start; cut < bins; ++cut) {
    if (counts[static_cast<size_t>(cut - 1)] == 0) continue;
    // The candidate distribution Q is built from the unfolded counts, as PaddleSlim does.
    const std::vector<double> clipped(counts.begin(), counts.begin() + cut);
    std::vector<double> reference = clipped;
    reference.back() += std::accumulate(counts.begin() + cut, counts.end(), 0.0);
    const double divergence = KlDivergence(reference, QuantizedDistribution(clipped, levels));
    if (divergence < best_divergence) {
      best_divergence = divergence;
      best_cut = cut;
    }
  }
  if (best_cut == 0) {
    // Every candidate's last bin was empty: fall back to the last non-empty bin at or below
    // the start, as PaddleSlim does.
    best_cut = std::min(start, bins - 1);
    while (best_cut > 0 && counts[static_cast<size_t>(best_cut)] == 0) --best_cut;
  }
  return (best_cut + 0.5) * histogram.bin_width();
}

double MseThreshold(const AbsHistogram& histogram, int levels) {
  const size_t bins = histogram.counts.size();
  const double width = histogram.bin_width();
  double best_error = std::numeric_limits<double>::infinity();
  double best_threshold = histogram.range;
  for (size_t edge = 1; edge <= bins; ++edge) {
    const double threshold = edge * width;
    const double step = threshold / levels;
    double error = 0;
    for (size_t j = 0; j < bins; ++j) {
      if (histogram.counts[j] == 0) continue;
      const double center = (j + 0.5) * width;
      const double quantized = center >= threshold ? threshold : std::round(center / step) * step;
      error += histogram.counts[j] * (center - quantized) * (center - quantized);
    }
    if (error < best_error) {
      best_error = error;
      best_threshold = threshold;
    }
  }
  return best_threshold;
}

}  // namespace ptq::core
