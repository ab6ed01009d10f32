#ifndef PTQ_CORE_IN_MEMORY_BATCHES_H_
#define PTQ_CORE_IN_MEMORY_BATCHES_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ptq/core/batch.h"
#include "ptq/core/dataset.h"
#include "ptq/core/preprocess.h"

namespace ptq::core {

// Batches that arrive over the network (StreamCalibrationBatch): float32 NCHW tensors, checked
// against the model input, or encoded images, decoded and preprocessed with the job's spec.
// Not thread-safe; one stream fills it, then the job reads it.
class InMemoryBatches {
 public:
  // `spec` gives the expected sample shape {channels, size, size} and the preprocessing of
  // encoded images. It must pass ValidatePreprocessSpec.
  explicit InMemoryBatches(PreprocessSpec spec);

  // Images one streamed tensor may hold: a calibration batch is at most 4096 images too.
  static constexpr int64_t kMaxImagesPerBatch = 4096;

  // `float32_le` holds prod(shape) little-endian floats. INVALID_ARGUMENT when the shape is not
  // {N in [1, kMaxImagesPerBatch], C, H, W} of the model input, the byte count does not match,
  // a value is NaN or Inf, or labels are given but not one per image.
  absl::Status AddTensor(const std::vector<int64_t>& shape, absl::string_view float32_le,
                         std::vector<int32_t> labels);
  // INVALID_ARGUMENT naming the image's position in the stream when one does not decode.
  absl::Status AddEncodedImages(const std::vector<std::string>& images, std::vector<int32_t> labels);

  int64_t num_batches() const { return static_cast<int64_t>(batches_.size()); }
  int64_t num_images() const { return num_images_; }

  // The batches as a file and back, so that a stream job's data outlives a restart. SpoolTo
  // writes `path` whole or not at all (a temporary beside it, then a rename): RESOURCE_EXHAUSTED
  // on a full disk. LoadSpooled checks every batch against `spec` as AddTensor does, and says
  // DATA_LOSS for a file that is cut short or not a spool.
  absl::Status SpoolTo(const std::string& path) const;
  static absl::StatusOr<std::unique_ptr<InMemoryBatches>> LoadSpooled(const std::string& path, PreprocessSpec spec);

  // A pass over the batches received so far, in arrival order. `limit` > 0 stops after that
  // many images (cutting the last batch). The source shares the data; keep adding is fine.
  std::unique_ptr<BatchSource> Source(int64_t limit = 0,
                                      const std::atomic<bool>* cancelled = nullptr) const;

 private:
  absl::Status CheckLabels(const std::vector<int32_t>& labels, int64_t images) const;
  void Append(Batch batch);

  PreprocessSpec spec_;
  std::vector<std::shared_ptr<const Batch>> batches_;
  int64_t num_images_ = 0;
};

}  // namespace ptq::core

#endif  // PTQ_CORE_IN_MEMORY_BATCHES_H_
