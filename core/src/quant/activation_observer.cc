#include "quant/activation_observer.h"

#include <ATen/Parallel.h>

#include <cmath>


namespace ptq::core {
namespace {

absl::Status NotObserved() {
  return absl::FailedPreconditionError("no calibration batch reached this activation");
}

// max |x| over a batch and, when range > 0, the histogram of the |x| <= range.
struct Scan {
  double absmax = 0;
  std::vector<double> counts;
};

// Device tensors: ATen's reductions.
Scan ScanWithAten(const at::Tensor& values, int bins, double range) {
  const at::Tensor absolute = values.abs();
  Scan scan;
  scan.absmax = absolute.max().item<double>();
  if (range > 0) {
    const at::Tensor counts = at::histc(absolute, bins, 0, range).to(at::kCPU, at::kDouble).contiguous();
    scan.counts.assign(counts.data_ptr<double>(), counts.data_ptr<double>() + bins);
  }
  return scan;
}

// The scan's inner loop over data[begin, end): returns max |x| and, when `counts` is given,
// adds each |x| to bin min(|x| * scale, last_bin). A plain function with everything in
// arguments, so the compiler keeps the running maximum in a register (inside the parallel
// lambda it was spilled to the stack, doubling the cost per element).
float AbsMaxAndCount(const float* data, int64_t begin, int64_t end, float scale, size_t last_bin,
                     int64_t* counts) {
  float running_max = 0.0f;
  if (counts == nullptr) {
    for (int64_t i = begin; i < end; ++i) {
      const float magnitude = std::fabs(data[i]);
      running_max = magnitude > running_max ? magnitude : running_max;
    }
    return running_max;
  }
  for (int64_t i = begin; i < end; ++i) {
    const float magnitude = std::fabs(data[i]);
    running_max = magnitude > running_max ? magnitude : running_max;
    const size_t bin = static_cast<size_t>(magnitude * scale);
    ++counts[bin < last_bin ? bin : last_bin];
  }
  return running_max;
}

// CPU float tensors: one parallel pass computing both, with per-thread counters. This is the
// calibration hot path: every observed activation of every batch goes through it, so the loop
// is branch-free (post-ReLU data is half zeros, which made a zero test mispredict half the
// time). Values above `range` land in the last bin; the caller discards the counts whenever
// the batch max exceeds the range and rescans over the widened one.
Scan ScanCpu(const at::Tensor& values, int bins, double range) {
  constexpr int64_t kGrain = 1 << 15;
  const at::Tensor contiguous = values.contiguous();
  const float* data = contiguous.data_ptr<float>();
  const size_t threads = static_cast<size_t>(at::get_num_threads());
  const size_t last_bin = static_cast<size_t>(bins) - 1;
  const float scale = range > 0 ? static_cast<float>(bins / range) : 0.0f;
  std::vector<float> partial_max(threads, 0.0f);
  std::vector<std::vector<int64_t>> partial_counts(threads);
  at::parallel_for(0, contiguous.numel(), kGrain, [&](int64_t begin, int64_t end) {
    const size_t thread = static_cast<size_t>(at::get_thread_num());
    int64_t* counts = nullptr;
    if (range > 0) {
      if (partial_counts[thread].empty()) partial_counts[thread].assign(last_bin + 1, 0);
      counts = partial_counts[thread].data();
    }
    const float chunk_max = AbsMaxAndCount(data, begin, end, scale, last_bin, counts);
    partial_max[thread] = std::max(partial_max[thread], chunk_max);
  });
  Scan scan;
  for (float value : partial_max) scan.absmax = std::max(scan.absmax, static_cast<double>(value));
  if (range > 0) {
    scan.counts.assign(last_bin + 1, 0.0);
    for (const std::vector<int64_t>& counts : partial_counts) {
      for (size_t b = 0; b < counts.size(); ++b) scan.counts[b] += static_cast<double>(counts[b]);
    }
  }
  return scan;
}

Scan ScanBatch(const at::Tensor& values, int bins, double range) {
  if (values.device().is_cpu() && values.scalar_type() == at::kFloat) return ScanCpu(values, bins, range);
  return ScanWithAten(values, bins, range);
}

}  // namespace

std::unique_ptr<ActivationObserver> MakeActivationObserver(const ActivationQuantizerSpec& spec) {
  if (spec.name == "AbsmaxQuantizer") return std::make_unique<AbsmaxObserver>();
  return std::make_unique<HistogramObserver>(HistogramObserver::MethodOf(spec.name), spec);
}

HistogramObserver::Method HistogramObserver::MethodOf(const std::string& quantizer) {
  if (quantizer == "HistQuantizer") return Method::kHistPercent;
  if (quantizer == "KLQuantizer") return Method::kKl;
  if (quantizer == "MSEQuantizer") return Method::kMse;
  if (quantizer == "AbsmaxQuantizer") return Method::kAbsmax;
  return Method::kPercentile;
}

void AbsmaxObserver::Observe(const at::Tensor& values) {
  if (values.numel() == 0) return;
  observed_ = true;
  // The histogram observers' scan with no range: max |x| only, without an |x| copy.
  absmax_ = std::max(absmax_, ScanBatch(values, /*bins=*/1, /*range=*/0).absmax);
}

absl::StatusOr<double> AbsmaxObserver::ComputeThreshold(int /*levels*/) const {
  if (!observed_) return NotObserved();
  return absmax_;
}

HistogramObserver::HistogramObserver(Method method, const ActivationQuantizerSpec& spec)
    : method_(method), spec_(spec) {}

void HistogramObserver::Observe(const at::Tensor& values) {
  if (values.numel() == 0) return;
  observed_ = true;
  // Usually one pass: the histogram over the current range, and the batch's max. A batch that
  // exceeds the range (and the first batch) needs a second pass over the widened range.
  Scan scan = ScanBatch(values, spec_.bins, histogram_.range);
  if (!std::isfinite(scan.absmax) || scan.absmax == 0) return;  // nothing to place (PaddleSlim too)
  absmax_ = std::max(absmax_, scan.absmax);
  if (histogram_.range == 0) {
    histogram_.range = scan.absmax;
    histogram_.counts = ScanBatch(values, spec_.bins, histogram_.range).counts;
    return;
  }
  if (scan.absmax > histogram_.range) {
    histogram_ = ResampleToWiderRange(histogram_, scan.absmax, spec_.upsample_bins);
    scan = ScanBatch(values, spec_.bins, histogram_.range);
  }
  for (size_t i = 0; i < scan.counts.size(); ++i) histogram_.counts[i] += scan.counts[i];
}

absl::StatusOr<double> HistogramObserver::ComputeThreshold(int levels) const {
  return ComputeThreshold(method_, levels);
}

absl::StatusOr<double> HistogramObserver::ComputeThreshold(Method method, int levels) const {
  if (!observed_) return NotObserved();
  if (histogram_.range == 0) return 0.0;  // only zeros were seen
  switch (method) {
    case Method::kAbsmax: return absmax_;
    case Method::kHistPercent: return HistPercentThreshold(histogram_, spec_.hist_percent);
    case Method::kKl: return KlThreshold(histogram_, levels);
    case Method::kMse: return MseThreshold(histogram_, levels);
    case Method::kPercentile: return PercentileThreshold(histogram_, spec_.percentile);
  }
  return histogram_.range;
}

}  // namespace ptq::core
