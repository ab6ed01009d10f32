#include "quant/activation_observer.h"

#include <gtest/gtest.h>

namespace ptq::core {
namespace {

ActivationQuantizerSpec Spec(const std::string& name, int bins = 128) {
  ActivationQuantizerSpec spec;
  spec.name = name;
  spec.bins = bins;
  return spec;
}

TEST(ActivationObserverTest, NothingObservedIsAFailedPrecondition) {
  for (const char* name : {"AbsmaxQuantizer", "KLQuantizer", "MSEQuantizer"}) {
    EXPECT_TRUE(absl::IsFailedPrecondition(MakeActivationObserver(Spec(name))->ComputeThreshold(127).status()))
        << name;
  }
}

TEST(ActivationObserverTest, AbsmaxKeepsTheLargestMagnitude) {
  auto observer = MakeActivationObserver(Spec("AbsmaxQuantizer"));
  observer->Observe(at::tensor({0.5f, -2.5f, 1.0f}));
  observer->Observe(at::tensor({2.0f}));
  EXPECT_DOUBLE_EQ(*observer->ComputeThreshold(127), 2.5);
}

TEST(ActivationObserverTest, AllZerosGiveAZeroThreshold) {
  auto observer = MakeActivationObserver(Spec("HistQuantizer"));
  observer->Observe(at::zeros({4, 4}));
  EXPECT_DOUBLE_EQ(*observer->ComputeThreshold(127), 0.0);
}

// "auto" reads one histogram the way each quantizer would: Absmax is the exact max |x|, not the
// widened histogram's range; the others equal their own observers on the same data.
TEST(ActivationObserverTest, AutoReadsTheHistogramAsEveryQuantizerWould) {
  auto observer = MakeActivationObserver(Spec("auto"));
  const at::Tensor first = at::linspace(-1.0, 1.0, 1000);
  const at::Tensor second = at::linspace(-3.3, 0.0, 1000);
  observer->Observe(first);
  observer->Observe(second);
  const auto& histogram = static_cast<const HistogramObserver&>(*observer);
  EXPECT_GT(histogram.histogram().range, 3.3);  // widened in whole fine bins past the max
  EXPECT_NEAR(*histogram.ComputeThreshold(HistogramObserver::Method::kAbsmax, 127), 3.3, 1e-6);
  for (const char* name : {"HistQuantizer", "KLQuantizer", "MSEQuantizer", "PercentileQuantizer"}) {
    auto own = MakeActivationObserver(Spec(name));
    own->Observe(first);
    own->Observe(second);
    EXPECT_DOUBLE_EQ(*histogram.ComputeThreshold(HistogramObserver::MethodOf(name), 127), *own->ComputeThreshold(127))
        << name;
  }
  EXPECT_EQ(HistogramObserver::MethodOf("auto"), HistogramObserver::Method::kPercentile);
  EXPECT_DOUBLE_EQ(*observer->ComputeThreshold(127),
                   *histogram.ComputeThreshold(HistogramObserver::Method::kPercentile, 127));
}

// Two batches: the second one's larger max widens the histogram by PaddleSlim's rule, and the
// counts of both land in it.
TEST(ActivationObserverTest, HistogramWidensAndAccumulates) {
  ActivationQuantizerSpec spec = Spec("HistQuantizer");
  spec.upsample_bins = 4;
  HistogramObserver observer(HistogramObserver::Method::kHistPercent, spec);
  observer.Observe(at::tensor({-1.0f, 0.25f, 0.5f, 1.0f}));  // range 1
  EXPECT_DOUBLE_EQ(observer.histogram().range, 1.0);
  EXPECT_DOUBLE_EQ(observer.histogram().total(), 4);
  observer.Observe(at::tensor({3.0f, -0.1f}));
  // fine width 1 / (128 * 4); k = ceil(3 / (128 * fine width)) = 12 -> range 12 / 4 = 3.
  EXPECT_DOUBLE_EQ(observer.histogram().range, 3.0);
  EXPECT_NEAR(observer.histogram().total(), 6, 1e-9);
  // hist_percent 1.0: the last non-empty bin holds 3.0, the top of the range.
  spec.hist_percent = 1.0;
  HistogramObserver full(HistogramObserver::Method::kHistPercent, spec);
  full.Observe(at::tensor({-1.0f, 0.25f, 0.5f, 1.0f}));
  full.Observe(at::tensor({3.0f, -0.1f}));
  EXPECT_NEAR(*full.ComputeThreshold(127), 3.0 - 0.5 * 3.0 / 128, 1e-9);
}

TEST(ActivationObserverTest, ValidationNamesTheKey) {
  const struct {
    void (*mutate)(ActivationQuantizerSpec&);
    const char* key;
  } cases[] = {
      {[](ActivationQuantizerSpec& s) { s.name = "FancyQuantizer"; }, "ptq.activation_quantizer"},
      {[](ActivationQuantizerSpec& s) { s.bins = 64; }, "ptq.bins"},
      {[](ActivationQuantizerSpec& s) { s.upsample_bins = 0; }, "ptq.upsample_bins"},
      {[](ActivationQuantizerSpec& s) { s.hist_percent = 0; }, "ptq.hist_percent"},
      {[](ActivationQuantizerSpec& s) { s.hist_percent = 1.5; }, "ptq.hist_percent"},
      {[](ActivationQuantizerSpec& s) { s.percentile = 101; }, "ptq.percentile"},
  };
  for (const auto& c : cases) {
    ActivationQuantizerSpec spec;
    c.mutate(spec);
    const absl::Status status = ValidateActivationQuantizer(spec);
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << c.key;
    EXPECT_NE(status.message().find(c.key), absl::string_view::npos) << status;
  }
  EXPECT_TRUE(ValidateActivationQuantizer(ActivationQuantizerSpec()).ok());
}

}  // namespace
}  // namespace ptq::core
