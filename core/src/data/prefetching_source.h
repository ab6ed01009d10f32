#ifndef PTQ_CORE_SRC_DATA_PREFETCHING_SOURCE_H_
#define PTQ_CORE_SRC_DATA_PREFETCHING_SOURCE_H_

#include <atomic>
#include <deque>
#include <memory>

#include "data/image_loader.h"
#include "ptq/common/task_pool.h"
#include "ptq/core/dataset.h"

namespace ptq::core {

// Turns an ImageLoader into ordered batches, loading up to `prefetch_batches` batches ahead on
// a pool of `decode_threads` threads so that the consumer rarely waits on decoding. Each image
// is loaded straight into its slot of the batch buffer; batches come out in index order.
class PrefetchingSource : public BatchSource {
 public:
  PrefetchingSource(std::shared_ptr<const ImageLoader> loader, const DataSpec& spec);
  ~PrefetchingSource() override;

  int64_t num_images() const override { return num_images_; }
  int64_t num_batches() const override { return (num_images_ + batch_size_ - 1) / batch_size_; }
  absl::StatusOr<bool> Next(Batch* batch) override;

 private:
  struct PendingBatch;

  // Queues batches until `prefetch_batches` + 1 are in flight or the images run out.
  void ScheduleAhead();
  bool cancelled() const { return cancelled_ != nullptr && cancelled_->load(); }

  std::shared_ptr<const ImageLoader> loader_;
  const int64_t num_images_;
  const int batch_size_;
  const int prefetch_batches_;
  const int64_t sample_numel_;
  const std::vector<int64_t> sample_shape_;  // {C, H, W}
  const std::atomic<bool>* cancelled_;
  // Tells queued loads to skip their work once this source is being destroyed.
  std::shared_ptr<std::atomic<bool>> abandoned_;
  int64_t next_to_schedule_ = 0;
  std::deque<std::shared_ptr<PendingBatch>> in_flight_;
  TaskPool pool_;  // last: joined first on destruction, while the rest is still alive
};

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_DATA_PREFETCHING_SOURCE_H_
