#include "ptq/core/quantization_session.h"

#include <gtest/gtest.h>

#include <fstream>

#include "nlohmann/json.hpp"
#include "ptq/core/result_directory.h"
#include "test_env.h"

namespace ptq::core {
namespace {

namespace fs = std::filesystem;

// An ImageNet-layout folder of copies of the committed JPEG, labels 0..9, for the tiny model.
class QuantizationSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_.path() / "val");
    std::ofstream list(dir_.path() / "val_list.txt");
    for (int i = 0; i < 12; ++i) {
      const std::string name = "val/" + std::to_string(i) + ".jpg";
      fs::copy_file(testing::TestDataDir() / "texture_120x90.jpg", dir_.path() / name);
      list << name << " " << i % 10 << "\n";
    }
  }

  std::unique_ptr<BatchSource> Data(int64_t limit = 0) {
    DataSpec spec;
    spec.path = dir_.path().string();
    spec.preprocess.size = 32;
    spec.preprocess.resize_short = 40;
    spec.batch_size = 4;
    spec.limit = limit;
    return *OpenDataset(spec);
  }

  std::string TinyModel() const { return (testing::TestModelsDir() / "tiny.pt").string(); }

  testing::TempDir dir_;
};

TEST_F(QuantizationSessionTest, BadConfigsNameTheKey) {
  PtqConfig config;
  config.hist_percent = 2;
  absl::Status status = QuantizationSession::Create(TinyModel(), config, {}).status();
  EXPECT_NE(status.message().find("ptq.hist_percent"), absl::string_view::npos) << status;

  config = PtqConfig();
  config.fuse = false;
  config.fuse_list = {{"conv", "bn"}};
  status = QuantizationSession::Create(TinyModel(), config, {}).status();
  EXPECT_NE(status.message().find("ptq.fuse_list"), absl::string_view::npos) << status;

  config = PtqConfig();
  config.skip_layers = {"nope"};
  status = QuantizationSession::Create(TinyModel(), config, {}).status();
  EXPECT_NE(status.message().find("ptq.skip_layers"), absl::string_view::npos) << status;
}

TEST_F(QuantizationSessionTest, DevicesAreChecked) {
  EXPECT_TRUE(absl::IsInvalidArgument(QuantizationSession::Create(TinyModel(), {}, {"banana"}).status()));
  // Debian's LibTorch has no CUDA: asking for it is a precondition the machine does not meet.
  absl::Status cuda = QuantizationSession::Create(TinyModel(), {}, {"cuda"}).status();
  EXPECT_TRUE(cuda.ok() || absl::IsFailedPrecondition(cuda)) << cuda;
}

TEST_F(QuantizationSessionTest, EvaluateAndParamsNeedCalibration) {
  auto session = QuantizationSession::Create(TinyModel(), {}, {});
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_TRUE(absl::IsFailedPrecondition((*session)->Evaluate(*Data(), nullptr, nullptr).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition((*session)->QuantParamsJson().status()));
}

TEST_F(QuantizationSessionTest, CalibrateEvaluateAndDescribeEveryPoint) {
  PtqConfig config;
  config.fuse = true;
  config.activation_quantizer = "HistQuantizer";
  config.skip_layers = {"fc"};
  auto session = QuantizationSession::Create(TinyModel(), config, {});
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_EQ((*session)->summary().folded_batch_norms, 1);
  EXPECT_EQ((*session)->summary().float_layers, 1);

  std::vector<std::pair<int64_t, int64_t>> progress;
  absl::Status calibrated = (*session)->Calibrate(
      *Data(8), [&](int64_t done, int64_t total) { progress.emplace_back(done, total); }, nullptr);
  ASSERT_TRUE(calibrated.ok()) << calibrated;
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().first, progress.back().second);  // ends at done == total

  auto accuracy = (*session)->Evaluate(*Data(), nullptr, nullptr);
  ASSERT_TRUE(accuracy.ok()) << accuracy.status();
  ASSERT_EQ(accuracy->size(), 2u);
  EXPECT_EQ((*accuracy)[0].variant, "fp32");
  EXPECT_EQ((*accuracy)[1].variant, "int8_simulated");
  EXPECT_EQ((*accuracy)[1].count, 12);
  EXPECT_GT((*accuracy)[1].images_per_second, 0);

  const nlohmann::json params = nlohmann::json::parse(*(*session)->QuantParamsJson());
  EXPECT_EQ(params.at("activation_quantizer"), "HistQuantizer");
  // Points: the input, the conv+BN+ReLU6 unit (non-negative), pooling and flatten sharing it,
  // and the float fc's output is not quantized.
  const auto& points = params.at("activations");
  ASSERT_GE(points.size(), 2u);
  EXPECT_EQ(points[0].at("module_path"), "input");
  EXPECT_EQ(points[0].at("scheme"), "uint8_symmetric_zero_point_128");
  EXPECT_EQ(points[0].at("zero_point"), 128);
  EXPECT_EQ(points[1].at("module_path"), "conv");
  EXPECT_EQ(points[1].at("scheme"), "uint8_zero_point_0");
  EXPECT_EQ(points[1].at("observer"), "HistQuantizer");
  EXPECT_GT(points[1].at("scale").get<double>(), 0);
  const auto& weights = params.at("weights");
  ASSERT_EQ(weights.size(), 1u);
  EXPECT_EQ(weights[0].at("scales").size(), 8u);
  EXPECT_EQ(weights[0].at("folded_batch_norm"), "bn");
  EXPECT_EQ(weights[0].at("fused_activation"), "relu6");
  EXPECT_EQ(weights[0].at("bias_correction").size(), 8u);
  ASSERT_EQ(params.at("float_layers").size(), 1u);
  EXPECT_EQ(params.at("float_layers")[0].at("module_path"), "fc");
  EXPECT_EQ(params.at("float_layers")[0].at("reason"), "listed in ptq.skip_layers");
}

