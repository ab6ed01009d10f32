#include "ptq/core/result_directory.h"

#include <gtest/gtest.h>

#include <cmath>

#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "nlohmann/json.hpp"
#include "ptq/common/sha256.h"
#include "ptq/core/in_memory_batches.h"
#include "ptq/core/torchscript_evaluation.h"
#include "test_env.h"

namespace ptq::core {
namespace {

namespace fs = std::filesystem;


// The tiny model calibrated on random images, its artifacts written to `staging`, the real
// int8 file evaluated, then the directory published.
TEST(ResultDirectoryTest, ArtifactsReportAndManifestAppearTogether) {
  testing::TempDir dir;
  PreprocessSpec input;
  input.size = 16;
  input.resize_short = 16;
  InMemoryBatches data(input);
  std::mt19937 random(0);
  std::uniform_real_distribution<float> pixel(-1.0f, 1.0f);
  for (int b = 0; b < 2; ++b) {
    std::vector<float> images(4 * 3 * 16 * 16);
    for (float& value : images) value = pixel(random);
    const std::string bytes(reinterpret_cast<const char*>(images.data()), images.size() * sizeof(float));
    ASSERT_TRUE(data.AddTensor({4, 3, 16, 16}, bytes, {0, 1, 2, 3}).ok());
  }
  PtqConfig config;
  config.fuse = true;
  auto session = QuantizationSession::Create((testing::TestModelsDir() / "tiny.pt").string(), config, {});
  ASSERT_TRUE(session.ok()) << session.status();
  ASSERT_TRUE((*session)->Calibrate(*data.Source(), nullptr, nullptr).ok());

  const fs::path staging = dir.path() / "job-1.partial";
  const fs::path destination = dir.path() / "job-1";
  ASSERT_TRUE((*session)->WriteArtifacts(staging.string()).ok());
  auto metrics = (*session)->Evaluate(*data.Source(), nullptr, nullptr, (staging / "int8_infer" / "model.pt").string());
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_FALSE(fs::exists(destination));  // nothing visible before publishing

  RunReport report;
  report.config_json = R"({"name": "tiny", "ptq": {"fuse": true}})";
  report.engine = "onednn";
  report.metrics = *metrics;
  report.timings_seconds = {{"calibration", 0.5}};
  report.layers = (*session)->LayerSqnr();
  ASSERT_EQ(report.layers.size(), 2u);  // conv and fc
  ASSERT_TRUE(PublishResultDirectory(staging.string(), destination.string(), report).ok());
  EXPECT_FALSE(fs::exists(staging));

  EXPECT_EQ(testing::ListFiles(destination),
            (std::vector<std::string>{"MANIFEST", "calibration.cache", "calibration_state.pt", "fp32/model.onnx",
                                      "fp32/model.pt",
                                      "int8_infer/model.onnx", "int8_infer/model.pt", "quant_params.json",
                                      "report.json"}));
  std::istringstream manifest(ptq::testing::ReadFileBytes(destination / "MANIFEST"));
  std::string digest, path;
  int lines = 0;
  while (manifest >> digest >> path) {
    ++lines;
    EXPECT_EQ(digest, *Sha256OfFile((destination / path).string())) << path;
  }
  EXPECT_EQ(lines, 8);

  const nlohmann::json parsed = nlohmann::json::parse(ptq::testing::ReadFileBytes(destination / "report.json"));
  EXPECT_EQ(parsed.at("config").at("name"), "tiny");
  ASSERT_EQ(parsed.at("metrics").size(), 3u);
  EXPECT_EQ(parsed.at("metrics")[2].at("variant"), "int8");
  EXPECT_EQ(parsed.at("layer_sqnr")[0].at("module_path"), "conv");
  EXPECT_GT(parsed.at("layer_sqnr")[0].at("sqnr_db").get<double>(), 10.0);

  // ReadManifest gives the same files with their sizes.
  absl::StatusOr<std::vector<ManifestEntry>> entries = ReadManifest(destination.string());
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 8u);
  for (const ManifestEntry& entry : *entries) {
    EXPECT_EQ(entry.size_bytes, static_cast<int64_t>(fs::file_size(destination / entry.path))) << entry.path;
  }

