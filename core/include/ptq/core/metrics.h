#ifndef PTQ_CORE_METRICS_H_
#define PTQ_CORE_METRICS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ptq::core {

// Index of the largest of `classes` logits; the first one wins ties (as torch.argmax).
int64_t ArgMax(const float* logits, int64_t classes);

// Whether `label` is among the k highest logits. Ties are ordered by class index, so a label
// tied with a lower-indexed class ranks after it. A row holding a NaN is never right: NaN
// compares false with everything, which would otherwise let it rank first.
bool InTopK(const float* logits, int64_t classes, int32_t label, int k);

// Top-1 / top-5 accuracy over batches of logits (row-major, `classes` per image). Images whose
// label is kNoLabel are not counted for accuracy; rows with a NaN or Inf logit are counted in
// non_finite_rows() whatever their label.
class AccuracyMeter {
 public:
  void Add(const float* logits, int64_t batch, int64_t classes, const int32_t* labels);

  int64_t count() const { return count_; }
  double top1() const;  // percent; 0 when nothing was counted
  double top5() const;
  int64_t non_finite_rows() const { return non_finite_rows_; }

 private:
  int64_t count_ = 0;
  int64_t non_finite_rows_ = 0;
  int64_t top1_correct_ = 0;
  int64_t top5_correct_ = 0;
};

// FAILED_PRECONDITION naming `variant` when the meter saw NaN or Inf logits, which no accuracy
// can be reported for: the usual causes are an input.std near zero or a model's own weights.
absl::Status RequireFiniteLogits(const AccuracyMeter& meter, absl::string_view variant);

// How often a candidate (e.g. int8) model picks the same top-1 class as a reference (fp32):
// more sensitive than accuracy on small sets, and needs no labels.
class AgreementMeter {
 public:
  void Add(const float* reference_logits, const float* candidate_logits, int64_t batch,
           int64_t classes);

  int64_t count() const { return count_; }
  double percent() const;  // 0 when nothing was counted

 private:
  int64_t count_ = 0;
  int64_t agreed_ = 0;
};

}  // namespace ptq::core

#endif  // PTQ_CORE_METRICS_H_
