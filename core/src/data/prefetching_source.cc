#include "data/prefetching_source.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>

namespace ptq::core {

struct PrefetchingSource::PendingBatch {
  Batch batch;
  std::mutex mutex;
  std::condition_variable done;
  int64_t remaining = 0;
  absl::Status first_error;  // of the lowest failing slot, so the report is deterministic
  int64_t first_error_slot = 0;
};

PrefetchingSource::PrefetchingSource(std::shared_ptr<const ImageLoader> loader,
                                     const DataSpec& spec)
    : loader_(std::move(loader)),
      num_images_(spec.limit > 0 ? std::min(spec.limit, loader_->size()) : loader_->size()),
      batch_size_(std::max(1, spec.batch_size)),
      prefetch_batches_(std::max(0, spec.prefetch_batches)),
      sample_numel_(spec.preprocess.sample_numel()),
      sample_shape_{spec.preprocess.channels, spec.preprocess.size, spec.preprocess.size},
      cancelled_(spec.cancelled),
      abandoned_(std::make_shared<std::atomic<bool>>(false)),
      pool_(std::max(1, spec.decode_threads)) {}

PrefetchingSource::~PrefetchingSource() {
  abandoned_->store(true);
  pool_.Stop();
}

void PrefetchingSource::ScheduleAhead() {
  while (static_cast<int>(in_flight_.size()) <= prefetch_batches_ &&
         next_to_schedule_ < num_images_) {
    const int64_t first = next_to_schedule_;
    const int64_t count = std::min<int64_t>(batch_size_, num_images_ - first);
    next_to_schedule_ += count;

    auto pending = std::make_shared<PendingBatch>();
    pending->remaining = count;
    pending->batch.shape = {count, sample_shape_[0], sample_shape_[1], sample_shape_[2]};
    pending->batch.data.resize(static_cast<size_t>(count * sample_numel_));
    pending->batch.labels.assign(static_cast<size_t>(count), kNoLabel);
    for (int64_t slot = 0; slot < count; ++slot) {
      pool_.Post([pending, slot, index = first + slot, loader = loader_,
                  abandoned = abandoned_, cancelled = cancelled_, numel = sample_numel_] {
        absl::Status status;
        if (abandoned->load() || (cancelled != nullptr && cancelled->load())) {
          status = absl::CancelledError("data loading cancelled");
        } else {
          status = loader->Load(index, pending->batch.data.data() + slot * numel,
                                &pending->batch.labels[static_cast<size_t>(slot)]);
        }
        std::lock_guard<std::mutex> lock(pending->mutex);
        if (!status.ok() && (pending->first_error.ok() || slot < pending->first_error_slot)) {
          pending->first_error = status;
          pending->first_error_slot = slot;
        }
        if (--pending->remaining == 0) pending->done.notify_all();
      });
    }
    in_flight_.push_back(std::move(pending));
  }
}

absl::StatusOr<bool> PrefetchingSource::Next(Batch* batch) {
  if (cancelled()) return absl::CancelledError("data loading cancelled");
  ScheduleAhead();
  if (in_flight_.empty()) return false;
  std::shared_ptr<PendingBatch> front = std::move(in_flight_.front());
  in_flight_.pop_front();
  {
    std::unique_lock<std::mutex> lock(front->mutex);
    front->done.wait(lock, [&front] { return front->remaining == 0; });
  }
  if (cancelled()) return absl::CancelledError("data loading cancelled");
  if (!front->first_error.ok()) return front->first_error;
  *batch = std::move(front->batch);
  ScheduleAhead();
  return true;
}

}  // namespace ptq::core
