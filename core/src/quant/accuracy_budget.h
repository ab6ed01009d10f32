#ifndef PTQ_CORE_SRC_QUANT_ACCURACY_BUDGET_H_
#define PTQ_CORE_SRC_QUANT_ACCURACY_BUDGET_H_

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quant/layer_sensitivity.h"

namespace ptq::core {

struct AccuracyBudget {
  double min_agreement = -1;  // percent; -1: no bound
  double max_top1_drop = -1;  // points; -1: no bound

  bool asked() const { return min_agreement >= 0 || max_top1_drop >= 0; }
};

// Whether `score` is within every bound of `budget`.
bool MeetsBudget(const HeldOutScore& score, const AccuracyBudget& budget);

// The order in which layers are left in float: most harmful first, judged by the logit SQNR
// of the model with only that layer in int8 (lowest first), ties by the share of top-1 decisions
// it changes alone. That measure sees a layer's weights and both its activations; the "only
// this float" one sees only its weights, while a budget usually needs activations in float.
std::vector<std::string> FallbackOrder(const std::vector<LayerSensitivity>& layers);

// Re-calibrates the model with these conv/linear layers in float (plan, weights, ranges,
// corrections and kernels redone from what calibration observed).
using RequantizeWithFloatLayers = std::function<absl::Status(const std::vector<std::string>& float_layers)>;

// Leaves layers in float in FallbackOrder, one more per trial, each trial re-calibrated and
// scored on the held-out images (`all_int8`: the model as it comes, already scored there), until the budget is met (all layers float meets any budget
// that fp32 meets). The model ends as the last trial left it. FAILED_PRECONDITION for a
// max_top1_drop without labelled held-out images; CANCELLED once `cancelled` is set.
// `progress` is called once per trial.
absl::StatusOr<AccuracyBudgetReport> FallBackUntilBudget(QuantizedModel& model, const HeldOutImages& held_out,
                                                         const HeldOutScore& all_int8, const AccuracyBudget& budget,
                                                         const std::vector<LayerSensitivity>& sensitivity,
                                                         const RequantizeWithFloatLayers& requantize,
                                                         const std::function<void()>& progress,
                                                         const std::atomic<bool>* cancelled);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_QUANT_ACCURACY_BUDGET_H_
