#include "ptq/core/in_memory_batches.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ptq/common/file_write.h"

namespace ptq::core {
namespace {

// Replays shared batches; copies each one out because callers own what Next fills.
class StoredBatchSource : public BatchSource {
 public:
  StoredBatchSource(std::vector<std::shared_ptr<const Batch>> batches, int64_t limit,
                    const std::atomic<bool>* cancelled)
      : batches_(std::move(batches)), cancelled_(cancelled) {
    for (const auto& batch : batches_) total_ += batch->size();
    if (limit > 0) total_ = std::min(total_, limit);
  }

  int64_t num_images() const override { return total_; }
  int64_t num_batches() const override {
    int64_t batches = 0, images = 0;
    for (const auto& batch : batches_) {
      if (images >= total_) break;
      images += batch->size();
      ++batches;
    }
    return batches;
  }

  absl::StatusOr<bool> Next(Batch* batch) override {
    if (cancelled_ != nullptr && cancelled_->load()) {
      return absl::CancelledError("data loading cancelled");
    }
    if (next_ >= batches_.size() || yielded_ >= total_) return false;
    const Batch& stored = *batches_[next_++];
    const int64_t take = std::min(stored.size(), total_ - yielded_);
    const int64_t sample_numel = stored.size() == 0 ? 0 : static_cast<int64_t>(stored.data.size()) / stored.size();
    batch->shape = stored.shape;
    batch->shape[0] = take;
    batch->data.assign(stored.data.begin(), stored.data.begin() + take * sample_numel);
    batch->labels.assign(stored.labels.begin(), stored.labels.begin() + take);
    yielded_ += take;
    return true;
  }

 private:
  std::vector<std::shared_ptr<const Batch>> batches_;
  const std::atomic<bool>* cancelled_;
  int64_t total_ = 0;
  int64_t yielded_ = 0;
  size_t next_ = 0;
};

}  // namespace

InMemoryBatches::InMemoryBatches(PreprocessSpec spec)
    : spec_(std::move(spec)) {}

absl::Status InMemoryBatches::CheckLabels(const std::vector<int32_t>& labels, int64_t images) const {
  if (!labels.empty() && static_cast<int64_t>(labels.size()) != images) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch has ", labels.size(), " labels for ", images, " images"));
  }
  return absl::OkStatus();
}

void InMemoryBatches::Append(Batch batch) {
  if (batch.labels.empty()) batch.labels.assign(static_cast<size_t>(batch.size()), kNoLabel);
  num_images_ += batch.size();
  batches_.push_back(std::make_shared<const Batch>(std::move(batch)));
}

absl::Status InMemoryBatches::AddTensor(const std::vector<int64_t>& shape,
                                        absl::string_view float32_le, std::vector<int32_t> labels) {
  const std::vector<int64_t> expected = {spec_.channels, spec_.size, spec_.size};
  if (shape.size() != 4 || shape[0] < 1 || shape[0] > kMaxImagesPerBatch ||
      !std::equal(expected.begin(), expected.end(), shape.begin() + 1)) {
    return absl::InvalidArgumentError(absl::StrCat("tensor shape [", absl::StrJoin(shape, ", "),
                                                   "] does not match the model input [N, ",
                                                   absl::StrJoin(expected, ", "), "] with N in [1, ",
                                                   kMaxImagesPerBatch, "]"));
  }
  const int64_t values = shape[0] * spec_.sample_numel();
  if (static_cast<int64_t>(float32_le.size()) != values * 4) {
    return absl::InvalidArgumentError(absl::StrCat("tensor data has ", float32_le.size(),
                                                   " bytes, shape [", absl::StrJoin(shape, ", "),
                                                   "] needs ", values * 4));
  }
  if (absl::Status status = CheckLabels(labels, shape[0]); !status.ok()) return status;
  Batch batch;
  batch.shape = shape;
  batch.data.resize(static_cast<size_t>(values));
  std::memcpy(batch.data.data(), float32_le.data(), float32_le.size());  // x86: little-endian
  const auto non_finite = std::find_if(batch.data.begin(), batch.data.end(), [](float v) { return !std::isfinite(v); });
  if (non_finite != batch.data.end()) {
    return absl::InvalidArgumentError(absl::StrCat("tensor value ", non_finite - batch.data.begin(), " is ",
                                                   *non_finite, ": calibration data must be finite"));
  }
  batch.labels = std::move(labels);
  Append(std::move(batch));
  return absl::OkStatus();
}

