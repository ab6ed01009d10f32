#include "idx_dataset.h"

#include <zlib.h>

#include <array>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "image_preprocess.h"

namespace ptq::core {
namespace fs = std::filesystem;
namespace {

constexpr uint32_t kImagesMagic = 0x00000803;  // unsigned byte data, 3 dimensions
constexpr uint32_t kLabelsMagic = 0x00000801;  // unsigned byte data, 1 dimension

// Whole file, inflated when gzip-compressed (zlib reads raw files unchanged).
absl::StatusOr<std::vector<uint8_t>> ReadMaybeGzipped(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) return absl::NotFoundError(absl::StrCat("cannot open IDX file '", path, "'"));
  std::vector<uint8_t> bytes;
  std::array<uint8_t, 1 << 16> buffer;
  int read = 0;
  while ((read = gzread(file, buffer.data(), buffer.size())) > 0) {
    bytes.insert(bytes.end(), buffer.begin(), buffer.begin() + read);
  }
  const bool failed = read < 0;
  gzclose(file);
  if (failed) return absl::InvalidArgumentError(absl::StrCat("IDX file '", path, "' is corrupt"));
  return bytes;
}

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Checks the magic number and that the data after a header of `dims` sizes is complete;
// returns the sizes.
absl::StatusOr<std::vector<int64_t>> CheckIdxHeader(const std::vector<uint8_t>& bytes,
                                                    uint32_t magic, int dims,
                                                    const std::string& path) {
  const size_t header_bytes = 4 + 4 * static_cast<size_t>(dims);
  if (bytes.size() < header_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("IDX file '", path, "' is too short for a header"));
  }
  if (BigEndian32(bytes.data()) != magic) {
    return absl::InvalidArgumentError(absl::StrCat(
        "IDX file '", path, "': magic number 0x", absl::Hex(BigEndian32(bytes.data()), absl::kZeroPad8),
        ", expected 0x", absl::Hex(magic, absl::kZeroPad8)));
  }
  std::vector<int64_t> sizes;
  int64_t expected = 1;
  for (int d = 0; d < dims; ++d) {
    sizes.push_back(BigEndian32(bytes.data() + 4 + 4 * d));
    expected *= sizes.back();
  }
  if (static_cast<int64_t>(bytes.size() - header_bytes) < expected) {
    return absl::InvalidArgumentError(absl::StrCat("IDX file '", path, "' is truncated: ",
                                                   bytes.size() - header_bytes, " data bytes, header says ",
                                                   expected));
  }
  return sizes;
}

fs::path FirstExisting(const std::vector<fs::path>& candidates) {
  for (const fs::path& candidate : candidates) {
    std::error_code error;
    if (fs::is_regular_file(candidate, error)) return candidate;
  }
  return {};
}

}  // namespace

absl::StatusOr<IdxImages> ReadIdxImages(const std::string& path) {
  absl::StatusOr<std::vector<uint8_t>> bytes = ReadMaybeGzipped(path);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<std::vector<int64_t>> sizes = CheckIdxHeader(*bytes, kImagesMagic, 3, path);
  if (!sizes.ok()) return sizes.status();
  IdxImages images;
  images.count = (*sizes)[0];
  images.rows = static_cast<int>((*sizes)[1]);
  images.cols = static_cast<int>((*sizes)[2]);
  images.pixels.assign(bytes->begin() + 16,
                       bytes->begin() + 16 + images.count * images.rows * images.cols);
  return images;
}

absl::StatusOr<std::vector<uint8_t>> ReadIdxLabels(const std::string& path) {
  absl::StatusOr<std::vector<uint8_t>> bytes = ReadMaybeGzipped(path);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<std::vector<int64_t>> sizes = CheckIdxHeader(*bytes, kLabelsMagic, 1, path);
  if (!sizes.ok()) return sizes.status();
  return std::vector<uint8_t>(bytes->begin() + 8, bytes->begin() + 8 + (*sizes)[0]);
}

absl::StatusOr<IdxFiles> ResolveIdxFiles(const fs::path& path) {
  IdxFiles files;
  std::error_code error;
  if (fs::is_regular_file(path, error)) {
    const std::string name = path.filename().string();
    if (!absl::StrContains(name, "images-idx3")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "IDX images file '", path.string(), "' should be named like *-images-idx3-ubyte[.gz]"));
    }
    files.images = path;
    files.labels = path.parent_path() / absl::StrReplaceAll(name, {{"images-idx3", "labels-idx1"}});
  } else {
    const std::string prefix = path.string();
    files.images = FirstExisting({prefix + "-images-idx3-ubyte.gz", prefix + "-images-idx3-ubyte"});
    files.labels = FirstExisting({prefix + "-labels-idx1-ubyte.gz", prefix + "-labels-idx1-ubyte"});
    if (files.images.empty()) {
      return absl::NotFoundError(absl::StrCat(
          "no IDX dataset at '", prefix, "': expected a *-images-idx3-ubyte[.gz] file or a prefix "
          "such as 'fashion-mnist/t10k'"));
    }
  }
  if (files.labels.empty() || !fs::is_regular_file(files.labels, error)) {
    return absl::NotFoundError(
        absl::StrCat("IDX labels file for '", files.images.string(), "' not found"));
  }
  return files;
}

IdxLoader::IdxLoader(IdxImages images, std::vector<uint8_t> labels, PreprocessSpec spec)
    : images_(std::move(images)), labels_(std::move(labels)), spec_(std::move(spec)) {}

absl::StatusOr<std::unique_ptr<IdxLoader>> IdxLoader::Open(const fs::path& path,
                                                           const PreprocessSpec& spec,
                                                           int num_classes) {
  absl::StatusOr<IdxFiles> files = ResolveIdxFiles(path);
  if (!files.ok()) return files.status();
  absl::StatusOr<IdxImages> images = ReadIdxImages(files->images.string());
  if (!images.ok()) return images.status();
  absl::StatusOr<std::vector<uint8_t>> labels = ReadIdxLabels(files->labels.string());
  if (!labels.ok()) return labels.status();
  if (static_cast<int64_t>(labels->size()) != images->count) {
    return absl::InvalidArgumentError(absl::StrCat("IDX '", files->labels.string(), "' has ",
                                                   labels->size(), " labels for ", images->count,
                                                   " images"));
  }
  if (num_classes > 0) {
    for (size_t i = 0; i < labels->size(); ++i) {
      if ((*labels)[i] >= num_classes) {
        return absl::InvalidArgumentError(absl::StrCat("IDX '", files->labels.string(), "' label #", i,
                                                       " is ", (*labels)[i], ", outside [0, ",
                                                       num_classes, ")"));
      }
    }
  }
  return std::unique_ptr<IdxLoader>(new IdxLoader(*std::move(images), *std::move(labels), spec));
}

absl::Status IdxLoader::Load(int64_t index, float* out, int32_t* label) const {
  const int64_t plane = int64_t{images_.rows} * images_.cols;
  const cv::Mat image(images_.rows, images_.cols, CV_8UC1,
                      const_cast<uint8_t*>(images_.pixels.data() + index * plane));
  PreprocessDecoded(image, spec_, out);
  *label = labels_[static_cast<size_t>(index)];
  return absl::OkStatus();
}

}  // namespace ptq::core
