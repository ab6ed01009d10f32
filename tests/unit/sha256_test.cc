#include "ptq/common/sha256.h"

#include <gtest/gtest.h>

#include <fstream>

#include "test_env.h"

namespace ptq {
namespace {

// Reference digests from FIPS 180-2's examples and `sha256sum`.
constexpr char kEmptyDigest[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kAbcDigest[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

TEST(Sha256Test, EmptyInput) { EXPECT_EQ(Sha256Hex(""), kEmptyDigest); }

TEST(Sha256Test, KnownVector) { EXPECT_EQ(Sha256Hex("abc"), kAbcDigest); }

TEST(Sha256Test, IncrementalEqualsOneShot) {
  Sha256 hasher;
  hasher.Update("a");
  hasher.Update("");
  hasher.Update("bc");
  EXPECT_EQ(hasher.HexDigest(), kAbcDigest);
}

TEST(Sha256Test, FileLargerThanOneReadBuffer) {
  testing::TempDir dir;
  const std::string content(200000, 'x');  // spans several 64 KiB reads
  const std::string path = (dir.path() / "blob").string();
  std::ofstream(path, std::ios::binary) << content;
  absl::StatusOr<std::string> digest = Sha256OfFile(path);
  ASSERT_TRUE(digest.ok()) << digest.status();
  EXPECT_EQ(*digest, Sha256Hex(content));
}

TEST(Sha256Test, MissingFileIsNotFound) {
  absl::StatusOr<std::string> digest = Sha256OfFile("/nonexistent/file");
  EXPECT_TRUE(absl::IsNotFound(digest.status())) << digest.status();
  EXPECT_NE(digest.status().message().find("/nonexistent/file"), absl::string_view::npos);
}

TEST(Sha256Test, RecognisesHexDigests) {
  EXPECT_TRUE(IsSha256Hex(kAbcDigest));
  EXPECT_FALSE(IsSha256Hex(""));
  EXPECT_FALSE(IsSha256Hex(std::string(kAbcDigest).substr(1)));  // 63 digits
  std::string upper = kAbcDigest;
  upper[0] = 'B';
  EXPECT_FALSE(IsSha256Hex(upper));
  std::string not_hex = kAbcDigest;
  not_hex[10] = 'g';
  EXPECT_FALSE(IsSha256Hex(not_hex));
}

}  // namespace
}  // namespace ptq
