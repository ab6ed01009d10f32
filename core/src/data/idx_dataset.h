#ifndef PTQ_CORE_SRC_DATA_IDX_DATASET_H_
#define PTQ_CORE_SRC_DATA_IDX_DATASET_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/image_loader.h"
#include "ptq/core/preprocess.h"

namespace ptq::core {

// The contents of an IDX images file (magic 0x00000803: unsigned bytes, 3 dimensions).
struct IdxImages {
  int64_t in_file = 0;  // images the file holds
  int64_t count = 0;    // images read (the first ones)
  int rows = 0;
  int cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols, row-major
};

// Reads an IDX file, gzip-compressed or raw: its first `limit` images, every image when 0.
// INVALID_ARGUMENT naming the file for a wrong magic number or a file shorter than its header
// says; NOT_FOUND when it cannot be opened.
absl::StatusOr<IdxImages> ReadIdxImages(const std::string& path, int64_t limit = 0);
// Labels file (magic 0x00000801: unsigned bytes, 1 dimension).
absl::StatusOr<std::vector<uint8_t>> ReadIdxLabels(const std::string& path);

// Finds the images and labels files for `path`: an images file ("...-images-idx3-ubyte[.gz]",
// labels beside it as "...-labels-idx1-ubyte[.gz]") or a prefix such as "fashion-mnist/t10k".
struct IdxFiles {
  std::filesystem::path images;
  std::filesystem::path labels;
};
absl::StatusOr<IdxFiles> ResolveIdxFiles(const std::filesystem::path& path);

// MNIST-style grayscale images, replicated to the spec's channels and resized to its size;
// with a `limit`, only the first `limit` images are read. With `confine_to`, both files must
// resolve below that folder (CheckConfined).
class IdxLoader : public ImageLoader {
 public:
  static absl::StatusOr<std::unique_ptr<IdxLoader>> Open(const std::filesystem::path& path,
                                                         const PreprocessSpec& spec, int num_classes,
                                                         int64_t limit = 0,
                                                         const std::filesystem::path& confine_to = {});

  int64_t size() const override { return images_.count; }
  absl::Status Load(int64_t index, float* out, int32_t* label) const override;

 private:
  IdxLoader(IdxImages images, std::vector<uint8_t> labels, PreprocessSpec spec);

  IdxImages images_;
  std::vector<uint8_t> labels_;
  PreprocessSpec spec_;
};

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_DATA_IDX_DATASET_H_
