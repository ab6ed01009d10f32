// The shared ImageNet MobileNetV1-0.25, calibrated on the first 320 images of imagenet-sample
// and evaluated on all 1000, simulated int8 with per-channel weights. Runs when ../shared is
// present; prints the table for the closing note and CI logs.
#include <gtest/gtest.h>

#include <cstdio>

#include "error_sources_text.h"
#include "nlohmann/json.hpp"
#include "ptq/core/devices.h"
#include "ptq/core/quantization_session.h"
#include "ptq/core/result_directory.h"
#include "test_env.h"

namespace ptq::core {
namespace {

namespace fs = std::filesystem;

struct Outcome {
  VariantAccuracy fp32, int8;
};

class RealAccuracyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    shared_ = testing::SharedDir();
    if (!shared_) GTEST_SKIP() << "../shared is not present: skipping the real MobileNetV1 accuracy test";
  }

  DataSpec Data(int64_t limit) const {
    DataSpec spec;
    spec.path = (*shared_ / "data" / "imagenet-sample").string();
    spec.num_classes = 1000;
    spec.limit = limit;
    spec.batch_size = 32;
    spec.preprocess.mean = {127.5f};  // the model's sidecar: x = pixel / 127.5 - 1
    spec.preprocess.std = {127.5f};
    return spec;
  }

  Outcome Run(const PtqConfig& config, std::unique_ptr<QuantizationSession>* kept = nullptr) {
    const fs::path model = *shared_ / "models" / "mobilenet_v1_0.25_224_keras_imagenet.pt";
    RuntimeOptions runtime;
    SetIntraOpThreads(2);  // as ptq-server --threads 2 sets it at start
    auto session = QuantizationSession::Create(model.string(), config, runtime);
    EXPECT_TRUE(session.ok()) << session.status();
    auto calibration = OpenDataset(Data(320));
    EXPECT_TRUE(calibration.ok()) << calibration.status();
    absl::Status calibrated = (*session)->Calibrate(**calibration, nullptr, nullptr);
    EXPECT_TRUE(calibrated.ok()) << calibrated;
    auto evaluation = OpenDataset(Data(0));
    auto accuracy = (*session)->Evaluate(**evaluation, nullptr, nullptr);
    EXPECT_TRUE(accuracy.ok()) << accuracy.status();
    const Outcome outcome{(*accuracy)[0], (*accuracy)[1]};
    std::printf("| %s | bias correction %s | fp32 %.1f / %.1f | int8 %.1f / %.1f | agreement %.1f%% |\n",
                config.activation_quantizer.c_str(), config.bias_correction ? "on" : "off",
                outcome.fp32.top1, outcome.fp32.top5, outcome.int8.top1, outcome.int8.top5,
                outcome.int8.agreement_top1);
    EXPECT_EQ(outcome.int8.count, 1000);
    if (kept != nullptr) *kept = *std::move(session);
    return outcome;
  }

  static PtqConfig Config(const char* quantizer, bool bias_correction) {
    PtqConfig config;
    config.activation_quantizer = quantizer;
    config.bias_correction = bias_correction;
    config.fuse = true;
    return config;
  }

  std::optional<fs::path> shared_;
};

TEST_F(RealAccuracyTest, AbsmaxActivationsStayWithinFivePoints) {
  const Outcome outcome = Run(Config("AbsmaxQuantizer", false));
  EXPECT_LE(outcome.fp32.top1 - outcome.int8.top1, 5.0);
}

TEST_F(RealAccuracyTest, MseWithBiasCorrectionIsWithinOnePointAndAgreesNinetyPercent) {
  const Outcome outcome = Run(Config("MSEQuantizer", true));
  EXPECT_LE(outcome.fp32.top1 - outcome.int8.top1, 1.0);
  EXPECT_GE(outcome.int8.agreement_top1, 90.0);
}

// A config with no ptq keys: PercentileQuantizer, BatchNorm folded, bias correction,
// equalization (which took agreement from 92.8% to 93.8% here; 93.0 fails without it).
TEST_F(RealAccuracyTest, DefaultsLoseAtMostHalfAPoint) {
  const Outcome outcome = Run(PtqConfig());
  EXPECT_LE(outcome.fp32.top1 - outcome.int8.top1, 0.5);
  EXPECT_GE(outcome.int8.agreement_top1, 93.0);
}

