#include "ptq/common/file_write.h"

#include <gtest/gtest.h>

#include "test_env.h"

namespace ptq {
namespace {

TEST(FileWriteTest, WritesAndTruncates) {
  testing::TempDir dir;
  const std::filesystem::path path = dir.path() / "out.bin";
  ASSERT_TRUE(WriteFileContents(path, std::string("longer text\0!", 13)).ok());
  EXPECT_EQ(testing::ReadFileBytes(path), std::string("longer text\0!", 13));
  ASSERT_TRUE(WriteFileContents(path, "short").ok());
  EXPECT_EQ(testing::ReadFileBytes(path), "short");
}

// /dev/full answers every write with ENOSPC, as a full state volume does.
TEST(FileWriteTest, AFullDiskIsResourceExhaustedNamingTheFile) {
  const absl::Status full = WriteFileContents("/dev/full", std::string(1 << 16, 'x'));
  EXPECT_TRUE(absl::IsResourceExhausted(full)) << full;
  EXPECT_NE(full.message().find("'/dev/full': No space left on device"), absl::string_view::npos) << full;
  const absl::Status missing = WriteFileContents("/no/such/folder/file", "x");
  EXPECT_TRUE(absl::IsInternal(missing)) << missing;
  EXPECT_NE(missing.message().find("/no/such/folder/file"), absl::string_view::npos) << missing;
}

}  // namespace
}  // namespace ptq
