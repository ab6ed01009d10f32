#ifndef PTQ_CORE_SRC_QUANT_CALIBRATION_STATE_H_
#define PTQ_CORE_SRC_QUANT_CALIBRATION_STATE_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quant/quant_math.h"
#include "quant/quantized_model.h"

namespace ptq::core {

// What a calibration measured on data, kept beside a job's artifacts (calibration_state.pt) so
// that a later job on the same model and passes can re-plan (other float layers, another int8
// backend) without data: RestoreCalibration.
struct CalibrationState {
  // One line per node of the fp32 graph ("conv2d features.0.0 [16, 3, 3, 3]"): the graph a
  // state fits, checked before anything is restored.
  std::vector<std::string> node_signatures;
  std::string activation_quantizer;
  std::map<int, ActivationQParams> activations;  // by value id: every quantized activation
  std::map<int, at::Tensor> bias_corrections;    // by node index, CPU
  // Cross-layer equalization: the rescaled activations, and the weight and bias (CPU) of every
  // node it rescaled, as the equalized fp32 graph holds them.
  std::vector<int> equalized_values;
  std::map<int, std::pair<at::Tensor, at::Tensor>> equalized_layers;
  at::Tensor sqnr_images;  // CPU: the images the per-layer SQNR is measured on
};

// "conv2d features.0.0 [16, 3, 3, 3]": kind, module path and weight shape of a node.
std::string NodeSignature(const Node& node);

// The state of a calibrated model.
CalibrationState CaptureCalibrationState(const QuantizedModel& model);

// calibration_state.pt's bytes (a LibTorch pickle of one dictionary), and back. Reading names
// what is missing or of the wrong type (FAILED_PRECONDITION): a file from another version or
// damaged on disk.
std::string SerializeCalibrationState(const CalibrationState& state);
absl::StatusOr<CalibrationState> ParseCalibrationState(const std::string& bytes);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_QUANT_CALIBRATION_STATE_H_