// The accuracy-aware mode: the defaults with a 0.2-point top-1 budget and 98% agreement on
// the last 128 of the 320 calibration images; the most sensitive layers stay float until both
// hold there, and the report names them. Evaluated on all 1000 images.
TEST_F(RealAccuracyTest, ABudgetIsMetOnHeldOutImagesAndTheReportNamesTheFloatLayers) {
  PtqConfig config;
  config.max_top1_drop = 0.2;
  config.min_agreement = 98;
  config.holdout_batches = 4;
  std::unique_ptr<QuantizationSession> session;
  const Outcome outcome = Run(config, &session);
  ASSERT_NE(session, nullptr);
  const std::optional<AccuracyBudgetReport> budget = session->AccuracyBudget();
  ASSERT_TRUE(budget.has_value());
  std::printf("held out %lld: all int8 drop %.2f agreement %.2f%% -> drop %.2f agreement %.2f%%, %zu float layers "
              "(%.1f%% of MACs)\n",
              static_cast<long long>(budget->result.images), budget->all_int8.top1_drop,
              budget->all_int8.agreement_top1, budget->result.top1_drop, budget->result.agreement_top1,
              budget->float_layers.size(), budget->float_mac_percent);
  EXPECT_EQ(budget->result.labelled, 128);
  EXPECT_TRUE(budget->met);
  EXPECT_LE(budget->result.top1_drop, 0.2);
  EXPECT_GE(budget->result.agreement_top1, 98.0);
  ASSERT_FALSE(budget->float_layers.empty()) << "all int8 missed the budget on these images";
  // On all 1000 images (SE of a drop about 0.5) the drop was 0.9 and agreement 95.6%: the bound
  // holds on the 128 held-out images it was set on; agreement is what carries over.
  EXPECT_LE(outcome.fp32.top1 - outcome.int8.top1, 1.2);
  EXPECT_GE(outcome.int8.agreement_top1, 95.0);

  // Neither half of int8 is lossless on its own here: this model loses to both.
  const std::optional<ErrorSources> sources = session->ErrorSourcesOnHeldOut();
  ASSERT_TRUE(sources.has_value());
  PrintErrorSources(*sources);
  EXPECT_LT(sources->weights_only.logit_sqnr_db, 40);
  EXPECT_LT(sources->activations_only.logit_sqnr_db, 40);

  RunReport report;
  report.budget = budget;
  report.sensitivity = session->Sensitivity();
  const nlohmann::json document = nlohmann::json::parse(ReportJson(report));
  EXPECT_EQ(document.at("accuracy_budget").at("float_layers").get<std::vector<std::string>>(), budget->float_layers);
  EXPECT_TRUE(document.at("accuracy_budget").at("met").get<bool>());
  EXPECT_EQ(document.at("sensitivity").size(), 28u);  // the 27 convs and the classifier

  // The int8 file, with those layers in float between int8 ones, computes what was simulated.
  testing::TempDir dir;
  ASSERT_TRUE(session->WriteArtifacts(dir.path().string()).ok());
  auto evaluation = OpenDataset(Data(0));
  auto real = session->Evaluate(**evaluation, nullptr, nullptr, (dir.path() / "int8_infer" / "model.pt").string());
  ASSERT_TRUE(real.ok()) << real.status();
  std::printf("real int8 file vs simulation on all images: %.2f%% top-1 agreement\n",
              (*real)[2].agreement_with_simulated_top1);
  // 98.6% while the simulation ran float layers on NCHW input (quantized_model.cc).
  EXPECT_GE((*real)[2].agreement_with_simulated_top1, 99.5);
}

// Regressions: the seed's defaults (KLQuantizer, BatchNorm not folded) failed to calibrate
// (the bias-free convs broke the int8 kernel alignment), and KL alone collapsed this model by
// clipping its ReLU6 outputs' spike at 6.
TEST_F(RealAccuracyTest, TheSeedsDefaultsNoLongerCollapse) {
  PtqConfig seed_defaults;
  seed_defaults.activation_quantizer = "KLQuantizer";
  seed_defaults.fuse = false;
  const Outcome outcome = Run(seed_defaults);
  EXPECT_LE(outcome.fp32.top1 - outcome.int8.top1, 6.0);
  EXPECT_GE(outcome.int8.agreement_top1, 70.0);
}

}  // namespace
}  // namespace ptq::core
