#include "quantized_model.h"

#include "executor.h"

namespace ptq::core {

at::Tensor RunFp32(const QuantizedModel& model, const at::Tensor& input) {
  return RunGraph(model.fp32, input);
}

at::Tensor RunSimulated(const QuantizedModel& model, const at::Tensor& input) {
  return RunGraph(model.simulated, input, [&model](int value, at::Tensor& tensor) {
    if (const auto& qparams = model.activations[static_cast<size_t>(value)]) {
      tensor = FakeQuantizeActivation(tensor, *qparams);
    }
  });
}

}  // namespace ptq::core
