#include "data/idx_dataset.h"

#include <zlib.h>

#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "data/confined_path.h"
#include "data/image_preprocess.h"

namespace ptq::core {
namespace fs = std::filesystem;
namespace {

constexpr uint32_t kImagesMagic = 0x00000803;  // unsigned byte data, 3 dimensions
constexpr uint32_t kLabelsMagic = 0x00000801;  // unsigned byte data, 1 dimension
constexpr int64_t kMaxIdxItemBytes = int64_t{4096} * 4096;  // one image of at most 4096 x 4096
constexpr int64_t kIdxReadChunkBytes = int64_t{16} << 20;

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Reads up to `size` bytes; how many it got, or -1 on a decompression error.
int64_t ReadUpTo(gzFile file, uint8_t* out, int64_t size) {
  int64_t done = 0;
  while (done < size) {
    const int chunk = static_cast<int>(std::min<int64_t>(size - done, 1 << 30));
    const int read = gzread(file, out + done, static_cast<unsigned>(chunk));
    if (read < 0) return -1;
    if (read == 0) break;
    done += read;
  }
  return done;
}

struct IdxContents {
  std::vector<int64_t> sizes;  // as the header gives them
  std::vector<uint8_t> data;   // the first items, row-major
};

// The header of `dims` sizes and the first `limit` items (all when 0) of an IDX file, inflated
// when gzip-compressed (zlib reads raw files unchanged). Only what is asked for is inflated:
// calibration takes a few hundred of Fashion-MNIST's 60,000 training images.
absl::StatusOr<IdxContents> ReadIdx(const std::string& path, uint32_t magic, int dims, int64_t limit) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) return absl::NotFoundError(absl::StrCat("cannot open IDX file '", path, "'"));
  absl::Cleanup close = [file] { gzclose(file); };
  std::vector<uint8_t> header(4 + 4 * static_cast<size_t>(dims));
  const int64_t header_read = ReadUpTo(file, header.data(), static_cast<int64_t>(header.size()));
  if (header_read < 0) return absl::InvalidArgumentError(absl::StrCat("IDX file '", path, "' is corrupt"));
  if (header_read < static_cast<int64_t>(header.size())) {
    return absl::InvalidArgumentError(absl::StrCat("IDX file '", path, "' is too short for a header"));
  }
  if (BigEndian32(header.data()) != magic) {
    return absl::InvalidArgumentError(absl::StrCat(
        "IDX file '", path, "': magic number 0x", absl::Hex(BigEndian32(header.data()), absl::kZeroPad8),
        ", expected 0x", absl::Hex(magic, absl::kZeroPad8)));
  }
  IdxContents contents;
  int64_t item_bytes = 1;
  for (int d = 0; d < dims; ++d) {
    contents.sizes.push_back(BigEndian32(header.data() + 4 + 4 * d));
    // Checked before each product: sizes of 2^32 - 1 would overflow it.
    if (d > 0 && (contents.sizes.back() == 0 || contents.sizes.back() > kMaxIdxItemBytes / item_bytes)) {
      return absl::InvalidArgumentError(absl::StrCat("IDX file '", path, "': items of ",
                                                     absl::StrJoin(contents.sizes.begin() + 1, contents.sizes.end(), " x "),
                                                     " bytes; 1 to ", kMaxIdxItemBytes, " are read"));
    }
    if (d > 0) item_bytes *= contents.sizes.back();
  }
  const int64_t items = limit > 0 ? std::min(limit, contents.sizes[0]) : contents.sizes[0];
  // Read in chunks, so the buffer grows with the bytes the file really holds, not with what
  // its header claims: a header promising terabytes finds the truncation after one chunk.
  const int64_t wanted = items * item_bytes;
  while (static_cast<int64_t>(contents.data.size()) < wanted) {
    const int64_t before = static_cast<int64_t>(contents.data.size());
    const int64_t chunk = std::min<int64_t>(wanted - before, kIdxReadChunkBytes);
    contents.data.resize(static_cast<size_t>(before + chunk));
    const int64_t read = ReadUpTo(file, contents.data.data() + before, chunk);
    if (read < 0) return absl::InvalidArgumentError(absl::StrCat("IDX file '", path, "' is corrupt"));
    if (read < chunk) {
      return absl::InvalidArgumentError(absl::StrCat("IDX file '", path, "' is truncated: ", before + read,
                                                     " data bytes where the header promises ",
                                                     contents.sizes[0] * item_bytes));
    }
  }
  return contents;
}

fs::path FirstExisting(const std::vector<fs::path>& candidates) {
  for (const fs::path& candidate : candidates) {
    std::error_code error;
    if (fs::is_regular_file(candidate, error)) return candidate;
  }
  return {};
}

}  // namespace

absl::StatusOr<IdxImages> ReadIdxImages(const std::string& path, int64_t limit) {
  absl::StatusOr<IdxContents> contents = ReadIdx(path, kImagesMagic, 3, limit);
  if (!contents.ok()) return contents.status();
  IdxImages images;
  images.in_file = contents->sizes[0];
  images.rows = static_cast<int>(contents->sizes[1]);
  images.cols = static_cast<int>(contents->sizes[2]);
  images.count = static_cast<int64_t>(contents->data.size()) / std::max<int64_t>(1, int64_t{images.rows} * images.cols);
  images.pixels = std::move(contents->data);
  return images;
}

absl::StatusOr<std::vector<uint8_t>> ReadIdxLabels(const std::string& path) {
  absl::StatusOr<IdxContents> contents = ReadIdx(path, kLabelsMagic, 1, 0);
  if (!contents.ok()) return contents.status();
  return std::move(contents->data);
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

absl::StatusOr<std::unique_ptr<IdxLoader>> IdxLoader::Open(const fs::path& path, const PreprocessSpec& spec,
                                                           int num_classes, int64_t limit,
                                                           const fs::path& confine_to) {
  absl::StatusOr<IdxFiles> files = ResolveIdxFiles(path);
  if (!files.ok()) return files.status();
  for (const fs::path& file : {files->images, files->labels}) {
    if (absl::Status confined = CheckConfined(file, confine_to); !confined.ok()) return confined;
  }
  absl::StatusOr<IdxImages> images = ReadIdxImages(files->images.string(), limit);
  if (!images.ok()) return images.status();
  absl::StatusOr<std::vector<uint8_t>> labels = ReadIdxLabels(files->labels.string());
  if (!labels.ok()) return labels.status();
  if (static_cast<int64_t>(labels->size()) != images->in_file) {
    return absl::InvalidArgumentError(absl::StrCat("IDX '", files->labels.string(), "' has ",
                                                   labels->size(), " labels for ", images->in_file,
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
  if (absl::Status status = PreprocessDecoded(image, spec_, absl::StrCat("IDX image ", index), out); !status.ok()) {
    return status;
  }
  *label = labels_[static_cast<size_t>(index)];
  return absl::OkStatus();
}

}  // namespace ptq::core
