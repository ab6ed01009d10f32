#include "local_dataset.h"

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ptq::client {
namespace {

namespace fs = std::filesystem;

// Image files sent as they are, each with a label or kNoLabel (-1).
class ImageFiles : public LocalDataset {
 public:
  // The seed's layout: FOLDER/val_list.txt with "val/FILE LABEL" lines.
  static absl::StatusOr<std::unique_ptr<LocalDataset>> OpenList(const fs::path& folder) {
    std::ifstream list(folder / "val_list.txt");
    if (!list) return absl::InvalidArgumentError(absl::StrCat("'", folder.string(), "' has no val_list.txt"));
    auto dataset = std::make_unique<ImageFiles>();
    std::string line;
    for (int number = 1; std::getline(list, line); ++number) {
      if (line.empty()) continue;
      std::istringstream fields(line);
      std::string file;
      int32_t label = 0;
      if (!(fields >> file >> label)) {
        return absl::InvalidArgumentError(
            absl::StrCat((folder / "val_list.txt").string(), " line ", number, ": expected 'FILE LABEL'"));
      }
      dataset->files_.push_back(folder / file);
      dataset->labels_.push_back(label);
    }
    return dataset;
  }

  // A plain folder of images without labels (calibration needs none): every file below it
  // with an image extension, in path order, so the same folder always gives the same batches.
  static absl::StatusOr<std::unique_ptr<LocalDataset>> OpenUnlabelled(const fs::path& folder) {
    auto dataset = std::make_unique<ImageFiles>();
    std::error_code error;
    for (fs::recursive_directory_iterator entry(folder, error), end; !error && entry != end; entry.increment(error)) {
      if (entry->is_regular_file(error) && IsImageFile(entry->path())) dataset->files_.push_back(entry->path());
    }
    if (error) return absl::InvalidArgumentError(absl::StrCat("cannot list '", folder.string(), "': ", error.message()));
    if (dataset->files_.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("'", folder.string(), "' has no val_list.txt and no image files (",
                                                     kImageExtensions, ")"));
    }
    std::sort(dataset->files_.begin(), dataset->files_.end());
    dataset->labels_.assign(dataset->files_.size(), -1);
    return dataset;
  }

  int64_t size() const override { return static_cast<int64_t>(files_.size()); }

  absl::Status AddTo(int64_t first, int64_t count, v1::CalibrationBatch* batch) const override {
    for (int64_t i = first; i < first + count && i < size(); ++i) {
      std::ifstream in(files_[i], std::ios::binary);
      if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", files_[i].string(), "'"));
      std::stringstream bytes;
      bytes << in.rdbuf();
      batch->mutable_images()->add_images(bytes.str());
      batch->add_labels(labels_[i]);
    }
    return absl::OkStatus();
  }

 private:
  static constexpr char kImageExtensions[] = ".jpg .jpeg .png .bmp .pgm .ppm .pnm .webp";

  static bool IsImageFile(const fs::path& path) {
    const std::string extension = absl::AsciiStrToLower(path.extension().string());
    return !extension.empty() && absl::StrContains(absl::StrCat(kImageExtensions, " "), extension + " ");
  }

  std::vector<fs::path> files_;
  std::vector<int32_t> labels_;
};

// gzip or raw: zlib reads both.
absl::StatusOr<std::string> ReadMaybeGzipped(const fs::path& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) return absl::NotFoundError(absl::StrCat("cannot read '", path.string(), "'"));
  std::string bytes;
  char buffer[1 << 16];
  int read;
  while ((read = gzread(file, buffer, sizeof(buffer))) > 0) bytes.append(buffer, read);
  gzclose(file);
  if (read < 0) return absl::InvalidArgumentError(absl::StrCat("'", path.string(), "' is not readable gzip"));
  return bytes;
}

