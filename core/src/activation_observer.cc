#include "activation_observer.h"

#include "absl/strings/str_cat.h"

namespace ptq::core {
namespace {

constexpr int kMinBins = 128;

absl::Status NotObserved() {
  return absl::FailedPreconditionError("no calibration batch reached this activation");
}

// Histogram of |values| (already absolute, on any device) over [0, range], on the CPU.
std::vector<double> HistogramOf(const at::Tensor& absolute, int bins, double range) {
  const at::Tensor counts = at::histc(absolute, bins, 0, range).to(at::kCPU, at::kDouble).contiguous();
  return std::vector<double>(counts.data_ptr<double>(), counts.data_ptr<double>() + bins);
}

}  // namespace

absl::Status ValidateActivationQuantizer(const ActivationQuantizerSpec& spec) {
  const std::string& name = spec.name;
  if (name != "AbsmaxQuantizer" && name != "HistQuantizer" && name != "KLQuantizer" &&
      name != "MSEQuantizer" && name != "PercentileQuantizer") {
    return absl::InvalidArgumentError(absl::StrCat(
        "ptq.activation_quantizer: unknown quantizer '", name,
        "', expected AbsmaxQuantizer, HistQuantizer, KLQuantizer, MSEQuantizer or PercentileQuantizer"));
  }
  if (spec.bins < kMinBins) {
    return absl::InvalidArgumentError(
        absl::StrCat("ptq.bins must be at least ", kMinBins, ", got ", spec.bins));
  }
  if (spec.upsample_bins < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("ptq.upsample_bins must be at least 1, got ", spec.upsample_bins));
  }
  if (!(spec.hist_percent > 0 && spec.hist_percent <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ptq.hist_percent must be in (0, 1], got ", spec.hist_percent));
  }
  if (!(spec.percentile > 0 && spec.percentile <= 100)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ptq.percentile must be in (0, 100], got ", spec.percentile));
  }
  return absl::OkStatus();
}

std::unique_ptr<ActivationObserver> MakeActivationObserver(const ActivationQuantizerSpec& spec) {
  using Method = HistogramObserver::Method;
  if (spec.name == "AbsmaxQuantizer") return std::make_unique<AbsmaxObserver>();
  if (spec.name == "HistQuantizer") return std::make_unique<HistogramObserver>(Method::kHistPercent, spec);
  if (spec.name == "MSEQuantizer") return std::make_unique<HistogramObserver>(Method::kMse, spec);
  if (spec.name == "PercentileQuantizer") {
    return std::make_unique<HistogramObserver>(Method::kPercentile, spec);
  }
  return std::make_unique<HistogramObserver>(Method::kKl, spec);
}

void AbsmaxObserver::Observe(const at::Tensor& values) {
  if (values.numel() == 0) return;
  observed_ = true;
  absmax_ = std::max(absmax_, values.abs().max().item<double>());
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
  const at::Tensor absolute = values.abs();
  const double batch_max = absolute.max().item<double>();
  if (!std::isfinite(batch_max) || batch_max == 0) return;  // nothing to place (PaddleSlim too)
  if (histogram_.range == 0) {
    histogram_.range = batch_max;
    histogram_.counts = HistogramOf(absolute, spec_.bins, batch_max);
    return;
  }
  if (batch_max > histogram_.range) {
    histogram_ = ResampleToWiderRange(histogram_, batch_max, spec_.upsample_bins);
  }
  const std::vector<double> batch = HistogramOf(absolute, spec_.bins, histogram_.range);
  for (size_t i = 0; i < batch.size(); ++i) histogram_.counts[i] += batch[i];
}

absl::StatusOr<double> HistogramObserver::ComputeThreshold(int levels) const {
  if (!observed_) return NotObserved();
  if (histogram_.range == 0) return 0.0;  // only zeros were seen
  switch (method_) {
    case Method::kHistPercent: return HistPercentThreshold(histogram_, spec_.hist_percent);
    case Method::kKl: return KlThreshold(histogram_, levels);
    case Method::kMse: return MseThreshold(histogram_, levels);
    case Method::kPercentile: return PercentileThreshold(histogram_, spec_.percentile);
  }
  return histogram_.range;
}

}  // namespace ptq::core
