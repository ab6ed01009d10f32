#ifndef PTQ_CORE_SRC_EXPORT_ONNX_EXPORT_H_
#define PTQ_CORE_SRC_EXPORT_ONNX_EXPORT_H_

#include <string>

#include "absl/status/statusor.h"
#include "quant/quantized_model.h"

namespace ptq::core {

enum class OnnxVariant {
  kFp32,  // the folded float graph
  kQdq,   // the int8 model in QDQ form: QuantizeLinear/DequantizeLinear pairs on every
          // quantized activation and DequantizeLinear on int8 weights, the format ONNX Runtime
          // and TensorRT turn into int8 kernels
};

// Serialized ONNX (opset 14) of the calibrated model. Tensor names: "input", "v<value id>" for
// each activation (the same in both variants), "output". INVALID_ARGUMENT naming the op for
// what ONNX cannot express here (e.g. adaptive pooling to a size other than 1x1).
absl::StatusOr<std::string> BuildOnnx(const QuantizedModel& model, OnnxVariant variant);

// TensorRT's calibration table for the fp32 ONNX file: a header line, then
// "<tensor name>: <hex of the big-endian float32 scale>" per quantized activation, with
// TensorRT's symmetric int8 scale threshold / 127.
std::string TensorRtCalibrationCache(const QuantizedModel& model);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_EXPORT_ONNX_EXPORT_H_
