#ifndef PTQ_CORE_SRC_CALIBRATION_FINGERPRINT_H_
#define PTQ_CORE_SRC_CALIBRATION_FINGERPRINT_H_

#include <string>

#include "ptq/common/sha256.h"
#include "ptq/core/dataset.h"

namespace ptq::core {

// Passes another source's batches through unchanged while hashing them: SHA-256 over each
// batch's shape (four little-endian int64) and float values, in order. Two jobs calibrated on
// the same images, preprocessed the same way and batched the same way, get the same
// fingerprint; labels do not count (calibration never reads them).
class FingerprintingSource : public BatchSource {
 public:
  explicit FingerprintingSource(BatchSource& source) : source_(source) {}

  int64_t num_images() const override { return source_.num_images(); }
  int64_t num_batches() const override { return source_.num_batches(); }
  absl::StatusOr<bool> Next(Batch* batch) override;

  // Lowercase hex digest of every batch Next returned. Call once, after the last batch.
  std::string HexDigest() { return hash_.HexDigest(); }

 private:
  BatchSource& source_;
  Sha256 hash_;
};

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_CALIBRATION_FINGERPRINT_H_
