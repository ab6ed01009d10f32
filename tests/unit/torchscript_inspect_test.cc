#include "ptq/core/torchscript_inspect.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "subprocess.h"
#include "test_env.h"

namespace ptq::core {
namespace {

using ptq::testing::TestModelsDir;

constexpr uint64_t kLimit = uint64_t{1} << 20;  // tiny.pt expands to a few KB

TEST(InspectTorchScriptTest, MissingFileIsNotFound) {
  absl::StatusOr<TorchScriptSummary> summary = InspectTorchScript("/nonexistent/model.pt", "", kLimit);
  EXPECT_TRUE(absl::IsNotFound(summary.status())) << summary.status();
}

TEST(InspectTorchScriptTest, RandomBytesAreRejectedWithTheDisplayName) {
  ptq::testing::TempDir dir;
  const std::string path = (dir.path() / "staging-123").string();
  std::ofstream(path, std::ios::binary) << std::string(4096, '\x5a');
  absl::StatusOr<TorchScriptSummary> summary = InspectTorchScript(path, "user_model.pt", kLimit);
  ASSERT_TRUE(absl::IsInvalidArgument(summary.status())) << summary.status();
  const std::string message(summary.status().message());
  EXPECT_NE(message.find("'user_model.pt' is not a TorchScript file"), std::string::npos)
      << message;
  EXPECT_EQ(message.find("staging-123"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << "backtrace leaked: " << message;
}

TEST(InspectTorchScriptTest, ReadsSchemaAndParameterCountOfARealModel) {
  absl::StatusOr<TorchScriptSummary> summary =
      InspectTorchScript((TestModelsDir() / "tiny.pt").string(), "", kLimit);
  ASSERT_TRUE(summary.ok()) << summary.status();
  // conv 3->8 3x3 without bias: 216; BatchNorm weight and bias: 16; linear 8->10: 90.
  EXPECT_EQ(summary->parameter_count, 216 + 16 + 90);
  EXPECT_NE(summary->forward_schema.find("forward("), std::string::npos);
  EXPECT_NE(summary->forward_schema.find("Tensor x"), std::string::npos) << summary->forward_schema;
}

TEST(InspectTorchScriptTest, ModelsThatCouldActOnTheServerAreRefusedNamingWhatTheyDo) {
  for (const auto& [file, expected] : std::vector<std::pair<std::string, std::string>>{
           {"reads_file.pt", "'model.pt' calls aten::from_file, which ptq-service does not run"},
           {"reads_file_on_load.pt", "'model.pt' defines __setstate__ (in code/__torch__.py)"}}) {
    absl::StatusOr<TorchScriptSummary> summary =
        InspectTorchScript((TestModelsDir() / file).string(), "model.pt", kLimit);
    ASSERT_TRUE(absl::IsInvalidArgument(summary.status())) << file << ": " << summary.status();
    EXPECT_NE(summary.status().message().find(expected), absl::string_view::npos) << summary.status();
  }
}

TEST(InspectTorchScriptTest, EveryBundledAndTestClassifierPassesTheOperatorAllowList) {
  int checked = 0;
  for (const std::filesystem::path& dir : {TestModelsDir(), ptq::testing::ReferenceModelsDir()}) {
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      const std::string file = entry.path().filename().string();
      if (entry.path().extension() != ".pt" || file.rfind("reads_file", 0) == 0) continue;
      absl::StatusOr<TorchScriptSummary> summary = InspectTorchScript(entry.path().string(), "", uint64_t{1} << 30);
      EXPECT_TRUE(summary.ok()) << file << ": " << summary.status();
      ++checked;
    }
  }
  EXPECT_GE(checked, 14);
}

// Regression: a 4 MB file holding one deflated 4 GiB entry was accepted and inflated.
TEST(InspectTorchScriptTest, ArchivesExpandingBeyondTheLimitAreRefusedBeforeLoading) {
  ptq::testing::TempDir dir;
  const std::string path = (dir.path() / "bomb.pt").string();
  const ptq::testing::ProcessResult made = ptq::testing::RunProcess(
      {"/usr/bin/python3", "-c",
       "import sys, zipfile\n"
       "with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:\n"
       "    z.writestr('bomb/data.pkl', b'x')\n"
       "    z.writestr('bomb/data/0', bytes(8 << 20))\n",
       path});
  ASSERT_EQ(made.exit_code, 0) << made.stderr_text;
  ASSERT_LT(std::filesystem::file_size(path), 64u << 10);
  absl::StatusOr<TorchScriptSummary> summary = InspectTorchScript(path, "bomb.pt", kLimit);
  ASSERT_TRUE(absl::IsInvalidArgument(summary.status())) << summary.status();
  EXPECT_NE(summary.status().message().find(
                "'bomb.pt' expands to more than 1048576 bytes (its entry 'bomb/data/0' alone to 8388608)"),
            absl::string_view::npos)
      << summary.status();
}

}  // namespace
}  // namespace ptq::core
