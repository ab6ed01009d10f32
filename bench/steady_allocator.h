#ifndef PTQ_BENCH_STEADY_ALLOCATOR_H_
#define PTQ_BENCH_STEADY_ALLOCATOR_H_

#include <malloc.h>

namespace ptq::bench {

// glibc hands out blocks above its mmap threshold (128 KiB until a block that large is freed,
// which raises it) as fresh pages that fault in on every forward: fp32 activations of batch 32
// are such blocks, int8 ones mostly are not. Which state a process is in depends on what it
// freed before, and moved fp32 images/s by up to 45% between runs of the same benchmark
// (MobileNetV1-0.25, 224x224: 438 to 643). Fixing the thresholds gives every model the steady
// state a long-running server reaches.
inline void UseSteadyStateAllocator() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest dynamic threshold on 64-bit
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
}

}  // namespace ptq::bench

#endif  // PTQ_BENCH_STEADY_ALLOCATOR_H_
