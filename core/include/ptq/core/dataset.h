#ifndef PTQ_CORE_DATASET_H_
#define PTQ_CORE_DATASET_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ptq/core/batch.h"
#include "ptq/core/preprocess.h"

namespace ptq::core {

// Batches of preprocessed images in a fixed order. One pass; open the dataset again for another.
class BatchSource {
 public:
  virtual ~BatchSource() = default;

  // Images this pass yields in total (after any limit), and in how many batches.
  virtual int64_t num_images() const = 0;
  virtual int64_t num_batches() const = 0;

  // Fills `batch` with the next batch and returns true, or returns false at the end.
  // CANCELLED once the caller's cancel flag is set; other errors name the file at fault.
  virtual absl::StatusOr<bool> Next(Batch* batch) = 0;
};

enum class DatasetFormat {
  kAuto,      // ImageNet when the path is a folder, else IDX
  // The seed's layout: FOLDER/val_list.txt with lines "val/FILE LABEL"; without the list, every
  // image file below FOLDER, unlabelled (DataSpec::require_labels refuses that).
  kImageNet,
  kIdx,       // MNIST / Fashion-MNIST IDX files, .gz or raw
};

// "", "auto", "imagenet", "idx"; INVALID_ARGUMENT naming `field` otherwise.
absl::StatusOr<DatasetFormat> ParseDatasetFormat(absl::string_view text, absl::string_view field);

struct DataSpec {
  // ImageNet: the folder holding val_list.txt. IDX: the images file, or a prefix such as
  // ".../fashion-mnist/t10k" naming "t10k-images-idx3-ubyte[.gz]" and its labels file.
  std::string path;
  DatasetFormat format = DatasetFormat::kAuto;
  // When set, every file the dataset opens (list, images, IDX files) must resolve, symlinks
  // followed, to a path below this folder: the server's data root.
  std::string confine_to;
  PreprocessSpec preprocess;
  int num_classes = 0;       // > 0: every label must lie in [0, num_classes)
  bool require_labels = false;  // evaluation: a folder of images needs its val_list.txt
  int64_t limit = 0;         // > 0: only the first `limit` images (calibration takes the first N)
  int batch_size = 32;
  int decode_threads = 2;    // images decoded and preprocessed in parallel
  int prefetch_batches = 2;  // batches prepared ahead of the one being consumed
  // Set by another thread to stop a pass promptly; may be null.
  const std::atomic<bool>* cancelled = nullptr;
};

// Checks the dataset (index file, every listed file exists, labels in range, IDX headers) and
// returns a source that decodes on a thread pool ahead of the consumer. NOT_FOUND for missing
// files, INVALID_ARGUMENT for malformed ones, PERMISSION_DENIED for files that lead outside
// `confine_to`; messages name the file and line.
absl::StatusOr<std::unique_ptr<BatchSource>> OpenDataset(const DataSpec& spec);

}  // namespace ptq::core

#endif  // PTQ_CORE_DATASET_H_
