#include "job_config_file.h"

#include <gtest/gtest.h>

#include <fstream>

#include "test_env.h"

namespace ptq::client {
namespace {

TEST(JobConfigFileTest, NestingDepthIgnoresBracketsInStrings) {
  EXPECT_EQ(JsonNestingDepth(R"({"a": [1, {"b": "[[[{"}]})"), 3u);
  EXPECT_EQ(JsonNestingDepth(R"({"a": "\"[", "b": [[]]})"), 3u);
  EXPECT_EQ(JsonNestingDepth("42"), 0u);
}

// Regressions: a config nested 200,000 deep crashed ptq-client, and a directory given as
// --config aborted it.
TEST(JobConfigFileTest, DeepOversizedAndNonRegularConfigsAreErrors) {
  testing::TempDir dir;
  const std::filesystem::path deep = dir.path() / "deep.json";
  std::ofstream(deep) << "{\"name\": " << std::string(200000, '[') << std::string(200000, ']') << "}";
  absl::StatusOr<LocalJobConfig> parsed = LoadJobConfig(deep.string());
  EXPECT_TRUE(absl::IsInvalidArgument(parsed.status())) << parsed.status();
  EXPECT_NE(parsed.status().message().find("nested 200001 levels deep"), absl::string_view::npos) << parsed.status();

  const std::filesystem::path large = dir.path() / "large.json";
  std::ofstream(large) << "{\"name\": \"" << std::string(kMaxConfigBytes, 'n') << "\"}";
  parsed = LoadJobConfig(large.string());
  EXPECT_NE(parsed.status().message().find("a job config may have at most"), absl::string_view::npos)
      << parsed.status();

  parsed = LoadJobConfig(dir.path().string());
  EXPECT_TRUE(absl::IsInvalidArgument(parsed.status())) << parsed.status();
  EXPECT_NE(parsed.status().message().find("not a regular file"), absl::string_view::npos) << parsed.status();
  parsed = LoadJobConfig((dir.path() / "absent.json").string());
  EXPECT_NE(parsed.status().message().find("no such config file"), absl::string_view::npos) << parsed.status();
}

}  // namespace
}  // namespace ptq::client
