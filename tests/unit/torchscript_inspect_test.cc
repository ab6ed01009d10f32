#include "ptq/core/torchscript_inspect.h"

#include <gtest/gtest.h>

#include <fstream>

#include "test_env.h"

namespace ptq::core {
namespace {

using ptq::testing::TestModelsDir;

TEST(InspectTorchScriptTest, MissingFileIsNotFound) {
  absl::StatusOr<TorchScriptSummary> summary = InspectTorchScript("/nonexistent/model.pt");
  EXPECT_TRUE(absl::IsNotFound(summary.status())) << summary.status();
}

TEST(InspectTorchScriptTest, RandomBytesAreRejectedWithTheDisplayName) {
  ptq::testing::TempDir dir;
  const std::string path = (dir.path() / "staging-123").string();
  std::ofstream(path, std::ios::binary) << std::string(4096, '\x5a');
  absl::StatusOr<TorchScriptSummary> summary = InspectTorchScript(path, "user_model.pt");
  ASSERT_TRUE(absl::IsInvalidArgument(summary.status())) << summary.status();
  const std::string message(summary.status().message());
  EXPECT_NE(message.find("'user_model.pt' is not a TorchScript file"), std::string::npos)
      << message;
  EXPECT_EQ(message.find("staging-123"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << "backtrace leaked: " << message;
}

TEST(InspectTorchScriptTest, ReadsSchemaAndParameterCountOfARealModel) {
  absl::StatusOr<TorchScriptSummary> summary =
      InspectTorchScript((TestModelsDir() / "tiny.pt").string());
  ASSERT_TRUE(summary.ok()) << summary.status();
  // conv 3->8 3x3 without bias: 216; BatchNorm weight and bias: 16; linear 8->10: 90.
  EXPECT_EQ(summary->parameter_count, 216 + 16 + 90);
  EXPECT_NE(summary->forward_schema.find("forward("), std::string::npos);
  EXPECT_NE(summary->forward_schema.find("Tensor x"), std::string::npos) << summary->forward_schema;
}

}  // namespace
}  // namespace ptq::core
