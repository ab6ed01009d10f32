#include "quant/accuracy_budget.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"

namespace ptq::core {

bool MeetsBudget(const HeldOutScore& score, const AccuracyBudget& budget) {
  if (budget.min_agreement >= 0 && score.agreement_top1 < budget.min_agreement) return false;
  if (budget.max_top1_drop >= 0 && score.top1_drop > budget.max_top1_drop) return false;
  return true;
}

std::vector<std::string> FallbackOrder(const std::vector<LayerSensitivity>& layers) {
  std::vector<const LayerSensitivity*> order;
  for (const LayerSensitivity& layer : layers) order.push_back(&layer);
  std::stable_sort(order.begin(), order.end(), [](const LayerSensitivity* a, const LayerSensitivity* b) {
    if (a->only_this_int8.logit_sqnr_db != b->only_this_int8.logit_sqnr_db) {
      return a->only_this_int8.logit_sqnr_db < b->only_this_int8.logit_sqnr_db;
    }
    return a->only_this_int8.agreement_top1 < b->only_this_int8.agreement_top1;
  });
  std::vector<std::string> names;
  for (const LayerSensitivity* layer : order) names.push_back(layer->module_path);
  return names;
}

absl::StatusOr<AccuracyBudgetReport> FallBackUntilBudget(QuantizedModel& model, const HeldOutImages& held_out,
                                                         const HeldOutScore& all_int8, const AccuracyBudget& budget,
                                                         const std::vector<LayerSensitivity>& sensitivity,
                                                         const RequantizeWithFloatLayers& requantize,
                                                         const std::function<void()>& progress,
                                                         const std::atomic<bool>* cancelled) {
  if (budget.max_top1_drop >= 0 && held_out.labelled() == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "ptq.max_top1_drop needs labelled calibration images, but the ", held_out.images(),
        " held-out ones have no labels; use ptq.min_agreement, which needs none"));
  }
  std::map<std::string, double> mac_percent;
  for (const LayerSensitivity& layer : sensitivity) mac_percent[layer.module_path] = layer.mac_percent;
  AccuracyBudgetReport report;
  report.min_agreement = budget.min_agreement;
  report.max_top1_drop = budget.max_top1_drop;
  report.all_int8 = all_int8;
  report.result = report.all_int8;
  report.met = MeetsBudget(report.all_int8, budget);
  const std::vector<std::string> order = FallbackOrder(sensitivity);
  for (size_t count = 1; !report.met && count <= order.size(); ++count) {
    if (cancelled != nullptr && cancelled->load()) return absl::CancelledError("accuracy budget search cancelled");
    report.float_layers.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(count));
    if (absl::Status status = requantize(report.float_layers); !status.ok()) return status;
    ++report.trials;
    report.float_mac_percent += mac_percent[order[count - 1]];
    report.result = ScoreOnHeldOut(model, held_out);
    report.met = MeetsBudget(report.result, budget);
    if (progress) progress();
  }
  return report;
}

}  // namespace ptq::core