absl::Status InMemoryBatches::AddEncodedImages(const std::vector<std::string>& images,
                                               std::vector<int32_t> labels) {
  const int64_t count = static_cast<int64_t>(images.size());
  if (count == 0) return absl::InvalidArgumentError("batch has no images");
  if (absl::Status status = CheckLabels(labels, count); !status.ok()) return status;
  Batch batch;
  batch.shape = {count, spec_.channels, spec_.size, spec_.size};
  batch.data.resize(static_cast<size_t>(count * spec_.sample_numel()));
  for (int64_t i = 0; i < count; ++i) {
    absl::Status decoded =
        DecodeAndPreprocess(images[static_cast<size_t>(i)], spec_,
                            absl::StrCat("image ", num_images_ + i, " of the stream"),
                            batch.data.data() + i * spec_.sample_numel());
    if (!decoded.ok()) return decoded;
  }
  batch.labels = std::move(labels);
  Append(std::move(batch));
  return absl::OkStatus();
}

// Spool file: kSpoolMagic, then per batch its four int64 shape entries, its N int32 labels and
// its float32 values, in host byte order (the file never leaves the machine that wrote it).
constexpr absl::string_view kSpoolMagic("PTQSPOOL1\n", 10);

absl::Status InMemoryBatches::SpoolTo(const std::string& path) const {
  std::vector<absl::string_view> parts = {kSpoolMagic};
  for (const std::shared_ptr<const Batch>& batch : batches_) {
    parts.emplace_back(reinterpret_cast<const char*>(batch->shape.data()), batch->shape.size() * sizeof(int64_t));
    parts.emplace_back(reinterpret_cast<const char*>(batch->labels.data()), batch->labels.size() * sizeof(int32_t));
    parts.emplace_back(reinterpret_cast<const char*>(batch->data.data()), batch->data.size() * sizeof(float));
  }
  const std::string temporary = path + ".tmp";
  if (absl::Status written = WriteFileParts(temporary, parts); !written.ok()) {
    std::remove(temporary.c_str());
    return written;
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(temporary.c_str());
    return absl::InternalError(absl::StrCat("cannot rename '", temporary, "' to '", path, "': ", reason));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<InMemoryBatches>> InMemoryBatches::LoadSpooled(const std::string& path,
                                                                             PreprocessSpec spec) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));
  const auto cut = [&path](const std::string& what) {
    return absl::DataLossError(absl::StrCat("'", path, "' is not a whole calibration spool: ", what));
  };
  std::string magic(kSpoolMagic.size(), '\0');
  if (!file.read(magic.data(), static_cast<std::streamsize>(magic.size())) || magic != kSpoolMagic) {
    return cut("no header");
  }
  auto batches = std::make_unique<InMemoryBatches>(std::move(spec));
  while (file.peek() != std::char_traits<char>::eof()) {
    std::vector<int64_t> shape(4);
    if (!file.read(reinterpret_cast<char*>(shape.data()), 4 * sizeof(int64_t))) return cut("a batch's shape");
    if (shape[0] < 1 || shape[0] > kMaxImagesPerBatch) return cut(absl::StrCat("a batch of ", shape[0], " images"));
    std::vector<int32_t> labels(static_cast<size_t>(shape[0]));
    if (!file.read(reinterpret_cast<char*>(labels.data()), static_cast<std::streamsize>(labels.size() * sizeof(int32_t)))) {
      return cut("a batch's labels");
    }
    const int64_t values = shape[0] * batches->spec_.sample_numel();
    std::string data(static_cast<size_t>(values) * sizeof(float), '\0');
    if (!file.read(data.data(), static_cast<std::streamsize>(data.size()))) return cut("a batch's values");
    if (absl::Status added = batches->AddTensor(shape, data, std::move(labels)); !added.ok()) {
      return absl::DataLossError(absl::StrCat("'", path, "': ", added.message()));
    }
  }
  return batches;
}

std::unique_ptr<BatchSource> InMemoryBatches::Source(int64_t limit,
                                                     const std::atomic<bool>* cancelled) const {
  return std::make_unique<StoredBatchSource>(batches_, limit, cancelled);
}

}  // namespace ptq::core
