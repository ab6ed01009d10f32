#ifndef PTQ_CORE_SRC_QUANT_ACTIVATION_OBSERVER_H_
#define PTQ_CORE_SRC_QUANT_ACTIVATION_OBSERVER_H_

#include <ATen/ATen.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "quant/histogram_math.h"
#include "quant/quantizer_specs.h"

namespace ptq::core {

// Observes one activation over the calibration batches, then turns what it saw into a
// threshold T on |x| (the value that maps to the largest quantized level).
class ActivationObserver {
 public:
  virtual ~ActivationObserver() = default;
  virtual void Observe(const at::Tensor& values) = 0;
  // `levels`: quantized steps covering [0, T] (127 for signed int8, 255 for non-negative
  // uint8). FAILED_PRECONDITION when no batch was observed.
  virtual absl::StatusOr<double> ComputeThreshold(int levels) const = 0;
};

// The spec must have passed ValidateActivationQuantizer. "auto" gets a HistogramObserver,
// whose histogram every quantizer can read.
std::unique_ptr<ActivationObserver> MakeActivationObserver(const ActivationQuantizerSpec& spec);

// Keeps max |x|.
class AbsmaxObserver : public ActivationObserver {
 public:
  void Observe(const at::Tensor& values) override;
  absl::StatusOr<double> ComputeThreshold(int levels) const override;

 private:
  double absmax_ = 0;
  bool observed_ = false;
};

// Keeps a histogram of |x| over [0, running max], widened with ResampleToWiderRange when a
// batch exceeds it, and picks the threshold with one of the histogram methods.
class HistogramObserver : public ActivationObserver {
 public:
  enum class Method { kHistPercent, kKl, kMse, kPercentile, kAbsmax };
  HistogramObserver(Method method, const ActivationQuantizerSpec& spec);

  void Observe(const at::Tensor& values) override;
  absl::StatusOr<double> ComputeThreshold(int levels) const override;
  // The threshold another quantizer would pick from the same histogram (kAbsmax: max |x|).
  absl::StatusOr<double> ComputeThreshold(Method method, int levels) const;
  const AbsHistogram& histogram() const { return histogram_; }

  // The method of a quantizer name; kPercentile for names that are not one.
  static Method MethodOf(const std::string& quantizer);

 private:
  Method method_;
  ActivationQuantizerSpec spec_;
  AbsHistogram histogram_;
  double absmax_ = 0;
  bool observed_ = false;
};

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_QUANT_ACTIVATION_OBSERVER_H_
