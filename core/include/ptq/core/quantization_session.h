#ifndef PTQ_CORE_QUANTIZATION_SESSION_H_
#define PTQ_CORE_QUANTIZATION_SESSION_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ptq/core/dataset.h"
#include "ptq/core/ptq_config.h"
#include "ptq/core/report.h"

namespace ptq::core {

// Where a session computes. LibTorch's intra-op threads are the process's, set once at start
// (SetIntraOpThreads), never per session.
struct RuntimeOptions {
  std::string device = "cpu";  // "cpu", "cuda" or "cuda:N"
};

// done / total steps (batches) of a long operation.
using ProgressCallback = std::function<void(int64_t done, int64_t total)>;

// What the passes found in a model.
struct ModelSummary {
  int nodes = 0;
  int conv_and_linear_layers = 0;
  int folded_batch_norms = 0;
  int se_blocks = 0;
  int float_layers = 0;  // conv/linear kept in float
};

// One model through the PTQ engine: import and passes at Create, then Calibrate on data, then
// Evaluate fp32 against simulated int8 and write the quantization parameters. The facade
// keeps LibTorch out of its callers: every LibTorch error comes back as a status.
class QuantizationSession {
 public:
  // Loads the TorchScript file and runs the passes the config asks for (fuse / fuse_list,
  // activation fusion, SE detection, float layers). INVALID_ARGUMENT for a bad config or
  // model (naming the key or the op).
  static absl::StatusOr<std::unique_ptr<QuantizationSession>> Create(const std::string& model_path,
                                                                     const PtqConfig& config,
                                                                     const RuntimeOptions& runtime);
  ~QuantizationSession();

  const ModelSummary& summary() const;

  // Calibrates on every batch `data` yields (make it yield quant_batch_num batches of
  // quant_batch_size). Progress counts batches (a second pass over the layers adds their
  // count when bias correction is on). CANCELLED promptly once `cancelled` is set.
  absl::Status Calibrate(BatchSource& data, const ProgressCallback& progress,
                         const std::atomic<bool>* cancelled);

  // Calibrates without data from the calibration_state.pt an earlier session of the same model
  // wrote (WriteArtifacts): its equalization, activation ranges and bias corrections, re-planned
  // for this session's float layers, with nearest weight rounding. FAILED_PRECONDITION, saying
  // why, when the file is unreadable, for another model or passes, or lacks a range this
  // session's plan needs (a layer float there is int8 here).
  absl::Status CalibrateFrom(const std::string& state_path);

  // Writes the folded fp32 model and the int8 model (real quantized kernels, prepacked for
  // ptq.backend) as TorchScript files; both take the same float input.
  // FAILED_PRECONDITION before Calibrate.
  absl::Status ExportTorchScript(const std::string& fp32_path, const std::string& int8_path) const;

  // fp32 and simulated int8 top-1/top-5 on `data`, with the int8 top-1 agreement with fp32.
  // With `int8_model_path` (a file ExportTorchScript wrote) also the real int8 model, run
  // from that file under ptq.backend's engine, so what users download is what is measured.
  // Progress counts images.
  // FAILED_PRECONDITION before Calibrate.
  absl::StatusOr<std::vector<VariantAccuracy>> Evaluate(BatchSource& data, const ProgressCallback& progress,
                                                        const std::atomic<bool>* cancelled,
                                                        const std::string& int8_model_path = "");

  // Writes the downloadable artifacts into `directory` (created if missing):
  // fp32/model.pt and fp32/model.onnx, int8_infer/model.pt (prepacked for ptq.backend) and
  // int8_infer/model.onnx (QDQ), calibration.cache (TensorRT's table for fp32/model.onnx's
  // tensor names), quant_params.json and calibration_state.pt (for CalibrateFrom).
  absl::Status WriteArtifacts(const std::string& directory) const;

  // Per-layer SQNR measured at the end of Calibrate on part of the first batch.
  std::vector<LayerReport> LayerSqnr() const;

  // The held-out score of the model as calibrated; absent unless "auto", ptq.sensitivity or a
  // budget held images out.
  std::optional<HeldOutScore> HeldOut() const;

  // The activation quantizer whose thresholds the model has (the one "auto" chose, or the one
  // the config named), and with "auto" every quantizer tried, in order.
  std::string ActivationQuantizerUsed() const;
  std::vector<QuantizerTrial> ActivationQuantizerTrials() const;

  // Per int8 conv/linear of the all-int8 plan, in graph order; empty unless ptq.sensitivity or
  // a budget asked for it.
  std::vector<LayerSensitivity> Sensitivity() const;

  // The all-int8 plan with only its weights int8, and with only its activations; absent unless
  // ptq.sensitivity or a budget asked for it.
  std::optional<ErrorSources> ErrorSourcesOnHeldOut() const;

  // Absent unless ptq.min_agreement or ptq.max_top1_drop was set.
  std::optional<AccuracyBudgetReport> AccuracyBudget() const;

  // quant_params.json: every quantization point with module path, scheme, scale, zero point
  // and observer; every weight's scales; the layers kept in float and why.
  absl::StatusOr<std::string> QuantParamsJson() const;

 private:
  struct State;
  explicit QuantizationSession(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace ptq::core

#endif  // PTQ_CORE_QUANTIZATION_SESSION_H_
