#ifndef PTQ_CORE_DEVICES_H_
#define PTQ_CORE_DEVICES_H_

namespace ptq::core {

// CUDA devices LibTorch sees: 0 with a CPU-only LibTorch such as Debian's, or without a GPU.
int CudaDeviceCount();

// Sets LibTorch's intra-op thread count. There is one pool per process, so CPU workers that run
// at the same time share it; `threads` <= 0 leaves the setting alone.
void SetIntraOpThreads(int threads);

}  // namespace ptq::core

#endif  // PTQ_CORE_DEVICES_H_
