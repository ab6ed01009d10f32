// The shared ImageNet MobileNetV1-0.25, calibrated on the first 320 images of imagenet-sample
// and evaluated on all 1000, simulated int8 with per-channel weights. Runs when ../shared is
// present; prints the table for the closing note and CI logs.
#include <gtest/gtest.h>

#include <cstdio>

#include "ptq/core/quantization_session.h"
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

  Outcome Run(const PtqConfig& config) {
    const fs::path model = *shared_ / "models" / "mobilenet_v1_0.25_224_keras_imagenet.pt";
    RuntimeOptions runtime;
    runtime.threads = 2;
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

// A config with no ptq keys: PercentileQuantizer, BatchNorm folded, bias correction.
TEST_F(RealAccuracyTest, DefaultsLoseAtMostHalfAPoint) {
  const Outcome outcome = Run(PtqConfig());
  EXPECT_LE(outcome.fp32.top1 - outcome.int8.top1, 0.5);
  EXPECT_GE(outcome.int8.agreement_top1, 91.0);
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
