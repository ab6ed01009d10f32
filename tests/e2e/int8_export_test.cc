// The exported TorchScript files: the fp32 one reproduces the engine's fp32 graph, the int8
// one (real quantized kernels) loads in Python with the same outputs as in C++, and on the
// real MobileNetV1-0.25 it agrees with the simulated int8 model.
#include <gtest/gtest.h>
#include <torch/script.h>

#include <cstring>
#include <fstream>
#include <set>

#include "error_sources_text.h"
#include "fashion_mnist_spec.h"
#include "nlohmann/json.hpp"
#include "ptq/core/devices.h"
#include "ptq/core/in_memory_batches.h"
#include "ptq/core/quantization_session.h"
#include "subprocess.h"
#include "test_env.h"

namespace ptq::core {
namespace {

namespace fs = std::filesystem;

std::string FloatBytes(const at::Tensor& tensor) {
  const at::Tensor contiguous = tensor.contiguous();
  return std::string(reinterpret_cast<const char*>(contiguous.data_ptr<float>()), contiguous.numel() * sizeof(float));
}

// Random images as in-memory batches for a model with a `size` x `size` RGB input.
InMemoryBatches RandomBatches(int size, int batches, int batch_size) {
  PreprocessSpec spec;
  spec.size = size;
  spec.resize_short = size;
  InMemoryBatches data(spec);
  at::manual_seed(0);
  for (int b = 0; b < batches; ++b) {
    const at::Tensor images = at::randn({batch_size, 3, size, size});
    EXPECT_TRUE(data.AddTensor({batch_size, 3, size, size}, FloatBytes(images), {}).ok());
  }
  return data;
}

at::Tensor ReadFloats(const fs::path& path, at::IntArrayRef shape) {
  const std::string bytes = testing::ReadFileBytes(path);
  at::Tensor values = at::empty(shape, at::kFloat);
  EXPECT_EQ(bytes.size(), static_cast<size_t>(values.numel()) * sizeof(float)) << path;
  std::memcpy(values.data_ptr<float>(), bytes.data(), std::min(bytes.size(), values.numel() * sizeof(float)));
  return values;
}

// Runs an ONNX file on `input` with ONNX Runtime (tests/fixtures/run_onnx.js).
at::Tensor RunOnnxRuntime(const fs::path& model, const at::Tensor& input, at::IntArrayRef output_shape,
                          const fs::path& scratch) {
  const fs::path input_file = scratch / "ort_input.f32";
  const fs::path output_file = scratch / "ort_output.f32";
  std::ofstream(input_file, std::ios::binary) << FloatBytes(input);
  std::vector<std::string> argv = {"/usr/bin/env", "node", (testing::FixturesDir() / "run_onnx.js").string(),
                                   model.string(), input_file.string()};
  for (int64_t d : input.sizes()) argv.push_back(std::to_string(d));
  argv.push_back(output_file.string());
  testing::ProcessResult ort = testing::RunProcess(argv, std::chrono::seconds(300));
  EXPECT_EQ(ort.exit_code, 0) << ort.stderr_text;
  return ReadFloats(output_file, output_shape);
}

// Checks ONNX files with onnx's own checker (Debian's python3-onnx).
void ExpectOnnxCheckerAccepts(const std::vector<fs::path>& models) {
  std::vector<std::string> argv = {"/usr/bin/python3", "-c",
                                   "import onnx, sys\nfor path in sys.argv[1:]: onnx.checker.check_model(path)"};
  for (const fs::path& model : models) argv.push_back(model.string());
  testing::ProcessResult checker = testing::RunProcess(argv);
  EXPECT_EQ(checker.exit_code, 0) << checker.stderr_text;
}

double TopOneAgreement(const at::Tensor& a, const at::Tensor& b) {
  return 100.0 * a.argmax(1).eq(b.argmax(1)).to(at::kDouble).mean().item<double>();
}

// Top-1 agreement of ONNX Runtime on `result_dir`'s int8_infer/model.onnx with our
// int8_infer/model.pt, on the images `spec` names.
double OnnxRuntimeAgreesWithOurInt8(const fs::path& result_dir, const DataSpec& spec) {
  std::unique_ptr<BatchSource> images = *OpenDataset(spec);
  std::vector<at::Tensor> batches;
  Batch batch;
  while (*images->Next(&batch)) batches.push_back(at::from_blob(batch.data.data(), batch.shape, at::kFloat).clone());
  const at::Tensor input = at::cat(batches);
  torch::NoGradGuard no_grad;
  torch::jit::Module int8 = torch::jit::load((result_dir / "int8_infer" / "model.pt").string());
  const at::Tensor ours = int8.forward({input}).toTensor();
  const at::Tensor ort = RunOnnxRuntime(result_dir / "int8_infer" / "model.onnx", input, ours.sizes(), result_dir);
  const double agreement = TopOneAgreement(ort, ours);
  std::printf("ONNX Runtime QDQ vs our int8 TorchScript, top-1 agreement on %lld images: %.2f%%\n",
              static_cast<long long>(input.size(0)), agreement);
  return agreement;
}

// MobileNetV2 at 64 x 64 with fuse and MSE activations, calibrated on random images, its
// artifacts (TorchScript, ONNX, ...) written to `directory`.
std::string SourceModel() { return (testing::TestModelsDir() / "mobilenet_v2.pt").string(); }

void CalibrateMobileNetV2Into(const fs::path& directory) {
  PtqConfig config;
  config.fuse = true;
  config.activation_quantizer = "MSEQuantizer";
  InMemoryBatches data = RandomBatches(64, 3, 8);
  auto session = QuantizationSession::Create(SourceModel(), config, {});
  ASSERT_TRUE(session.ok()) << session.status();
  ASSERT_TRUE((*session)->Calibrate(*data.Source(), nullptr, nullptr).ok());
  ASSERT_TRUE((*session)->WriteArtifacts(directory.string()).ok());
}

TEST(Int8ExportTest, BeforeCalibrationAndUnknownEngineAreRefused) {
  auto session = QuantizationSession::Create((testing::TestModelsDir() / "tiny.pt").string(), {}, {});
  ASSERT_TRUE(session.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition((*session)->ExportTorchScript("/tmp/a.pt", "/tmp/b.pt")));
  InMemoryBatches data = RandomBatches(16, 2, 4);
  ASSERT_TRUE((*session)->Calibrate(*data.Source(), nullptr, nullptr).ok());
  PtqConfig fbgemm;
  fbgemm.backend = "fbgemm";
  const absl::Status engine = QuantizationSession::Create((testing::TestModelsDir() / "tiny.pt").string(), fbgemm, {}).status();
  EXPECT_TRUE(absl::IsInvalidArgument(engine)) << engine;
  EXPECT_NE(engine.message().find("ptq.backend"), absl::string_view::npos) << engine;
}

// The int8 file quantizes float values with vectorized ops of its own (ATen's loop is scalar):
// the codes must be torch.quantize_per_tensor's, ties (round half to even) and saturation
// included, and 4-D values come out channels-last for onednn's convolutions.
TEST(Int8ExportTest, ItsQuantizationEqualsQuantizePerTensor) {
  testing::TempDir dir;
  auto session = QuantizationSession::Create((testing::TestModelsDir() / "tiny.pt").string(), {}, {});
  ASSERT_TRUE(session.ok());
  InMemoryBatches data = RandomBatches(16, 2, 4);
  ASSERT_TRUE((*session)->Calibrate(*data.Source(), nullptr, nullptr).ok());
  const fs::path int8_path = dir.path() / "int8.pt";
  ASSERT_TRUE((*session)->ExportTorchScript((dir.path() / "fp32.pt").string(), int8_path.string()).ok());
  torch::jit::Module int8 = torch::jit::load(int8_path.string());

  at::manual_seed(11);
  struct Case {
    double scale;
    int64_t zero_point;
    at::Tensor values;
  };
  // With scale 0.25, k / 8 for odd k lands exactly on k / 2 steps: half-way ties, both parities.
  const at::Tensor ties = at::arange(-1199, 1201, 2, at::kFloat).div(8).reshape({2, 3, 10, 20});
  // Saturation. Beyond int64 (|x / scale| > 9.2e18, infinities) ATen's cast overflows and
  // gives code 0 for either sign where the file saturates, so those are left out.
  const at::Tensor extremes = at::tensor({1e6f, -1e6f, 1e18f, -1e18f, 0.0f, -0.0f, 251.5f, 252.5f, -3.5f, -2.5f});
  const std::vector<Case> cases = {
      {0.25, 128, ties},
      {0.25, 0, ties},
      {0.015841240063309669, 128, at::randn({4, 3, 17, 9}).mul(3)},
      {static_cast<double>(0.0371f), 7, at::randn({5, 64})},
      {1.0, 3, extremes},
  };
  for (const Case& c : cases) {
    const double inverse_scale = 1.0f / static_cast<float>(c.scale);
    const at::Tensor ours =
        int8.get_method("quantize")({c.values, inverse_scale, c.scale, c.zero_point}).toTensor();
    const at::Tensor expected = at::quantize_per_tensor(c.values, c.scale, c.zero_point, at::kQUInt8);
    EXPECT_TRUE(at::equal(ours.int_repr(), expected.int_repr()))
        << "scale " << c.scale << " zero point " << c.zero_point << ": "
        << (ours.int_repr().to(at::kInt) - expected.int_repr().to(at::kInt)).abs().max();
    EXPECT_EQ(ours.q_scale(), expected.q_scale());
    EXPECT_EQ(ours.q_zero_point(), expected.q_zero_point());
    EXPECT_EQ(ours.dim() == 4, ours.is_contiguous(at::MemoryFormat::ChannelsLast) && !ours.is_contiguous());
  }
}

// The seed's MobileNetV3 recipe keeps squeeze-excitation in float: its hardsigmoid output is
// quantized in the file with the fixed scale 1/256 (inverse 256, which TorchScript source must
// spell as a float), and the file must compile and run.
TEST(Int8ExportTest, MobileNetV3WithTheSeedRecipeExportsAndRuns) {
  testing::TempDir dir;
  PtqConfig config;
  config.fuse = true;
  config.skip_se_quant = true;
  config.activation_quantizer = "HistQuantizer";
  config.hist_percent = 0.999;
  auto session = QuantizationSession::Create((testing::TestModelsDir() / "mobilenet_v3_small.pt").string(), config, {});
  ASSERT_TRUE(session.ok()) << session.status();
  InMemoryBatches data = RandomBatches(64, 2, 8);
  ASSERT_TRUE((*session)->Calibrate(*data.Source(), nullptr, nullptr).ok());
  const fs::path int8_path = dir.path() / "int8.pt";
  const absl::Status exported = (*session)->ExportTorchScript((dir.path() / "fp32.pt").string(), int8_path.string());
  ASSERT_TRUE(exported.ok()) << exported;
  torch::NoGradGuard no_grad;
  torch::jit::Module int8 = torch::jit::load(int8_path.string());
  at::manual_seed(3);
  const at::Tensor input = at::randn({4, 3, 64, 64});
  const at::Tensor output = int8.forward({input}).toTensor();
  EXPECT_EQ(output.dim(), 2);
  EXPECT_EQ(output.size(0), 4);
  EXPECT_TRUE(output.isfinite().all().item<bool>());
}

// MobileNetV2 at 64 x 64: fp32 export equals the TorchScript model; the int8 file runs in C++
// and in Python (Debian's torch) with the same outputs.
TEST(Int8ExportTest, MobileNetV2FilesRunInCppAndPython) {
  testing::TempDir dir;
  CalibrateMobileNetV2Into(dir.path());
  const fs::path fp32_path = dir.path() / "fp32" / "model.pt";
  const fs::path int8_path = dir.path() / "int8_infer" / "model.pt";

  torch::NoGradGuard no_grad;
  at::manual_seed(5);
  const at::Tensor input = at::randn({4, 3, 64, 64});
  torch::jit::Module original = torch::jit::load(SourceModel());
  original.eval();
  torch::jit::Module fp32 = torch::jit::load(fp32_path.string());
  const at::Tensor expected = original.forward({input}).toTensor();
  EXPECT_LE((fp32.forward({input}).toTensor() - expected).abs().max().item<float>(), 1e-4f);

  torch::jit::Module int8 = torch::jit::load(int8_path.string());
  const at::Tensor cpp_output = int8.forward({input}).toTensor();
  EXPECT_EQ(cpp_output.sizes(), expected.sizes());

  const fs::path input_file = dir.path() / "input.f32";
  const fs::path output_file = dir.path() / "output.f32";
  std::ofstream(input_file, std::ios::binary) << FloatBytes(input);
  testing::ProcessResult python = testing::RunProcess(
      {"/usr/bin/python3", (testing::FixturesDir() / "run_torchscript.py").string(), int8_path.string(),
       input_file.string(), "4", "3", "64", "64", output_file.string()});
  ASSERT_EQ(python.exit_code, 0) << python.stderr_text;
  const at::Tensor python_output = ReadFloats(output_file, cpp_output.sizes());
  EXPECT_TRUE(at::equal(python_output, cpp_output)) << (python_output - cpp_output).abs().max();
}

// The ONNX files of MobileNetV2 at 64 x 64: onnx's checker accepts both, ONNX Runtime runs
// both; fp32 matches the fp32 TorchScript and QDQ tracks our int8 model.
TEST(OnnxExportTest, MobileNetV2FilesPassTheCheckerAndRunInOnnxRuntime) {
  testing::TempDir dir;
  CalibrateMobileNetV2Into(dir.path());
  ExpectOnnxCheckerAccepts({dir.path() / "fp32" / "model.onnx", dir.path() / "int8_infer" / "model.onnx"});

  torch::NoGradGuard no_grad;
  at::manual_seed(7);
  const at::Tensor input = at::randn({16, 3, 64, 64});
  torch::jit::Module fp32 = torch::jit::load((dir.path() / "fp32" / "model.pt").string());
  torch::jit::Module int8 = torch::jit::load((dir.path() / "int8_infer" / "model.pt").string());
  const at::Tensor fp32_out = fp32.forward({input}).toTensor();
  const at::Tensor int8_out = int8.forward({input}).toTensor();
  const at::Tensor ort_fp32 = RunOnnxRuntime(dir.path() / "fp32" / "model.onnx", input, fp32_out.sizes(), dir.path());
  const at::Tensor ort_int8 = RunOnnxRuntime(dir.path() / "int8_infer" / "model.onnx", input, int8_out.sizes(), dir.path());
  EXPECT_LE((ort_fp32 - fp32_out).abs().max().item<float>(), 1e-3f);
  // Random inputs leave near-ties among the classes, so compare the logits themselves: the QDQ
  // model's error against ours is a part of the logits' spread (0.21 measured on this
  // random-weight model; ONNX Runtime's int8 kernels round differently from onednn's).
  const double spread = int8_out.std().item<double>();
  EXPECT_LE((ort_int8 - int8_out).abs().mean().item<double>(), 0.3 * spread);

  const std::string cache = testing::ReadFileBytes(dir.path() / "calibration.cache");
  EXPECT_EQ(cache.rfind("TRT-", 0), 0u);
  EXPECT_NE(cache.find("\ninput: "), std::string::npos);
}

TEST(Int8ExportTest, RealMobileNetV1AgreesWithTheSimulation) {
  const std::optional<fs::path> shared = testing::SharedDir();
  if (!shared) GTEST_SKIP() << "../shared is not present: skipping the real int8 MobileNetV1 check";
  testing::TempDir dir;
  PtqConfig config;
  config.fuse = true;
  config.activation_quantizer = "MSEQuantizer";
  RuntimeOptions runtime;
  SetIntraOpThreads(2);  // as ptq-server --threads 2 sets it at start
  auto session = QuantizationSession::Create(
      (*shared / "models" / "mobilenet_v1_0.25_224_keras_imagenet.pt").string(), config, runtime);
  ASSERT_TRUE(session.ok()) << session.status();
  DataSpec spec;
  spec.path = (*shared / "data" / "imagenet-sample").string();
  spec.preprocess.mean = {127.5f};
  spec.preprocess.std = {127.5f};
  spec.limit = 320;
  ASSERT_TRUE((*session)->Calibrate(**OpenDataset(spec), nullptr, nullptr).ok());
  ASSERT_TRUE((*session)->WriteArtifacts(dir.path().string()).ok());
  const fs::path int8_path = dir.path() / "int8_infer" / "model.pt";
  spec.limit = 0;
  auto accuracy = (*session)->Evaluate(**OpenDataset(spec), nullptr, nullptr, int8_path.string());
  ASSERT_TRUE(accuracy.ok()) << accuracy.status();
  ASSERT_EQ(accuracy->size(), 3u);
  const VariantAccuracy& simulated = (*accuracy)[1];
  const VariantAccuracy& real = (*accuracy)[2];
  std::printf("fp32 %.1f | int8 simulated %.1f | int8 real %.1f | real vs simulated agreement %.1f%% | "
              "images/s fp32 %.0f int8 %.0f\n",
              (*accuracy)[0].top1, simulated.top1, real.top1, real.agreement_with_simulated_top1,
              (*accuracy)[0].images_per_second, real.images_per_second);
  EXPECT_EQ(real.variant, "int8");
  // The simulation computes onednn's integer arithmetic (int8_kernel_math.h); before it did,
  // float accumulation flipped about one rounding in 10^5 outputs, which this small model grew
  // into 1.3% different top-1 answers.
  EXPECT_GE(real.agreement_with_simulated_top1, 99.0);
  EXPECT_LE(std::abs(real.top1 - simulated.top1), 0.3);

  // ONNX Runtime on the QDQ file agrees with our int8 TorchScript on the same real images.
  spec.limit = 256;
  const double agreement = OnnxRuntimeAgreesWithOurInt8(dir.path(), spec);
  // Scales and biases are aligned so ONNX Runtime's QLinearConv computes the same integers
  // as onednn (95.3% before: ONNX Runtime rounds the bias to int32 where onednn keeps it in
  // float, forms the multiplier differently, and an all-zero channel's bias overflowed int32).
  EXPECT_GE(agreement, 98.0);
  ExpectOnnxCheckerAccepts({dir.path() / "int8_infer" / "model.onnx"});
}

// The bundled Fashion-MNIST MobileNetV3-small (trained, committed) on Debian's Fashion-MNIST:
// needs nothing from ../shared.
// The bundled Fashion-MNIST `model` calibrated with `config` on 320 training images, its
// artifacts written to `directory`; accuracy of fp32, simulated and real int8 on `test_images`.
std::vector<VariantAccuracy> CalibrateFashionModel(const std::string& model, const PtqConfig& config,
                                                   const fs::path& directory, int64_t test_images,
                                                   std::string* quant_params) {
  RuntimeOptions runtime;
  SetIntraOpThreads(2);  // as ptq-server --threads 2 sets it at start
  auto session = QuantizationSession::Create((testing::ReferenceModelsDir() / model).string(), config, runtime);
  EXPECT_TRUE(session.ok()) << session.status();
  if (!session.ok()) return {};
  DataSpec spec = testing::FashionMnistSpec("train", 320);
  EXPECT_TRUE((*session)->Calibrate(**OpenDataset(spec), nullptr, nullptr).ok());
  EXPECT_TRUE((*session)->WriteArtifacts(directory.string()).ok());
  *quant_params = *(*session)->QuantParamsJson();
  auto accuracy = (*session)->Evaluate(**OpenDataset(testing::FashionMnistSpec("t10k", test_images)), nullptr, nullptr,
                                       (directory / "int8_infer" / "model.pt").string());
  EXPECT_TRUE(accuracy.ok()) << accuracy.status();
  return accuracy.ok() ? *accuracy : std::vector<VariantAccuracy>();
}

TEST(Int8ExportTest, FashionMnistModelAgreesWithTheSimulationAndOnnxRuntime) {
  testing::TempDir dir;
  PtqConfig config;
  config.fuse = true;
  config.activation_quantizer = "HistQuantizer";
  config.hist_percent = 0.9999;
  std::string quant_params;
  const std::vector<VariantAccuracy> accuracy =
      CalibrateFashionModel("mobilenet_v3_small.pt", config, dir.path(), 2000, &quant_params);
  ASSERT_EQ(accuracy.size(), 3u);
  const VariantAccuracy& simulated = accuracy[1];
  const VariantAccuracy& real = accuracy[2];
  std::printf("Fashion-MNIST MobileNetV3-small, 2000 test images: fp32 %.2f | int8 simulated %.2f | int8 real %.2f | "
              "real vs simulated agreement %.2f%%\n",
              accuracy[0].top1, simulated.top1, real.top1, real.agreement_with_simulated_top1);
  EXPECT_GE(real.agreement_with_simulated_top1, 99.0);
  EXPECT_LE(std::abs(real.top1 - simulated.top1), 0.3);
  EXPECT_GE(OnnxRuntimeAgreesWithOurInt8(dir.path(), testing::FashionMnistSpec("t10k", 512)), 98.0);
}

// A config with no ptq keys on every bundled Fashion-MNIST model: calibrated on 320 training
// images, evaluated on the first 2000 test images (real int8 from the written file).
TEST(Int8ExportTest, DefaultsStayNearFp32OnEveryBundledModel) {
  for (const char* model : {"mobilenet_v1.pt", "mobilenet_v2.pt", "mobilenet_v3_large.pt", "mobilenet_v3_small.pt"}) {
    testing::TempDir dir;
    std::string quant_params;
    const std::vector<VariantAccuracy> accuracy = CalibrateFashionModel(model, PtqConfig(), dir.path(), 2000, &quant_params);
    ASSERT_EQ(accuracy.size(), 3u) << model;
    std::printf("%s, defaults, 2000 test images: fp32 %.2f | int8 simulated %.2f | int8 real %.2f | agreement with fp32 %.2f%%\n",
                model, accuracy[0].top1, accuracy[1].top1, accuracy[2].top1, accuracy[2].agreement_top1);
    EXPECT_LE(accuracy[0].top1 - accuracy[2].top1, 0.5) << model;
    EXPECT_GE(accuracy[2].agreement_top1, 98.0) << model;
  }
}

// Cross-layer equalization (on by default) against the same recipe without it, on the
// Fashion-MNIST MobileNetV3-large with the whole test set: fp32 (its accuracy and its ONNX file)
// is the uploaded model's in both, int8 agrees with it more often with equalization,
// quant_params.json marks the rescaled activations, and the real int8 file computes what the
// equalized simulation does.
TEST(Int8ExportTest, EqualizationRaisesAgreementWithFp32) {
  std::vector<std::vector<VariantAccuracy>> runs;
  std::vector<std::string> fp32_onnx;
  for (const bool equalize : {false, true}) {
    testing::TempDir dir;
    PtqConfig config;
    config.equalize = equalize;
    std::string quant_params;
    runs.push_back(CalibrateFashionModel("mobilenet_v3_large.pt", config, dir.path(), 10000, &quant_params));
    ASSERT_EQ(runs.back().size(), 3u);
    fp32_onnx.push_back(testing::ReadFileBytes(dir.path() / "fp32" / "model.onnx"));
    int equalized = 0;
    const nlohmann::json params = nlohmann::json::parse(quant_params);
    for (const auto& point : params.at("activations")) {
      equalized += point.at("equalized").get<bool>();
    }
    const std::vector<VariantAccuracy>& accuracy = runs.back();
    std::printf("Fashion-MNIST MobileNetV3-large, equalize %s (%d activations rescaled), 10000 test images: "
                "fp32 %.2f | int8 real %.2f | agreement with fp32 %.2f%% | real vs simulated %.2f%%\n",
                equalize ? "on" : "off", equalized, accuracy[0].top1, accuracy[2].top1, accuracy[2].agreement_top1,
                accuracy[2].agreement_with_simulated_top1);
    EXPECT_EQ(equalized > 0, equalize);
    EXPECT_GE(accuracy[2].agreement_with_simulated_top1, 99.0);
  }
  EXPECT_EQ(runs[0][0].top1, runs[1][0].top1);
  EXPECT_TRUE(fp32_onnx[0] == fp32_onnx[1]) << "the fp32 ONNX file is not the uploaded model's";
  EXPECT_GT(runs[1][2].agreement_top1, runs[0][2].agreement_top1);
}

// Per-tensor weights (one scale per layer, for backends without per-channel ones) on the
// Fashion-MNIST MobileNetV2, 2000 test images: without equalization its int8 agrees with fp32
// on about 81% of the whole test set; equalizing weight ranges (on by default) brings it near
// the per-channel result, and the real int8 file computes what the simulation does.
TEST(Int8ExportTest, WeightEqualizationMakesPerTensorWeightsUsable) {
  std::vector<std::vector<VariantAccuracy>> runs;
  for (const bool equalize : {false, true}) {
    testing::TempDir dir;
    PtqConfig config;
    config.weight_quantizer = "AbsmaxQuantizer";
    config.equalize = equalize;
    std::string quant_params;
    runs.push_back(CalibrateFashionModel("mobilenet_v2.pt", config, dir.path(), 2000, &quant_params));
    ASSERT_EQ(runs.back().size(), 3u);
    const std::vector<VariantAccuracy>& accuracy = runs.back();
    std::printf("Fashion-MNIST MobileNetV2, per-tensor weights, equalize %s, 2000 test images: fp32 %.2f | int8 real "
                "%.2f | agreement with fp32 %.2f%% | real vs simulated %.2f%%\n",
                equalize ? "on" : "off", accuracy[0].top1, accuracy[2].top1, accuracy[2].agreement_top1,
                accuracy[2].agreement_with_simulated_top1);
    EXPECT_GE(accuracy[2].agreement_with_simulated_top1, 99.0);
  }
  EXPECT_LT(runs[0][2].agreement_top1, 90.0);
  EXPECT_GE(runs[1][2].agreement_top1, 98.0);
  EXPECT_LE(runs[1][0].top1 - runs[1][2].top1, 0.5);
}

// Learned rounding reaches the artifacts: weights off their nearest code in quant_params.json,
// and the real int8 TorchScript and ONNX files compute what the simulation (which used them)
// computes.
TEST(Int8ExportTest, AdaRoundWeightsReachTheArtifacts) {
  testing::TempDir dir;
  PtqConfig config;
  config.weight_rounding = "adaround";
  config.adaround_iterations = 100;
  std::string quant_params;
  const std::vector<VariantAccuracy> accuracy =
      CalibrateFashionModel("mobilenet_v2.pt", config, dir.path(), 1000, &quant_params);
  ASSERT_EQ(accuracy.size(), 3u);
  int64_t moved = 0, layers = 0;
  const nlohmann::json params = nlohmann::json::parse(quant_params);
  for (const auto& layer : params.at("weights")) {
    moved += layer.at("codes_off_nearest").get<int64_t>();
    ++layers;
  }
  std::printf("Fashion-MNIST MobileNetV2 with AdaRound: %lld weights off their nearest code in %lld layers; fp32 %.2f | "
              "int8 simulated %.2f | int8 real %.2f | real vs simulated agreement %.2f%%\n",
              static_cast<long long>(moved), static_cast<long long>(layers), accuracy[0].top1, accuracy[1].top1,
              accuracy[2].top1, accuracy[2].agreement_with_simulated_top1);
  EXPECT_GT(moved, 0);
  EXPECT_GE(accuracy[2].agreement_with_simulated_top1, 99.0);
  EXPECT_LE(accuracy[0].top1 - accuracy[1].top1, 1.0);
  EXPECT_GE(OnnxRuntimeAgreesWithOurInt8(dir.path(), testing::FashionMnistSpec("t10k", 512)), 98.0);
}

// An accuracy budget on a recipe that loses accuracy (per-tensor weights, which some int8
// backends need, without equalization: on MobileNetV2 they cost 14 points): the most
// sensitive layers stay float until the held-out calibration images
// meet it; the written files follow (quant_params.json names them and why, the int8 file runs
// them in float and still matches the simulation, sensitivity.svg marks them), and on test
// images the model agrees with fp32 more often than the same recipe without the budget.
TEST(Int8ExportTest, AnAccuracyBudgetKeepsTheMostSensitiveLayersInFloat) {
  const char* model = "mobilenet_v2.pt";
  RuntimeOptions runtime;
  SetIntraOpThreads(2);  // as ptq-server --threads 2 sets it at start
  // The same calibration both times: 640 training images, the last 96 held out.
  auto calibrate = [&](const PtqConfig& config) {
    auto session = QuantizationSession::Create((testing::ReferenceModelsDir() / model).string(), config, runtime);
    EXPECT_TRUE(session.ok()) << session.status();
    EXPECT_TRUE((*session)->Calibrate(**OpenDataset(testing::FashionMnistSpec("train", 640)), nullptr, nullptr).ok());
    return *std::move(session);
  };
  auto evaluate = [](QuantizationSession& session, const fs::path& dir) {
    EXPECT_TRUE(session.WriteArtifacts(dir.string()).ok());
    auto accuracy = session.Evaluate(**OpenDataset(testing::FashionMnistSpec("t10k", 2000)), nullptr, nullptr,
                                     (dir / "int8_infer" / "model.pt").string());
    EXPECT_TRUE(accuracy.ok()) << accuracy.status();
    return accuracy.ok() ? *accuracy : std::vector<VariantAccuracy>(3);
  };
  PtqConfig recipe;
  recipe.weight_quantizer = "AbsmaxQuantizer";
  recipe.equalize = false;
  recipe.holdout_batches = 3;
  PtqConfig measured = recipe;
  measured.sensitivity = true;
  testing::TempDir plain_dir;
  const std::vector<VariantAccuracy> plain = evaluate(*calibrate(measured), plain_dir.path());

  PtqConfig budgeted = recipe;
  budgeted.min_agreement = 99;
  const std::unique_ptr<QuantizationSession> session = calibrate(budgeted);
  const std::optional<AccuracyBudgetReport> budget = session->AccuracyBudget();
  ASSERT_TRUE(budget.has_value());
  std::printf("Fashion-MNIST %s, per-tensor weights, 96 held-out images: all int8 agreement %.2f%%, "
              "after the budget %.2f%% with %zu float layers (%.1f%% of MACs) in %d trials:",
              model, budget->all_int8.agreement_top1, budget->result.agreement_top1, budget->float_layers.size(),
              budget->float_mac_percent, budget->trials);
  for (const std::string& layer : budget->float_layers) std::printf(" %s", layer.c_str());
  std::printf("\n");
  EXPECT_EQ(budget->all_int8.images, 96);
  EXPECT_LT(budget->all_int8.agreement_top1, 99.0) << "the recipe no longer needs the budget: pick a harsher one";
  EXPECT_TRUE(budget->met);
  EXPECT_GE(budget->result.agreement_top1, 99.0);
  ASSERT_FALSE(budget->float_layers.empty());
  EXPECT_EQ(budget->trials, static_cast<int>(budget->float_layers.size()));
  EXPECT_GT(budget->float_mac_percent, 0);
  EXPECT_LT(budget->float_mac_percent, 100);

  const std::vector<LayerSensitivity> sensitivity = session->Sensitivity();
  double mac_percent = 0;
  for (const LayerSensitivity& layer : sensitivity) mac_percent += layer.mac_percent;
  EXPECT_NEAR(mac_percent, 100.0, 1e-6) << "every conv/linear is int8 in the all-int8 plan";
  // The split says what this recipe loses accuracy to: its per-tensor weights.
  const std::optional<ErrorSources> sources = session->ErrorSourcesOnHeldOut();
  ASSERT_TRUE(sources.has_value());
  PrintErrorSources(*sources);
  EXPECT_EQ(sources->weights_only.images, 96);
  EXPECT_LT(sources->weights_only.agreement_top1, sources->activations_only.agreement_top1);
  EXPECT_LT(sources->weights_only.logit_sqnr_db, sources->activations_only.logit_sqnr_db);
  EXPECT_EQ(session->HeldOut()->agreement_top1, budget->result.agreement_top1);

  testing::TempDir dir;
  const std::vector<VariantAccuracy> accuracy = evaluate(*session, dir.path());
  const nlohmann::json params = nlohmann::json::parse(*session->QuantParamsJson());
  EXPECT_EQ(params.at("min_agreement"), 99.0);
  std::set<std::string> float_in_params;
  for (const auto& layer : params.at("float_layers")) {
    if (layer.at("reason").get<std::string>().find("accuracy budget") != std::string::npos) {
      float_in_params.insert(layer.at("module_path").get<std::string>());
    }
  }
  EXPECT_EQ(float_in_params, std::set<std::string>(budget->float_layers.begin(), budget->float_layers.end()));
  std::ifstream svg_file(dir.path() / "sensitivity.svg");
  const std::string svg((std::istreambuf_iterator<char>(svg_file)), std::istreambuf_iterator<char>());
  for (const std::string& layer : budget->float_layers) {
    EXPECT_NE(svg.find(">" + layer + " (float)</text>"), std::string::npos) << layer;
  }
  std::printf("2000 test images: fp32 %.2f | without the budget int8 %.2f, agreement %.2f%% | with it int8 %.2f, "
              "agreement %.2f%%, real vs simulated %.2f%%\n",
              accuracy[0].top1, plain[2].top1, plain[2].agreement_top1, accuracy[2].top1, accuracy[2].agreement_top1,
              accuracy[2].agreement_with_simulated_top1);
  EXPECT_GE(accuracy[2].agreement_with_simulated_top1, 99.0);
  EXPECT_GT(accuracy[2].agreement_top1, plain[2].agreement_top1);
}

// activation_quantizer "auto": every quantizer tried from the same histograms and scored on the
// held-out calibration images; the model keeps the best (top-1 agreement, then logit SQNR), and
// quant_params.json says which.
TEST(Int8ExportTest, AutoKeepsTheQuantizerThatAgreesBestOnHeldOutImages) {
  for (const char* model : {"mobilenet_v3_small.pt", "mobilenet_v3_large.pt"}) {
    PtqConfig config;
    config.activation_quantizer = "auto";
    config.holdout_batches = 3;
    RuntimeOptions runtime;
    SetIntraOpThreads(2);  // as ptq-server --threads 2 sets it at start
    auto session = QuantizationSession::Create((testing::ReferenceModelsDir() / model).string(), config, runtime);
    ASSERT_TRUE(session.ok()) << session.status();
    ASSERT_TRUE((*session)->Calibrate(**OpenDataset(testing::FashionMnistSpec("train", 640)), nullptr, nullptr).ok());
    const std::vector<QuantizerTrial> trials = (*session)->ActivationQuantizerTrials();
    ASSERT_EQ(trials.size(), 5u);
    EXPECT_EQ(trials[0].quantizer, "PercentileQuantizer");
    EXPECT_EQ(trials[4].quantizer, "KLQuantizer");
    const QuantizerTrial* best = &trials[0];
    for (const QuantizerTrial& trial : trials) {
      EXPECT_EQ(trial.held_out.images, 96);
      if (trial.held_out.agreement_top1 > best->held_out.agreement_top1 ||
          (trial.held_out.agreement_top1 == best->held_out.agreement_top1 &&
           trial.held_out.logit_sqnr_db > best->held_out.logit_sqnr_db)) {
        best = &trial;
      }
    }
    EXPECT_EQ((*session)->ActivationQuantizerUsed(), best->quantizer);
    EXPECT_EQ((*session)->HeldOut()->logit_sqnr_db, best->held_out.logit_sqnr_db);
    const nlohmann::json params = nlohmann::json::parse(*(*session)->QuantParamsJson());
    EXPECT_EQ(params.at("activation_quantizer"), "auto");
    EXPECT_EQ(params.at("activation_quantizer_used"), best->quantizer);
    for (const auto& point : params.at("activations")) {
      if (point.at("source") == "observed") {
        EXPECT_EQ(point.at("observer"), best->quantizer);
      }
    }
    auto accuracy = (*session)->Evaluate(**OpenDataset(testing::FashionMnistSpec("t10k", 10000)), nullptr, nullptr);
    ASSERT_TRUE(accuracy.ok()) << accuracy.status();
    std::printf("%s auto chose %s; 10000 test images: fp32 %.2f | int8 simulated %.2f | agreement %.2f%%; tried:",
                model, best->quantizer.c_str(), (*accuracy)[0].top1, (*accuracy)[1].top1, (*accuracy)[1].agreement_top1);
    for (const QuantizerTrial& trial : trials) {
      std::printf(" %s %.2f%%/%.1f dB", trial.quantizer.c_str(), trial.held_out.agreement_top1,
                  trial.held_out.logit_sqnr_db);
    }
    std::printf("\n");
    EXPECT_LE((*accuracy)[0].top1 - (*accuracy)[1].top1, 0.5) << model;
  }
}

}  // namespace
}  // namespace ptq::core
