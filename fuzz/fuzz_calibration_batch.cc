// A StreamCalibrationBatch message as the server's stream reactor takes it: a float tensor
// checked against the model input, or encoded images decoded and preprocessed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ptq/core/in_memory_batches.h"
#include "ptq/v1/service.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ptq::v1::CalibrationBatch batch;
  if (!batch.ParseFromArray(data, static_cast<int>(size))) return 0;
  ptq::core::PreprocessSpec spec;
  spec.size = 16;
  spec.resize_short = 20;
  ptq::core::InMemoryBatches batches(spec);
  std::vector<int32_t> labels(batch.labels().begin(), batch.labels().end());
  if (batch.has_tensor()) {
    const ptq::v1::Tensor& tensor = batch.tensor();
    (void)batches.AddTensor({tensor.shape().begin(), tensor.shape().end()}, tensor.data(), std::move(labels));
  } else if (batch.has_images()) {
    (void)batches.AddEncodedImages({batch.images().images().begin(), batch.images().images().end()},
                                   std::move(labels));
  }
  return 0;
}
