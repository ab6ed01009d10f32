#ifndef PTQ_CORE_SRC_EXPORT_TORCHSCRIPT_EXPORT_H_
#define PTQ_CORE_SRC_EXPORT_TORCHSCRIPT_EXPORT_H_

#include <torch/script.h>

#include "absl/status/statusor.h"
#include "quant/quantized_model.h"

namespace ptq::core {

// The calibrated model as a TorchScript module with real quantized kernels: the input is
// quantized once, activations stay quint8 between int8 ops (quantized::conv2d(_relu) and
// linear(_relu) on prepacked per-channel qint8 weights, quantized::add/mul/cat/hardswish,
// and ATen's quantized pooling, reshapes and clamps), float layers get dequantize/quantize
// around them, and the output is dequantized. It takes and returns the same float tensors as
// the fp32 model and computes what RunSimulated simulates. Its weights are packed for the
// quantized engine in effect: build it inside a QuantizedEngineSection (quantized_engine.h).
absl::StatusOr<torch::jit::Module> BuildInt8Module(const QuantizedModel& model);

// The fp32 reference after the passes (BatchNorm folded where `fuse` asked), as TorchScript.
absl::StatusOr<torch::jit::Module> BuildFp32Module(const QuantizedModel& model);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_EXPORT_TORCHSCRIPT_EXPORT_H_