// calibration.from_job's engine side: what WriteArtifacts keeps of a calibration restores,
// without data, to the same parameters and the same simulated int8 model, re-plans for other
// float layers, and is refused for another graph or a plan that needs ranges it lacks.
TEST_F(QuantizationSessionTest, ACalibrationKeptBesideTheArtifactsIsRestoredWithoutData) {
  const std::string model = (testing::TestModelsDir() / "mobilenet_v3_small.pt").string();
  PtqConfig config;  // the defaults: equalization and bias correction on
  config.skip_se_quant = true;
  auto calibrated = QuantizationSession::Create(model, config, {});
  ASSERT_TRUE(calibrated.ok()) << calibrated.status();
  ASSERT_TRUE((*calibrated)->Calibrate(*Data(8), nullptr, nullptr).ok());
  const fs::path artifacts = dir_.path() / "artifacts";
  ASSERT_TRUE((*calibrated)->WriteArtifacts(artifacts.string()).ok());
  const std::string state = (artifacts / kCalibrationStateFile).string();
  const nlohmann::json params = nlohmann::json::parse(*(*calibrated)->QuantParamsJson());
  ASSERT_FALSE(params.at("weights").at(0).at("bias_correction").empty());

  auto restored = QuantizationSession::Create(model, config, {});
  ASSERT_TRUE(restored.ok());
  const absl::Status from_state = (*restored)->CalibrateFrom(state);
  ASSERT_TRUE(from_state.ok()) << from_state;
  EXPECT_EQ(nlohmann::json::parse(*(*restored)->QuantParamsJson()), params);
  auto before = (*calibrated)->Evaluate(*Data(), nullptr, nullptr);
  auto after = (*restored)->Evaluate(*Data(), nullptr, nullptr);
  ASSERT_TRUE(before.ok() && after.ok());
  EXPECT_EQ((*after)[1].top1, (*before)[1].top1);
  EXPECT_EQ((*after)[1].agreement_top1, (*before)[1].agreement_top1);
  EXPECT_EQ((*restored)->LayerSqnr().size(), (*calibrated)->LayerSqnr().size());

  // Another float layer: the rest keeps its parameters.
  PtqConfig replanned = config;
  const std::string skipped = params.at("weights").at(2).at("module_path");
  replanned.skip_layers = {skipped};
  auto fewer = QuantizationSession::Create(model, replanned, {});
  ASSERT_TRUE(fewer.ok());
  ASSERT_TRUE((*fewer)->CalibrateFrom(state).ok());
  const nlohmann::json fewer_params = nlohmann::json::parse(*(*fewer)->QuantParamsJson());
  EXPECT_EQ(fewer_params.at("weights").size(), params.at("weights").size() - 1);
  bool listed = false;
  for (const nlohmann::json& layer : fewer_params.at("float_layers")) listed |= layer.at("module_path") == skipped;
  EXPECT_TRUE(listed) << fewer_params.at("float_layers");
  EXPECT_EQ(fewer_params.at("activations").at(0), params.at("activations").at(0));

  // Squeeze-excitation layers were float there: their activations have no range.
  PtqConfig with_se = config;
  with_se.skip_se_quant = false;
  auto more = QuantizationSession::Create(model, with_se, {});
  const absl::Status lacking = (*more)->CalibrateFrom(state);
  EXPECT_TRUE(absl::IsFailedPrecondition(lacking)) << lacking;
  EXPECT_NE(lacking.message().find("has no calibrated range"), absl::string_view::npos) << lacking;

  // Another graph (BatchNorm not folded), another model, a damaged file.
  PtqConfig unfused = config;
  unfused.fuse = false;
  auto other_graph = QuantizationSession::Create(model, unfused, {});
  const absl::Status mismatch = (*other_graph)->CalibrateFrom(state);
  EXPECT_TRUE(absl::IsFailedPrecondition(mismatch)) << mismatch;
  EXPECT_NE(mismatch.message().find("calibrated"), absl::string_view::npos) << mismatch;
  auto tiny = QuantizationSession::Create(TinyModel(), PtqConfig(), {});
  EXPECT_TRUE(absl::IsFailedPrecondition((*tiny)->CalibrateFrom(state)));
  std::ofstream(dir_.path() / "damaged.pt") << "not a pickle";
  const absl::Status damaged = (*restored)->CalibrateFrom((dir_.path() / "damaged.pt").string());
  EXPECT_TRUE(absl::IsFailedPrecondition(damaged)) << damaged;
  EXPECT_TRUE(absl::IsFailedPrecondition((*restored)->CalibrateFrom((dir_.path() / "missing.pt").string())));
}

