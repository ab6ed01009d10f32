#include "data/imagenet_folder.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "data/confined_path.h"
#include "ptq/core/batch.h"
#include "ptq/core/preprocess.h"

namespace ptq::core {
namespace fs = std::filesystem;
namespace {

constexpr char kListFile[] = "val_list.txt";
// Larger than any encoding of an image within kMaxImagePixels (an uncompressed 3-channel BMP
// of 64 Mi pixels is 192 MiB).
constexpr uintmax_t kMaxImageFileBytes = uintmax_t{256} << 20;

absl::StatusOr<std::string> ReadImageFile(const fs::path& path, const std::string& what) {
  std::error_code error;
  const uintmax_t size = fs::file_size(path, error);
  if (error) return absl::NotFoundError(absl::StrCat(what, " cannot be read: ", error.message()));
  if (size > kMaxImageFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is ", size, " bytes; image files of at most ", kMaxImageFileBytes, " bytes are read"));
  }
  std::ifstream file(path, std::ios::binary);
  std::string bytes(static_cast<size_t>(size), '\0');
  if (!file.read(bytes.data(), static_cast<std::streamsize>(size))) {
    return absl::DataLossError(absl::StrCat(what, " could not be read to its end"));
  }
  return bytes;
}

// Dataset entries must stay inside the dataset folder: no absolute paths, no "..".
bool StaysInside(const std::string& relative_path) {
  const fs::path path(relative_path);
  if (path.is_absolute()) return false;
  for (const fs::path& part : path) {
    if (part == "..") return false;
  }
  return true;
}

// Calibration needs no labels: a folder without val_list.txt offers every image file below it
// (these extensions, any case), in path order.
constexpr char kImageExtensions[] = ".jpg .jpeg .png .bmp .pgm .ppm .pnm .webp";

bool IsImageFile(const fs::path& path) {
  const std::string extension = absl::AsciiStrToLower(path.extension().string());
  return !extension.empty() && absl::StrContains(absl::StrCat(kImageExtensions, " "), extension + " ");
}

// Every image file below `root`, unlabelled, sorted by path. A symbolic link counts only when
// it resolves below `confine_to` (when set), like the files a list names.
absl::StatusOr<std::vector<ListedImage>> ListImageFiles(const fs::path& root, const fs::path& confine_to) {
  std::vector<ListedImage> images;
  std::error_code error;
  for (fs::recursive_directory_iterator entry(root, error), end; !error && entry != end; entry.increment(error)) {
    std::error_code type_error;
    if (!entry->is_regular_file(type_error) || !IsImageFile(entry->path())) continue;
    if (entry->is_symlink(type_error) && !confine_to.empty()) {
      if (absl::Status confined = CheckConfined(entry->path(), confine_to); !confined.ok()) return confined;
    }
    images.push_back({fs::relative(entry->path(), root).string(), kNoLabel, 0});
  }
  if (error) return absl::NotFoundError(absl::StrCat("cannot list '", root.string(), "': ", error.message()));
  if (images.empty()) {
    return absl::NotFoundError(absl::StrCat("dataset '", root.string(), "' has no ", kListFile, " and no image files (",
                                            kImageExtensions, ")"));
  }
  std::sort(images.begin(), images.end(),
            [](const ListedImage& a, const ListedImage& b) { return a.relative_path < b.relative_path; });
  return images;
}

}  // namespace

absl::StatusOr<std::vector<ListedImage>> ParseImageList(const std::string& text,
                                                        const std::string& list_name,
                                                        int num_classes) {
  std::vector<ListedImage> images;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    const std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    const std::string where = absl::StrCat(list_name, " line ", line_number);
    int32_t label = 0;
    if (fields.size() != 2 || !absl::SimpleAtoi(fields[1], &label)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": expected \"FILE LABEL\", got \"", line, "\""));
    }
    if (label < 0 || (num_classes > 0 && label >= num_classes)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": label ", label, " is outside [0, ",
                                                     num_classes > 0 ? absl::StrCat(num_classes) : "inf", ")"));
    }
    if (!StaysInside(std::string(fields[0]))) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": \"", fields[0], "\" leaves the dataset folder"));
    }
    images.push_back(ListedImage{std::string(fields[0]), label, line_number});
  }
  return images;
}

ImageNetFolderLoader::ImageNetFolderLoader(fs::path root, std::vector<ListedImage> images,
                                           PreprocessSpec spec)
    : root_(std::move(root)), images_(std::move(images)), spec_(std::move(spec)) {}

absl::StatusOr<std::unique_ptr<ImageNetFolderLoader>> ImageNetFolderLoader::Open(const fs::path& root,
                                                                                 const PreprocessSpec& spec,
                                                                                 int num_classes,
                                                                                 const fs::path& confine_to,
                                                                                 bool require_labels) {
  const fs::path list_path = root / kListFile;
  std::error_code exists_error;
  if (fs::exists(list_path, exists_error)) {
    if (absl::Status confined = CheckConfined(list_path, confine_to); !confined.ok()) return confined;
  } else if (!require_labels && fs::is_directory(root, exists_error)) {
    absl::StatusOr<std::vector<ListedImage>> images = ListImageFiles(root, confine_to);
    if (!images.ok()) return images.status();
    return std::unique_ptr<ImageNetFolderLoader>(new ImageNetFolderLoader(root, *std::move(images), spec));
  }
  std::ifstream list(list_path);
  if (!list) {
    return absl::NotFoundError(absl::StrCat("dataset '", root.string(), "' has no ", kListFile));
  }
  std::stringstream text;
  text << list.rdbuf();
  absl::StatusOr<std::vector<ListedImage>> images =
      ParseImageList(text.str(), list_path.string(), num_classes);
  if (!images.ok()) return images.status();
  if (images->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(list_path.string(), " lists no images"));
  }
  for (const ListedImage& image : *images) {
    std::error_code error;
    if (!fs::is_regular_file(root / image.relative_path, error)) {
      return absl::NotFoundError(absl::StrCat(list_path.string(), " line ", image.line, ": '",
                                              image.relative_path, "' does not exist"));
    }
    if (absl::Status confined = CheckConfined(root / image.relative_path, confine_to); !confined.ok()) {
      return absl::Status(confined.code(), absl::StrCat(list_path.string(), " line ", image.line, ": ",
                                                        confined.message()));
    }
  }
  return std::unique_ptr<ImageNetFolderLoader>(
      new ImageNetFolderLoader(root, *std::move(images), spec));
}

absl::Status ImageNetFolderLoader::Load(int64_t index, float* out, int32_t* label) const {
  const ListedImage& image = images_[static_cast<size_t>(index)];
  const fs::path path = root_ / image.relative_path;
  const std::string what = image.line == 0 ? absl::StrCat("'", path.string(), "'")
                                           : absl::StrCat("'", path.string(), "' (", kListFile, " line ", image.line, ")");
  absl::StatusOr<std::string> encoded = ReadImageFile(path, what);
  if (!encoded.ok()) return encoded.status();
  // Decoded from memory so that its header's size is checked before OpenCV decodes it.
  if (absl::Status status = DecodeAndPreprocess(*encoded, spec_, what, out); !status.ok()) return status;
  *label = image.label;
  return absl::OkStatus();
}

}  // namespace ptq::core
