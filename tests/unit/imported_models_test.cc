#include "graph/imported_models.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "graph/torchscript_import.h"
#include "ptq/core/in_memory_batches.h"
#include "ptq/core/quantization_session.h"
#include "test_env.h"

namespace ptq::core {
namespace {

namespace fs = std::filesystem;

// Every weight tensor of `a` equals `b`'s, value for value.
void ExpectSameWeights(const Graph& a, const Graph& b) {
  ASSERT_EQ(a.nodes.size(), b.nodes.size());
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    const Node& x = a.nodes[i];
    const Node& y = b.nodes[i];
    EXPECT_EQ(x.kind, y.kind) << Describe(x);
    for (auto [p, q] : {std::pair{&x.weight, &y.weight}, std::pair{&x.bias, &y.bias},
                        std::pair{&x.running_mean, &y.running_mean}, std::pair{&x.running_var, &y.running_var}}) {
      ASSERT_EQ(p->defined(), q->defined()) << Describe(x);
      if (p->defined()) {
        EXPECT_TRUE(at::equal(*p, *q)) << Describe(x);
      }
    }
  }
}

// A whole session on a remembered MobileNetV2 (BatchNorm folded, calibrated with bias
// correction, exported) must leave the remembered graph as the file has it, since the next
// job on the model starts from it; the second import is answered from memory.
TEST(ImportedModelsTest, ASessionLeavesTheRememberedGraphAlone) {
  const std::string path = (testing::TestModelsDir() / "mobilenet_v2.pt").string();
  PtqConfig config;
  config.fuse = true;
  auto session = QuantizationSession::Create(path, config, {});
  ASSERT_TRUE(session.ok()) << session.status();
  PreprocessSpec spec;
  spec.size = 32;
  spec.resize_short = 32;
  InMemoryBatches data(spec);
  at::manual_seed(0);
  const at::Tensor images = at::randn({8, 3, 32, 32});
  ASSERT_TRUE(data.AddTensor({8, 3, 32, 32},
                             std::string(reinterpret_cast<const char*>(images.data_ptr<float>()), images.nbytes()), {})
                  .ok());
  ASSERT_TRUE((*session)->Calibrate(*data.Source(), nullptr, nullptr).ok());
  testing::TempDir out;
  ASSERT_TRUE((*session)->WriteArtifacts(out.path().string()).ok());

  const int64_t hits_before = ImportedModelHits();
  absl::StatusOr<Graph> remembered = ImportTorchScriptOnce(path);
  ASSERT_TRUE(remembered.ok());
  EXPECT_EQ(ImportedModelHits(), hits_before + 1);
  absl::StatusOr<Graph> fresh = ImportTorchScript(path);
  ASSERT_TRUE(fresh.ok());
  ExpectSameWeights(*remembered, *fresh);
}

// A file rewritten in place is imported again, not answered with the old graph.
TEST(ImportedModelsTest, ARewrittenFileIsImportedAfresh) {
  testing::TempDir dir;
  const fs::path path = dir.path() / "model.pt";
  fs::copy_file(testing::TestModelsDir() / "tiny.pt", path);
  absl::StatusOr<Graph> first = ImportTorchScriptOnce(path.string());
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->nodes.size(), ImportTorchScriptOnce(path.string())->nodes.size());

  fs::copy_file(testing::TestModelsDir() / "mobilenet_v3_small.pt", path, fs::copy_options::overwrite_existing);
  const int64_t hits_before = ImportedModelHits();
  absl::StatusOr<Graph> rewritten = ImportTorchScriptOnce(path.string());
  ASSERT_TRUE(rewritten.ok());
  EXPECT_EQ(ImportedModelHits(), hits_before);
  ExpectSameWeights(*rewritten, *ImportTorchScript(path.string()));

  fs::remove(path);
  EXPECT_TRUE(absl::IsNotFound(ImportTorchScriptOnce(path.string()).status()));
}

}  // namespace
}  // namespace ptq::core
