// ptq-client report's text from a report.json document.
#include "report_display.h"

#include <gtest/gtest.h>

namespace ptq::client {
namespace {

TEST(ReportDisplayTest, ShowsTheBudgetTheFloatLayersAndTheSensitivityTable) {
  const nlohmann::json report = nlohmann::json::parse(R"({
    "metrics": [{"variant": "fp32", "top1": 59.6, "top5": 81.6, "agreement_top1": 100, "images_per_second": 250},
                {"variant": "int8", "top1": 59.4, "top5": 81.7, "agreement_top1": 95.5, "images_per_second": 610}],
    "held_out": {"images": 128, "labelled": 128, "agreement_top1": 98.44, "top1_drop": -0.78, "logit_sqnr_db": 28.6},
    "accuracy_budget": {"met": true, "min_agreement": 98, "trials": 2, "float_mac_percent": 8.8,
                        "float_layers": ["features.1.conv", "features.0.conv"],
                        "all_int8": {"images": 128, "agreement_top1": 94.53, "logit_sqnr_db": 24.0},
                        "result": {"images": 128, "agreement_top1": 98.44, "logit_sqnr_db": 28.6}},
    "sensitivity": [
      {"module_path": "features.0.conv", "op": "conv2d", "mac_percent": 6.6, "sqnr_db": 42.3,
       "only_this_int8": {"agreement_top1": 96.9}, "only_this_float": {"agreement_top1": 95.3}},
      {"module_path": "classifier", "op": "linear", "mac_percent": 0.6, "sqnr_db": null,
       "only_this_int8": {"agreement_top1": 100}, "only_this_float": {"agreement_top1": 95.3}}],
    "error_sources": {"weights_only": {"images": 128, "agreement_top1": 97.66, "logit_sqnr_db": 30.1},
                      "activations_only": {"images": 128, "agreement_top1": 95.31, "logit_sqnr_db": 25.2}},
    "onednn_isa": "avx2",
    "provenance": {"ptq_version": "0.1.0", "commit": "3c5c5d6f1e62", "libtorch": "1.13.0", "onednn": "2.6.3",
                   "model_sha256": "ab12", "calibration_images": 320, "calibration_fingerprint": "cd34"}
  })");
  const std::string text = ReportText(report);
  EXPECT_NE(text.find("int8                59.40    81.70     95.50%        610.0"), std::string::npos) << text;
  EXPECT_NE(text.find("held-out calibration images: agreement with fp32 98.44% of 128 images, top-1 drop -0.78 "
                      "points, logit SQNR 28.6 dB"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("accuracy budget (agreement >= 98.00%): met\n"
                      "  all int8:  agreement with fp32 94.53% of 128 images, logit SQNR 24.0 dB\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("left in float (2 layers, 8.8% of conv/linear MACs): features.1.conv features.0.conv"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("where the all-int8 model loses it, on the held-out images:\n"
                      "  only weights int8:     agreement with fp32 97.66% of 128 images, logit SQNR 30.1 dB\n"
                      "  only activations int8: agreement with fp32 95.31% of 128 images, logit SQNR 25.2 dB\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("features.0.conv                  conv2d     6.6      42.3            96.90%             95.30%  float"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("classifier                       linear     0.6     exact           100.00%             95.30%\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\nmade by ptq-service 0.1.0 (commit 3c5c5d6f1e62), LibTorch 1.13.0, onednn 2.6.3 (avx2)\n"
                      "model sha256 ab12\ncalibrated on 320 images, fingerprint cd34\n"),
            std::string::npos)
      << text;
}

TEST(ReportDisplayTest, SaysSoWhenTheReportHasNoAccuracyNumbers) {
  EXPECT_EQ(ReportText(nlohmann::json::object()),
            "the report has no accuracy numbers (no evaluation, no held-out images)\n");
  // A budget that was not met says so.
  const nlohmann::json unmet = {{"accuracy_budget", {{"met", false}, {"max_top1_drop", 0.2}, {"float_layers", {}}}}};
  EXPECT_NE(ReportText(unmet).find("accuracy budget (top-1 drop <= 0.20 points): NOT met"), std::string::npos);
  EXPECT_NE(ReportText(unmet).find("no layer left in float"), std::string::npos);
  // A field of the wrong type is an exception the command turns into an error, not a crash.
  EXPECT_THROW(ReportText(nlohmann::json::parse(R"({"metrics": [{"variant": 5}]})")), nlohmann::json::exception);
}

}  // namespace
}  // namespace ptq::client
