#include "ptq/core/metrics.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "ptq/core/batch.h"

namespace ptq::core {
namespace {

double Percent(int64_t part, int64_t whole) {
  return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

bool AllFinite(const float* values, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(values[i])) return false;
  }
  return true;
}

}  // namespace

int64_t ArgMax(const float* logits, int64_t classes) {
  int64_t best = 0;
  for (int64_t c = 1; c < classes; ++c) {
    if (logits[c] > logits[best]) best = c;
  }
  return best;
}

bool InTopK(const float* logits, int64_t classes, int32_t label, int k) {
  if (label < 0 || label >= classes) return false;
  const float target = logits[label];
  int64_t ranked_above = 0;  // classes ordered before the label
  for (int64_t c = 0; c < classes; ++c) {
    if (std::isnan(logits[c])) return false;
    if (logits[c] > target || (logits[c] == target && c < label)) ++ranked_above;
  }
  return ranked_above < k;
}

void AccuracyMeter::Add(const float* logits, int64_t batch, int64_t classes,
                        const int32_t* labels) {
  for (int64_t i = 0; i < batch; ++i) {
    const float* row = logits + i * classes;
    if (!AllFinite(row, classes)) ++non_finite_rows_;
    if (labels[i] == kNoLabel) continue;
    ++count_;
    if (InTopK(row, classes, labels[i], 1)) ++top1_correct_;
    if (InTopK(row, classes, labels[i], 5)) ++top5_correct_;
  }
}

double AccuracyMeter::top1() const { return Percent(top1_correct_, count_); }
double AccuracyMeter::top5() const { return Percent(top5_correct_, count_); }

absl::Status RequireFiniteLogits(const AccuracyMeter& meter, absl::string_view variant) {
  if (meter.non_finite_rows() == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("the ", variant, " model produced NaN or Inf logits for ", meter.non_finite_rows(),
                   meter.non_finite_rows() == 1 ? " image" : " images",
                   "; no accuracy can be reported (check input.mean and input.std, and the model's weights)"));
}

void AgreementMeter::Add(const float* reference_logits, const float* candidate_logits,
                         int64_t batch, int64_t classes) {
  for (int64_t i = 0; i < batch; ++i) {
    ++count_;
    if (ArgMax(reference_logits + i * classes, classes) ==
        ArgMax(candidate_logits + i * classes, classes)) {
      ++agreed_;
    }
  }
}

double AgreementMeter::percent() const { return Percent(agreed_, count_); }

}  // namespace ptq::core
