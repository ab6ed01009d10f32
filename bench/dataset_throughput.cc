// Images per second of the ImageNet input pipeline (JPEG decode, resize 256, crop 224,
// normalize, NCHW) over a whole dataset, with 1 and 2 decode threads, batch 32.
//
//   build/bench/bench_dataset_throughput [DATASET_DIR]   (default: ../shared/data/imagenet-sample)
//
// The 1-thread run is the baseline; the 2-thread line reports its speed-up over it.
#include <chrono>
#include <cstdio>
#include <string>

#include "ptq/core/dataset.h"

namespace {

struct PassResult {
  int64_t images = 0;
  double seconds = 0;
};

absl::StatusOr<PassResult> TimeOnePass(const std::string& path, int threads) {
  ptq::core::DataSpec spec;
  spec.path = path;
  spec.batch_size = 32;
  spec.decode_threads = threads;
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<ptq::core::BatchSource>> source = ptq::core::OpenDataset(spec);
  if (!source.ok()) return source.status();
  PassResult result;
  ptq::core::Batch batch;
  while (true) {
    absl::StatusOr<bool> more = (*source)->Next(&batch);
    if (!more.ok()) return more.status();
    if (!*more) break;
    result.images += batch.size();
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : PTQ_DEFAULT_IMAGENET_SAMPLE;
  std::printf("ImageNet pipeline on %s (batch 32, 224x224 RGB)\n", path.c_str());
  // Warm the page cache so both runs read the same way.
  if (absl::StatusOr<PassResult> warm = TimeOnePass(path, 2); !warm.ok()) {
    std::fprintf(stderr, "cannot read the dataset: %s\n", warm.status().ToString().c_str());
    return 1;
  }
  double baseline = 0;
  std::printf("| decode threads | images | seconds | images/s | vs 1 thread |\n|---|---|---|---|---|\n");
  for (int threads : {1, 2}) {
    absl::StatusOr<PassResult> pass = TimeOnePass(path, threads);
    if (!pass.ok()) {
      std::fprintf(stderr, "%s\n", pass.status().ToString().c_str());
      return 1;
    }
    const double rate = pass->images / pass->seconds;
    if (threads == 1) baseline = rate;
    std::printf("| %d | %lld | %.2f | %.1f | %.2fx |\n", threads, static_cast<long long>(pass->images),
                pass->seconds, rate, rate / baseline);
  }
  return 0;
}