TEST_F(QuantizationSessionTest, DifferentQuantizersGiveDifferentParameters) {
  std::vector<double> scales;
  for (const char* quantizer : {"AbsmaxQuantizer", "HistQuantizer"}) {
    PtqConfig config;
    config.activation_quantizer = quantizer;
    config.hist_percent = 0.9;
    auto session = QuantizationSession::Create(TinyModel(), config, {});
    ASSERT_TRUE((*session)->Calibrate(*Data(), nullptr, nullptr).ok());
    const nlohmann::json params = nlohmann::json::parse(*(*session)->QuantParamsJson());
    scales.push_back(params.at("activations")[0].at("scale").get<double>());
  }
  EXPECT_GT(scales[0], scales[1]);  // absmax covers everything, hist 0.9 clips the tail
}

TEST_F(QuantizationSessionTest, CancelledCalibrationStops) {
  for (bool bias_correction : {false, true}) {
    PtqConfig config;
    config.bias_correction = bias_correction;
    auto session = QuantizationSession::Create(TinyModel(), config, {});
    std::atomic<bool> cancelled{true};
    EXPECT_TRUE(absl::IsCancelled((*session)->Calibrate(*Data(), nullptr, &cancelled)));
    EXPECT_TRUE(absl::IsFailedPrecondition((*session)->QuantParamsJson().status()));
  }
}

// Regression: NaN weights calibrated for over a minute and the job reported top-1 100.
TEST_F(QuantizationSessionTest, NonFiniteActivationsStopCalibrationNamingTheLayer) {
  auto session = QuantizationSession::Create((testing::TestModelsDir() / "nan_weights.pt").string(), PtqConfig(), {});
  ASSERT_TRUE(session.ok()) << session.status();
  const absl::Status status = (*session)->Calibrate(*Data(), nullptr, nullptr);
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(status.message().find("calibration batch 1: conv2d 'stem' produced NaN or Inf"), absl::string_view::npos)
      << status;
}

// Regression: a full state volume made LibTorch's file writer throw from its destructor,
// which aborted the server.
TEST_F(QuantizationSessionTest, ExportToAFullDiskIsAnErrorNotACrash) {
  auto session = QuantizationSession::Create(TinyModel(), PtqConfig(), {});
  ASSERT_TRUE(session.ok()) << session.status();
  ASSERT_TRUE((*session)->Calibrate(*Data(), nullptr, nullptr).ok());
  const absl::Status full = (*session)->ExportTorchScript("/dev/full", "/dev/full");
  EXPECT_TRUE(absl::IsResourceExhausted(full)) << full;
  EXPECT_NE(full.message().find("No space left on device"), absl::string_view::npos) << full;
}

}  // namespace
}  // namespace ptq::core
