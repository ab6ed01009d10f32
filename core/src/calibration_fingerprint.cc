#include "calibration_fingerprint.h"

#include "absl/strings/string_view.h"

namespace ptq::core {

absl::StatusOr<bool> FingerprintingSource::Next(Batch* batch) {
  absl::StatusOr<bool> more = source_.Next(batch);
  if (!more.ok() || !*more) return more;
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the fingerprint hashes little-endian bytes");
  hash_.Update(absl::string_view(reinterpret_cast<const char*>(batch->shape.data()),
                                 batch->shape.size() * sizeof(int64_t)));
  hash_.Update(absl::string_view(reinterpret_cast<const char*>(batch->data.data()),
                                 batch->data.size() * sizeof(float)));
  return true;
}

}  // namespace ptq::core
