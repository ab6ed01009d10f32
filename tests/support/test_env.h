#ifndef PTQ_TESTS_SUPPORT_TEST_ENV_H_
#define PTQ_TESTS_SUPPORT_TEST_ENV_H_

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ptq::testing {

// Built binaries and generated fixtures, as CMake wired them in.
std::string ServerBinary();
std::string ClientBinary();
// Models written by tests/fixtures/make_tiny_model.py (the test_models CTest fixture).
std::filesystem::path TestModelsDir();
// The bundled reference models trained on Fashion-MNIST (models/fashion_mnist).
std::filesystem::path ReferenceModelsDir();
// Committed inputs (tests/data) and helper scripts (tests/fixtures).
std::filesystem::path TestDataDir();
std::filesystem::path FixturesDir();
// Debian's dataset-fashion-mnist, which deploy/install-deps.sh installs.
std::filesystem::path FashionMnistDir();
// Copies Fashion-MNIST's test set (images and labels) into `folder`, creating it: the
// "fashion-mnist" folder of a server data root.
void CopyFashionMnistTestSet(const std::filesystem::path& folder);

// ../shared beside the checkout (or $PTQ_SHARED_DIR) when it exists. Tests that need real data
// skip, saying so, when it is absent.
std::optional<std::filesystem::path> SharedDir();

// A fresh empty folder under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A whole file's bytes ("" when it cannot be read).
std::string ReadFileBytes(const std::filesystem::path& path);

// Every regular file under `dir`, as paths relative to it, sorted.
std::vector<std::string> ListFiles(const std::filesystem::path& dir);

}  // namespace ptq::testing

#endif  // PTQ_TESTS_SUPPORT_TEST_ENV_H_
