#include "ptq/core/in_memory_batches.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

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

std::unique_ptr<BatchSource> InMemoryBatches::Source(int64_t limit,
                                                     const std::atomic<bool>* cancelled) const {
  return std::make_unique<StoredBatchSource>(batches_, limit, cancelled);
}

}  // namespace ptq::core