  // The published files evaluate on their own: the int8 file gives the session's int8 numbers.
  auto from_files = EvaluateTorchScriptFiles(
      {{"fp32", (destination / "fp32" / "model.pt").string(), ""},
       {"int8", (destination / "int8_infer" / "model.pt").string(), "onednn"}},
      *data.Source(), nullptr, nullptr);
  ASSERT_TRUE(from_files.ok()) << from_files.status();
  ASSERT_EQ(from_files->size(), 2u);
  EXPECT_EQ((*from_files)[1].variant, "int8");
  EXPECT_DOUBLE_EQ((*from_files)[1].top1, (*metrics)[2].top1);
  EXPECT_EQ((*from_files)[1].count, 8);
  EXPECT_EQ((*from_files)[1].engine, "onednn");
  EXPECT_DOUBLE_EQ((*from_files)[0].agreement_top1, 100.0);

  // An evaluation added later lands in report.json, and MANIFEST follows the new bytes.
  ASSERT_TRUE(AddEvaluationToReport(destination.string(), "holdout", *from_files).ok());
  const nlohmann::json updated = nlohmann::json::parse(ptq::testing::ReadFileBytes(destination / "report.json"));
  ASSERT_EQ(updated.at("evaluations").size(), 1u);
  EXPECT_EQ(updated.at("evaluations")[0].at("dataset"), "holdout");
  EXPECT_EQ(updated.at("evaluations")[0].at("metrics")[1].at("variant"), "int8");
  entries = ReadManifest(destination.string());
  ASSERT_TRUE(entries.ok()) << entries.status();
  for (const ManifestEntry& entry : *entries) {
    EXPECT_EQ(entry.sha256, *Sha256OfFile((destination / entry.path).string())) << entry.path;
  }
  EXPECT_EQ(testing::ListFiles(destination).size(), 9u) << "no temporary files left";

  // A second publish to the same place is refused and leaves the first intact.
  ASSERT_TRUE((*session)->WriteArtifacts(staging.string()).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(PublishResultDirectory(staging.string(), destination.string(), report)));
  EXPECT_EQ(testing::ListFiles(destination).size(), 9u);
}

// The held-out sections: written only when measured, scores without labels carry no drop,
// an infinite logit SQNR (identical logits) is null.
TEST(ResultDirectoryTest, ReportJsonHasTheHeldOutSectionsOnlyWhenMeasured) {
  const nlohmann::json plain = nlohmann::json::parse(ReportJson(RunReport()));
  for (const char* key : {"held_out", "sensitivity", "error_sources", "accuracy_budget", "activation_quantizer_choice"}) {
    EXPECT_FALSE(plain.contains(key)) << key;
  }
  HeldOutScore unlabelled;
  unlabelled.images = 64;
  unlabelled.agreement_top1 = 96.875;
  unlabelled.logit_sqnr_db = INFINITY;
  HeldOutScore labelled = unlabelled;
  labelled.labelled = 64;
  labelled.top1_drop = 1.5625;
  labelled.logit_sqnr_db = 23.5;
  RunReport report;
  report.held_out = labelled;
  report.activation_quantizer_used = "MSEQuantizer";
  report.quantizer_trials = {{"PercentileQuantizer", unlabelled}, {"MSEQuantizer", labelled}};
  AccuracyBudgetReport budget;
  budget.min_agreement = 98;
  budget.all_int8 = unlabelled;
  budget.result = labelled;
  budget.float_layers = {"features.1.conv"};
  budget.float_mac_percent = 2.2;
  budget.met = true;
  budget.trials = 1;
  report.budget = budget;
  report.error_sources = ErrorSources{labelled, unlabelled};
  const nlohmann::json document = nlohmann::json::parse(ReportJson(report));
  EXPECT_EQ(document.at("held_out"), nlohmann::json::parse(R"({"images": 64, "labelled": 64, "agreement_top1": 96.875,
                                                               "top1_drop": 1.5625, "logit_sqnr_db": 23.5})"));
  const nlohmann::json& choice = document.at("activation_quantizer_choice");
  EXPECT_EQ(choice.at("used"), "MSEQuantizer");
  EXPECT_EQ(choice.at("trials")[0].at("held_out"),
            nlohmann::json::parse(R"({"images": 64, "agreement_top1": 96.875, "logit_sqnr_db": null})"));
  const nlohmann::json& written = document.at("accuracy_budget");
  EXPECT_EQ(written.at("min_agreement"), 98.0);
  EXPECT_FALSE(written.contains("max_top1_drop"));
  EXPECT_EQ(written.at("float_layers"), nlohmann::json::array({"features.1.conv"}));
  EXPECT_TRUE(written.at("met").get<bool>());
  EXPECT_EQ(document.at("error_sources").at("weights_only"), document.at("held_out"));
  EXPECT_EQ(document.at("error_sources").at("activations_only"), choice.at("trials")[0].at("held_out"));
  EXPECT_FALSE(document.contains("sensitivity"));
}

}  // namespace
}  // namespace ptq::core
