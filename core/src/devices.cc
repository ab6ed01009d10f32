#include "ptq/core/devices.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>

namespace ptq::core {

int CudaDeviceCount() { return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0; }

void SetIntraOpThreads(int threads) {
  if (threads > 0) at::set_num_threads(threads);
}

}  // namespace ptq::core
