#ifndef PTQ_CLIENT_LOCAL_DATASET_H_
#define PTQ_CLIENT_LOCAL_DATASET_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ptq/v1/service.pb.h"

namespace ptq::client {

// A dataset on the client's machine, read as encoded images so the client needs no image
// library: ImageNet-layout folders send their files' bytes as they are; IDX files (MNIST,
// Fashion-MNIST) send each image as a binary PGM. The server decodes and preprocesses both.
class LocalDataset {
 public:
  // `format`: "imagenet", "idx" or "" (a folder with val_list.txt is ImageNet; a folder
  // without one is its image files, unlabelled, in path order; anything else is IDX, the
  // images file or a prefix such as ".../t10k"). INVALID_ARGUMENT naming `path` when it is
  // none of these.
  static absl::StatusOr<std::unique_ptr<LocalDataset>> Open(const std::string& path, const std::string& format);
  virtual ~LocalDataset() = default;

  virtual int64_t size() const = 0;
  // Adds images [first, first + count) with their labels to `batch`.
  virtual absl::Status AddTo(int64_t first, int64_t count, v1::CalibrationBatch* batch) const = 0;
};

}  // namespace ptq::client

#endif  // PTQ_CLIENT_LOCAL_DATASET_H_
