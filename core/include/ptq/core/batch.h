#ifndef PTQ_CORE_BATCH_H_
#define PTQ_CORE_BATCH_H_

#include <cstdint>
#include <vector>

namespace ptq::core {

// Label of an image whose class is unknown (streamed calibration data may carry none).
inline constexpr int32_t kNoLabel = -1;

// A batch of preprocessed images in host memory: float32 NCHW, row-major. Kept free of torch
// types so that data sources and their users outside core need no LibTorch headers; the engine
// wraps `data` as a tensor without copying.
struct Batch {
  std::vector<int64_t> shape;   // {N, C, H, W}
  std::vector<float> data;      // N * C * H * W values
  std::vector<int32_t> labels;  // N entries, kNoLabel where unknown

  int64_t size() const { return shape.empty() ? 0 : shape[0]; }
};

}  // namespace ptq::core

#endif  // PTQ_CORE_BATCH_H_
