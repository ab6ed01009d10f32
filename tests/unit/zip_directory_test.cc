#include "graph/zip_directory.h"

#include <gtest/gtest.h>

#include <string>

#include "subprocess.h"
#include "test_env.h"

namespace ptq::core {
namespace {

// An archive Python's zipfile writes: "a.txt" (5 stored bytes) and "zeros" (1000 deflated
// zero bytes). With `zip64`, zipfile's limits are lowered so that it writes the ZIP64 end
// records and every size in ZIP64 extra fields, as it would for a file over 4 GiB.
std::string PythonZip(bool zip64) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "archive.zip").string();
  const testing::ProcessResult made = testing::RunProcess(
      {"/usr/bin/python3", "-c",
       "import sys, zipfile\n"
       "if sys.argv[2] == '1': zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = 4, 1\n"
       "with zipfile.ZipFile(sys.argv[1], 'w') as z:\n"
       "    z.writestr('a.txt', b'hello')\n"
       "    z.writestr('zeros', bytes(1000), compress_type=zipfile.ZIP_DEFLATED)\n",
       path, zip64 ? "1" : "0"});
  EXPECT_EQ(made.exit_code, 0) << made.stderr_text;
  return testing::ReadFileBytes(path);
}

absl::StatusOr<std::vector<ZipEntry>> Read(const std::string& archive) {
  return ReadZipDirectory(
      [&archive](uint64_t offset, uint64_t size) {
        return offset >= archive.size() ? std::string() : archive.substr(offset, size);
      },
      archive.size());
}

TEST(ZipDirectoryTest, ReadsNamesMethodsAndSizes) {
  for (const bool zip64 : {false, true}) {
    const std::string archive = PythonZip(zip64);
    EXPECT_EQ(archive.find("PK\x06\x06") != std::string::npos, zip64) << "the ZIP64 end record";
    absl::StatusOr<std::vector<ZipEntry>> entries = Read(archive);
    ASSERT_TRUE(entries.ok()) << entries.status();
    ASSERT_EQ(entries->size(), 2u);
    EXPECT_EQ((*entries)[0].name, "a.txt");
    EXPECT_EQ((*entries)[0].method, 0);
    EXPECT_EQ((*entries)[0].uncompressed_size, 5u);
    EXPECT_EQ((*entries)[0].compressed_size, 5u);
    EXPECT_EQ((*entries)[1].name, "zeros");
    EXPECT_EQ((*entries)[1].method, 8);
    EXPECT_EQ((*entries)[1].uncompressed_size, 1000u);
    EXPECT_LT((*entries)[1].compressed_size, 100u);
  }
}

TEST(ZipDirectoryTest, MalformedArchivesSayWhat) {
  const std::string archive = PythonZip(false);
  EXPECT_NE(Read("short").status().message().find("shorter than an end record"), absl::string_view::npos);
  EXPECT_NE(Read(std::string(4096, 'z')).status().message().find("no end-of-central-directory record"),
            absl::string_view::npos);
  // The end record is the last 22 bytes; its directory offset (bytes 16..19) made huge.
  std::string moved = archive;
  moved[moved.size() - 22 + 19] = '\x7f';
  EXPECT_NE(Read(moved).status().message().find("lies outside the file"), absl::string_view::npos);
  // Its entry count (bytes 10..11) made 3.
  std::string counted = archive;
  counted[counted.size() - 22 + 10] = 3;
  EXPECT_NE(Read(counted).status().message().find("announces 3 entries, the directory holds 2"),
            absl::string_view::npos)
      << Read(counted).status();
}

}  // namespace
}  // namespace ptq::core
