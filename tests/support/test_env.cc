#include "test_env.h"

#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace ptq::testing {
namespace fs = std::filesystem;

std::string ServerBinary() { return PTQ_SERVER_BIN; }
std::string ClientBinary() { return PTQ_CLIENT_BIN; }
fs::path TestModelsDir() { return PTQ_TEST_MODELS_DIR; }
fs::path ReferenceModelsDir() { return PTQ_REFERENCE_MODELS_DIR; }
fs::path TestDataDir() { return PTQ_TEST_DATA_DIR; }
fs::path FixturesDir() { return PTQ_FIXTURES_DIR; }
fs::path FashionMnistDir() { return "/usr/share/datasets/fashion-mnist"; }

void CopyFashionMnistTestSet(const fs::path& folder) {
  fs::create_directories(folder);
  for (const char* file : {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}) {
    fs::copy_file(FashionMnistDir() / file, folder / file);
  }
}

std::optional<fs::path> SharedDir() {
  const char* from_env = std::getenv("PTQ_SHARED_DIR");
  const fs::path dir = from_env != nullptr ? fs::path(from_env) : fs::path(PTQ_DEFAULT_SHARED_DIR);
  std::error_code error;
  if (fs::is_directory(dir, error)) return fs::canonical(dir);
  return std::nullopt;
}

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "ptq-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

std::string ReadFileBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

std::vector<std::string> ListFiles(const fs::path& dir) {
  std::vector<std::string> files;
  std::error_code error;
  for (auto it = fs::recursive_directory_iterator(dir, error);
       !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (it->is_regular_file()) files.push_back(fs::relative(it->path(), dir).string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace ptq::testing
