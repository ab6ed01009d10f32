#include "export/report_json.h"

#include <cmath>
#include <string>
#include <utility>

namespace ptq::core {
namespace {

nlohmann::json FiniteOrNull(double value) { return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(); }

nlohmann::json ScoreJson(const HeldOutScore& score) {
  nlohmann::json entry = {{"images", score.images},
                          {"agreement_top1", score.agreement_top1},
                          {"logit_sqnr_db", FiniteOrNull(score.logit_sqnr_db)}};
  if (score.labelled > 0) {
    entry["labelled"] = score.labelled;
    entry["top1_drop"] = score.top1_drop;
  }
  return entry;
}

nlohmann::json SensitivityJson(const std::vector<LayerSensitivity>& layers) {
  nlohmann::json rows = nlohmann::json::array();
  for (const LayerSensitivity& layer : layers) {
    rows.push_back({{"module_path", layer.module_path},
                    {"op", layer.op},
                    {"sqnr_db", FiniteOrNull(layer.sqnr_db)},
                    {"mac_percent", layer.mac_percent},
                    {"only_this_int8", ScoreJson(layer.only_this_int8)},
                    {"only_this_float", ScoreJson(layer.only_this_float)}});
  }
  return rows;
}

nlohmann::json BudgetJson(const AccuracyBudgetReport& budget) {
  nlohmann::json entry = {{"met", budget.met},
                          {"all_int8", ScoreJson(budget.all_int8)},
                          {"result", ScoreJson(budget.result)},
                          {"float_layers", budget.float_layers},
                          {"float_mac_percent", budget.float_mac_percent},
                          {"trials", budget.trials}};
  if (budget.min_agreement >= 0) entry["min_agreement"] = budget.min_agreement;
  if (budget.max_top1_drop >= 0) entry["max_top1_drop"] = budget.max_top1_drop;
  return entry;
}

}  // namespace

nlohmann::json MetricsJson(const std::vector<VariantAccuracy>& variants) {
  nlohmann::json metrics = nlohmann::json::array();
  for (const VariantAccuracy& variant : variants) {
    nlohmann::json entry = {{"variant", variant.variant},
                            {"top1", variant.top1},
                            {"top5", variant.top5},
                            {"count", variant.count},
                            {"agreement_top1", variant.agreement_top1},
                            {"images_per_second", variant.images_per_second}};
    if (variant.agreement_with_simulated_top1 >= 0) {
      entry["agreement_with_simulated_top1"] = variant.agreement_with_simulated_top1;
    }
    if (!variant.engine.empty()) entry["engine"] = variant.engine;
    metrics.push_back(std::move(entry));
  }
  return metrics;
}

std::string ReportJson(const RunReport& report) {
  nlohmann::json timings = nlohmann::json::object();
  for (const auto& [name, seconds] : report.timings_seconds) timings[name] = seconds;
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerReport& layer : report.layers) {
    layers.push_back({{"module_path", layer.module_path}, {"op", layer.op}, {"sqnr_db", FiniteOrNull(layer.sqnr_db)}});
  }
  nlohmann::json config = report.config_json.empty() ? nlohmann::json::object()
                                                      : nlohmann::json::parse(report.config_json, nullptr, false);
  nlohmann::json document = {
      {"format", "ptq-service report v1"},
      {"config", config.is_discarded() ? nlohmann::json(report.config_json) : config},
      {"int8_engine", report.engine},
      {"onednn_isa", report.onednn_isa},
      {"provenance",
       {{"ptq_version", report.provenance.ptq_version},
        {"commit", report.provenance.commit},
        {"libtorch", report.provenance.libtorch},
        {"onednn", report.provenance.onednn},
        {"model_sha256", report.provenance.model_sha256},
        {"calibration_fingerprint", report.provenance.calibration_fingerprint},
        {"calibration_images", report.provenance.calibration_images},
        {"calibration_from_job", report.provenance.calibration_from_job}}},
      {"metrics", MetricsJson(report.metrics)},
      {"timings_seconds", std::move(timings)},
      {"layer_sqnr", std::move(layers)},
  };
  // Scores on the held-out calibration images: what the accuracy budget and the sensitivity
  // analysis decided on, apart from any evaluation set.
  if (report.held_out) document["held_out"] = ScoreJson(*report.held_out);
  if (!report.quantizer_trials.empty()) {
    nlohmann::json trials = nlohmann::json::array();
    for (const QuantizerTrial& trial : report.quantizer_trials) {
      trials.push_back({{"quantizer", trial.quantizer}, {"held_out", ScoreJson(trial.held_out)}});
    }
    document["activation_quantizer_choice"] = {{"used", report.activation_quantizer_used},
                                               {"rule", "highest held-out top-1 agreement, then logit SQNR"},
                                               {"trials", std::move(trials)}};
  }
  if (!report.sensitivity.empty()) document["sensitivity"] = SensitivityJson(report.sensitivity);
  if (report.error_sources) {
    document["error_sources"] = {{"weights_only", ScoreJson(report.error_sources->weights_only)},
                                 {"activations_only", ScoreJson(report.error_sources->activations_only)}};
  }
  if (report.budget) document["accuracy_budget"] = BudgetJson(*report.budget);
  return document.dump(2);
}

}  // namespace ptq::core
