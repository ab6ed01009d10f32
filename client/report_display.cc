#include "report_display.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ptq::client {
namespace {

using nlohmann::json;

double Number(const json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<double>() : 0.0;
}

std::string ScoreText(const json& score) {
  std::string text = absl::StrFormat("agreement with fp32 %.2f%% of %d images", Number(score, "agreement_top1"),
                                     static_cast<int>(Number(score, "images")));
  if (score.contains("top1_drop")) {
    absl::StrAppend(&text, absl::StrFormat(", top-1 drop %.2f points", Number(score, "top1_drop")));
  }
  const json& sqnr = score.value("logit_sqnr_db", json());
  absl::StrAppend(&text, sqnr.is_number() ? absl::StrFormat(", logit SQNR %.1f dB", sqnr.get<double>())
                                          : std::string(", logits identical"));
  return text;
}

std::string MetricsText(const json& metrics) {
  std::string text = absl::StrFormat("%-16s %8s %8s %10s %12s\n", "variant", "top1", "top5", "agreement", "images/s");
  for (const json& variant : metrics) {
    absl::StrAppend(&text, absl::StrFormat("%-16s %8.2f %8.2f %9.2f%% %12.1f\n", variant.value("variant", "?"),
                                           Number(variant, "top1"), Number(variant, "top5"),
                                           Number(variant, "agreement_top1"), Number(variant, "images_per_second")));
  }
  return text;
}

std::string BudgetText(const json& budget) {
  std::string asked;
  if (budget.contains("min_agreement")) {
    asked = absl::StrFormat("agreement >= %.2f%%", Number(budget, "min_agreement"));
  }
  if (budget.contains("max_top1_drop")) {
    absl::StrAppend(&asked, asked.empty() ? "" : ", ",
                    absl::StrFormat("top-1 drop <= %.2f points", Number(budget, "max_top1_drop")));
  }
  std::string text = absl::StrCat("accuracy budget (", asked, "): ", budget.value("met", false) ? "met" : "NOT met",
                                  "\n  all int8:  ", ScoreText(budget.value("all_int8", json::object())),
                                  "\n  written:   ", ScoreText(budget.value("result", json::object())), "\n");
  const json& layers = budget.value("float_layers", json::array());
  if (layers.empty()) {
    absl::StrAppend(&text, "  no layer left in float\n");
  } else {
    absl::StrAppend(&text, absl::StrFormat("  left in float (%d layers, %.1f%% of conv/linear MACs):",
                                           static_cast<int>(layers.size()), Number(budget, "float_mac_percent")));
    for (const json& layer : layers) absl::StrAppend(&text, " ", layer.is_string() ? layer.get<std::string>() : "?");
    absl::StrAppend(&text, "\n");
  }
  return text;
}

std::string SensitivityText(const json& rows, const std::set<std::string>& float_layers) {
  std::string text = absl::StrFormat("%-32s %-7s %6s %9s %17s %18s\n", "layer", "op", "MAC %", "SQNR dB",
                                     "only int8: agree", "only float: agree");
  for (const json& row : rows) {
    const std::string path = row.value("module_path", "?");
    const json& sqnr = row.value("sqnr_db", json());
    absl::StrAppend(&text, absl::StrFormat("%-32s %-7s %6.1f %9s %16.2f%% %17.2f%%%s\n", path, row.value("op", "?"),
                                           Number(row, "mac_percent"),
                                           sqnr.is_number() ? absl::StrFormat("%.1f", sqnr.get<double>()) : "exact",
                                           Number(row.value("only_this_int8", json::object()), "agreement_top1"),
                                           Number(row.value("only_this_float", json::object()), "agreement_top1"),
                                           float_layers.count(path) != 0 ? "  float" : ""));
  }
  return text;
}

}  // namespace

std::string ReportText(const json& report) {
  std::string text;
  if (const auto metrics = report.find("metrics"); metrics != report.end() && !metrics->empty()) {
    absl::StrAppend(&text, MetricsText(*metrics), "\n");
  }
  if (const auto held_out = report.find("held_out"); held_out != report.end()) {
    absl::StrAppend(&text, "held-out calibration images: ", ScoreText(*held_out), "\n");
  }
  if (const auto choice = report.find("activation_quantizer_choice"); choice != report.end()) {
    absl::StrAppend(&text, "activation quantizer \"auto\" chose ", choice->value("used", "?"),
                    " (highest top-1 agreement on the held-out images, then logit SQNR):\n");
    for (const json& trial : choice->value("trials", json::array())) {
      absl::StrAppend(&text, absl::StrFormat("  %-20s ", trial.value("quantizer", "?")),
                      ScoreText(trial.value("held_out", json::object())), "\n");
    }
  }
  std::set<std::string> float_layers;
  if (const auto budget = report.find("accuracy_budget"); budget != report.end()) {
    absl::StrAppend(&text, BudgetText(*budget));
    for (const json& layer : budget->value("float_layers", json::array())) {
      if (layer.is_string()) float_layers.insert(layer.get<std::string>());
    }
  }
  if (const auto sources = report.find("error_sources"); sources != report.end()) {
    absl::StrAppend(&text, "\nwhere the all-int8 model loses it, on the held-out images:\n  only weights int8:     ",
                    ScoreText(sources->value("weights_only", json::object())), "\n  only activations int8: ",
                    ScoreText(sources->value("activations_only", json::object())), "\n");
  }
  if (const auto rows = report.find("sensitivity"); rows != report.end() && !rows->empty()) {
    absl::StrAppend(&text, "\nper-layer sensitivity on the held-out images (sensitivity.svg draws it):\n",
                    SensitivityText(*rows, float_layers));
  }
  if (text.empty()) text = "the report has no accuracy numbers (no evaluation, no held-out images)\n";
  // What reproduces it: reports before provenance was recorded have none.
  if (const auto made = report.find("provenance"); made != report.end()) {
    absl::StrAppend(&text, "\nmade by ptq-service ", made->value("ptq_version", "?"), " (commit ",
                    made->value("commit", "?"), "), LibTorch ", made->value("libtorch", "?"), ", onednn ",
                    made->value("onednn", "?"), " (", report.value("onednn_isa", "?"), ")\nmodel sha256 ",
                    made->value("model_sha256", "?"), "\n");
    if (const std::string from_job = made->value("calibration_from_job", ""); !from_job.empty()) {
      absl::StrAppend(&text, "calibration reused from job ", from_job, " (its report says on which images)\n");
    } else {
      absl::StrAppend(&text, "calibrated on ", made->value("calibration_images", 0), " images, fingerprint ",
                      made->value("calibration_fingerprint", "?"), "\n");
    }
  }
  return text;
}

}  // namespace ptq::client
