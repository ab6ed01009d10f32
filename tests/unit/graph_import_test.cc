#include <gtest/gtest.h>
#include <torch/script.h>

#include "graph/executor.h"
#include "graph/torchscript_import.h"
#include "test_env.h"

namespace ptq::core {
namespace {

namespace fs = std::filesystem;

// Max |IR fp32 output - TorchScript output| on a fixed random batch.
float ImportedVersusTorchScript(const fs::path& model_path, int64_t size) {
  absl::StatusOr<Graph> graph = ImportTorchScript(model_path.string());
  EXPECT_TRUE(graph.ok()) << graph.status();
  if (!graph.ok()) return INFINITY;
  torch::jit::Module module = torch::jit::load(model_path.string());
  module.eval();
  torch::NoGradGuard no_grad;
  at::manual_seed(1);
  const at::Tensor input = at::randn({2, 3, size, size});
  const at::Tensor expected = module.forward({input}).toTensor();
  const at::Tensor actual = RunGraph(*graph, input);
  EXPECT_EQ(actual.sizes(), expected.sizes());
  return (actual - expected).abs().max().item<float>();
}

class TorchvisionImportTest : public ::testing::TestWithParam<const char*> {};

TEST_P(TorchvisionImportTest, Fp32IrReproducesTorchScript) {
  const fs::path path = testing::TestModelsDir() / (std::string(GetParam()) + ".pt");
  EXPECT_LE(ImportedVersusTorchScript(path, 96), 1e-4f);
}

INSTANTIATE_TEST_SUITE_P(Models, TorchvisionImportTest,
                         ::testing::Values("mobilenet_v2", "mobilenet_v2_traced",
                                           "mobilenet_v3_large", "mobilenet_v3_small", "resnet18"));

TEST(GraphImportTest, SharedMobileNetV1WithAsymmetricPadding) {
  const std::optional<fs::path> shared = testing::SharedDir();
  if (!shared) GTEST_SKIP() << "../shared is not present: skipping the real MobileNetV1 import";
  const fs::path path = *shared / "models" / "mobilenet_v1_0.25_224_keras_imagenet.pt";
  EXPECT_LE(ImportedVersusTorchScript(path, 224), 1e-4f);
  absl::StatusOr<Graph> graph = ImportTorchScript(path.string());
  ASSERT_TRUE(graph.ok());
  int pads = 0, convs = 0, batch_norms = 0;
  for (const Node& node : graph->nodes) {
    pads += node.kind == OpKind::kPad;
    convs += node.kind == OpKind::kConv2d;
    batch_norms += node.kind == OpKind::kBatchNorm;
  }
  EXPECT_EQ(pads, 5);          // ZeroPad2d((0, 1, 0, 1)) before each of the 5 stride-2 3x3 convs
  EXPECT_EQ(convs, 28);        // 27 conv-BN layers + the 1x1 conv classifier
  EXPECT_EQ(batch_norms, 27);  // freezing keeps BatchNorm for the fuse pass to decide
}

TEST(GraphImportTest, ModulePathsComeFromTheCallStack) {
  absl::StatusOr<Graph> graph =
      ImportTorchScript((testing::TestModelsDir() / "mobilenet_v3_large.pt").string());
  ASSERT_TRUE(graph.ok()) << graph.status();
  std::vector<std::string> paths;
  for (const Node& node : graph->nodes) paths.push_back(node.module_path);
  EXPECT_NE(std::find(paths.begin(), paths.end(), "features.4.block.2.fc1"), paths.end());
  EXPECT_NE(std::find(paths.begin(), paths.end(), "classifier.3"), paths.end());
}

// Freezing folds constants, which would run aten::from_file("/etc/hostname") itself: the
// allow-list refuses the model before.
TEST(GraphImportTest, OperatorsOffTheAllowListAreRefusedBeforeFreezing) {
  absl::StatusOr<Graph> graph = ImportTorchScript((testing::TestModelsDir() / "reads_file.pt").string());
  ASSERT_TRUE(absl::IsInvalidArgument(graph.status())) << graph.status();
  EXPECT_NE(graph.status().message().find("calls aten::from_file, which ptq-service does not run"),
            absl::string_view::npos)
      << graph.status();
  graph = ImportTorchScript((testing::TestModelsDir() / "reads_file_on_load.pt").string());
  ASSERT_TRUE(absl::IsInvalidArgument(graph.status())) << graph.status();
  EXPECT_NE(graph.status().message().find("defines __setstate__"), absl::string_view::npos) << graph.status();
}

TEST(GraphImportTest, UnsupportedOpNamesOpModuleAndSource) {
  absl::StatusOr<Graph> graph =
      ImportTorchScript((testing::TestModelsDir() / "unsupported_op.pt").string());
  ASSERT_TRUE(absl::IsInvalidArgument(graph.status())) << graph.status();
  const std::string message(graph.status().message());
  EXPECT_NE(message.find("unsupported op 'aten::sin'"), std::string::npos) << message;
  EXPECT_NE(message.find("in module 'act'"), std::string::npos) << message;
  // The source line is the one in the TorchScript file's own serialized code.
  EXPECT_NE(message.find("(code/__torch__.py:"), std::string::npos) << message;
}

// Regression: the import used to drop every conditional raise, so a model that refuses every
// input was quantized and its job SUCCEEDED.
TEST(GraphImportTest, RaiseOnTensorValuesIsRefusedNotDropped) {
  absl::StatusOr<Graph> graph = ImportTorchScript((testing::TestModelsDir() / "raises_on_values.pt").string());
  ASSERT_TRUE(absl::IsInvalidArgument(graph.status())) << graph.status();
  const std::string message(graph.status().message());
  EXPECT_NE(message.find("prim::If"), std::string::npos) << message;
  EXPECT_NE(message.find("control flow"), std::string::npos) << message;
}

TEST(GraphImportTest, ShapeAssertionsAreDroppedAndTheRestMatches) {
  EXPECT_LT(ImportedVersusTorchScript(testing::TestModelsDir() / "shape_assertion.pt", 16), 1e-5);
}

TEST(GraphImportTest, MissingAndNonTorchScriptFiles) {
  EXPECT_TRUE(absl::IsNotFound(ImportTorchScript("/no/such/model.pt").status()));
  absl::Status junk =
      ImportTorchScript((testing::TestDataDir() / "texture_120x90.jpg").string()).status();
  EXPECT_TRUE(absl::IsInvalidArgument(junk)) << junk;
}

}  // namespace
}  // namespace ptq::core
