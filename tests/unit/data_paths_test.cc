#include "data_paths.h"

#include <gtest/gtest.h>

#include <fstream>

#include "test_env.h"

namespace ptq::server {
namespace {

namespace fs = std::filesystem;

class DataPathsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(root() / "imagenet" / "val");
    std::ofstream(root() / "imagenet" / "val_list.txt") << "val/a.jpg 0\n";
    fs::create_directories(dir_.path() / "outside");
    fs::create_directory_symlink(dir_.path() / "outside", root() / "leak");
    fs::create_directory_symlink(root() / "imagenet", root() / "alias");
  }
  fs::path root() const { return dir_.path() / "root"; }
  absl::StatusCode Code(const std::string& relative) {
    return ResolveDataPath(root().string(), relative, "calibration.path").status().code();
  }

  testing::TempDir dir_;
};

TEST_F(DataPathsTest, ResolvesPathsInsideTheRoot) {
  absl::StatusOr<fs::path> resolved = ResolveDataPath(root().string(), "imagenet", "calibration.path");
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(*resolved, fs::canonical(root() / "imagenet"));
  // A symlink that stays inside the root is fine; it resolves to its target.
  resolved = ResolveDataPath(root().string(), "alias", "calibration.path");
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(*resolved, fs::canonical(root() / "imagenet"));
  // An IDX prefix names files that share it; its folder must exist.
  EXPECT_TRUE(ResolveDataPath(root().string(), "imagenet/t10k", "calibration.path").ok());
}

TEST_F(DataPathsTest, RefusesEscapesAndNamesTheKey) {
  EXPECT_EQ(Code("/etc"), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Code("../root/imagenet"), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Code("imagenet/../../etc"), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Code("leak"), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Code("leak/file"), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Code("missing/deeper/t10k"), absl::StatusCode::kNotFound);
  EXPECT_EQ(Code(""), absl::StatusCode::kInvalidArgument);
  const absl::Status status = ResolveDataPath(root().string(), "leak", "evaluate.path").status();
  EXPECT_NE(status.message().find("evaluate.path 'leak'"), absl::string_view::npos) << status;
  EXPECT_EQ(ResolveDataPath("", "imagenet", "calibration.path").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace ptq::server