uint32_t BigEndian(const std::string& bytes, size_t offset) {
  return (uint32_t{static_cast<unsigned char>(bytes[offset])} << 24) |
         (uint32_t{static_cast<unsigned char>(bytes[offset + 1])} << 16) |
         (uint32_t{static_cast<unsigned char>(bytes[offset + 2])} << 8) |
         uint32_t{static_cast<unsigned char>(bytes[offset + 3])};
}

// MNIST's IDX format: images file (magic 0x803, N, rows, cols, pixels) and labels file
// (magic 0x801, N, labels).
class IdxImages : public LocalDataset {
 public:
  static absl::StatusOr<std::unique_ptr<LocalDataset>> Open(const std::string& path) {
    fs::path images_path = FindImages(path);
    if (images_path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", path, "' is neither an ImageNet folder (val_list.txt) nor IDX images (FILE or PREFIX-images-idx3-ubyte[.gz])"));
    }
    auto dataset = std::make_unique<IdxImages>();
    absl::StatusOr<std::string> images = ReadMaybeGzipped(images_path);
    if (!images.ok()) return images.status();
    if (images->size() < 16 || BigEndian(*images, 0) != 0x803) {
      return absl::InvalidArgumentError(absl::StrCat("'", images_path.string(), "' is not an IDX images file"));
    }
    dataset->count_ = BigEndian(*images, 4);
    dataset->rows_ = BigEndian(*images, 8);
    dataset->cols_ = BigEndian(*images, 12);
    if (images->size() != 16 + uint64_t{dataset->count_} * dataset->rows_ * dataset->cols_) {
      return absl::InvalidArgumentError(absl::StrCat("'", images_path.string(), "' is truncated"));
    }
    dataset->pixels_ = images->substr(16);
    std::string labels_name = images_path.filename().string();
    labels_name.replace(labels_name.find("images-idx3"), 11, "labels-idx1");
    absl::StatusOr<std::string> labels = ReadMaybeGzipped(images_path.parent_path() / labels_name);
    if (labels.ok() && labels->size() == 8 + dataset->count_ && BigEndian(*labels, 0) == 0x801) {
      dataset->labels_ = labels->substr(8);
    }
    return dataset;
  }

  int64_t size() const override { return count_; }

  absl::Status AddTo(int64_t first, int64_t count, v1::CalibrationBatch* batch) const override {
    const size_t pixels = size_t{rows_} * cols_;
    const std::string header = absl::StrCat("P5\n", cols_, " ", rows_, "\n255\n");
    for (int64_t i = first; i < first + count && i < size(); ++i) {
      batch->mutable_images()->add_images(header + pixels_.substr(i * pixels, pixels));
      batch->add_labels(labels_.empty() ? -1 : static_cast<unsigned char>(labels_[i]));
    }
    return absl::OkStatus();
  }

 private:
  static fs::path FindImages(const std::string& path) {
    std::error_code error;
    if (fs::is_regular_file(path, error) && fs::path(path).filename().string().find("images-idx3") != std::string::npos) {
      return path;
    }
    for (const char* suffix : {"-images-idx3-ubyte.gz", "-images-idx3-ubyte"}) {
      if (fs::is_regular_file(path + suffix, error)) return path + suffix;
    }
    return {};
  }

  uint32_t count_ = 0, rows_ = 0, cols_ = 0;
  std::string pixels_;
  std::string labels_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<LocalDataset>> LocalDataset::Open(const std::string& path, const std::string& format) {
  std::error_code error;
  const bool folder = fs::is_directory(path, error);
  if (format == "imagenet") return ImageFiles::OpenList(path);
  if (format.empty() && folder) {
    return fs::exists(fs::path(path) / "val_list.txt", error) ? ImageFiles::OpenList(path)
                                                               : ImageFiles::OpenUnlabelled(path);
  }
  if (format == "idx" || format.empty()) return IdxImages::Open(path);
  return absl::InvalidArgumentError(absl::StrCat("calibration.format must be \"imagenet\" or \"idx\", got \"", format, "\""));
}

}  // namespace ptq::client
