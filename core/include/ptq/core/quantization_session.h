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

namespace ptq::core {

// Where a session computes. LibTorch's intra-op threads are the process's, set once at start
// (SetIntraOpThreads), never per session.
struct RuntimeOptions {
  std::string device = "cpu";  // "cpu", "cuda" or "cuda:N"
};

// done / total steps (batches) of a long operation.
using ProgressCallback = std::function<void(int64_t done, int64_t total)>;

// Accuracy of one variant of the model on one dataset.
struct VariantAccuracy {
  std::string variant;          // "fp32" or "int8_simulated"
  double top1 = 0;              // percent of labelled images
  double top5 = 0;
  int64_t count = 0;            // labelled images
  double agreement_top1 = 100;  // percent of images whose top-1 class equals fp32's
  double images_per_second = 0;
  // "int8" only: percent of images whose top-1 class equals the simulated int8's; -1 otherwise.
  double agreement_with_simulated_top1 = -1;
  // "int8" only: LibTorch's quantized engine in effect when the file loaded and at each batch
  // ("onednn", "qnnpack"; both names joined by '+' had it changed during the run).
  std::string engine;
};

// How much precision one int8 layer loses: SQNR of its simulated output against fp32.
struct LayerReport {
  std::string module_path;
  std::string op;
  double sqnr_db = 0;  // +inf when the outputs are identical
};

// Simulated int8 against fp32 on the held-out calibration images (the last
// ptq.holdout_batches batches, which set no range and no correction).
struct HeldOutScore {
  int64_t images = 0;
  int64_t labelled = 0;           // images with a label
  double agreement_top1 = 0;      // percent of images whose top-1 class equals fp32's
  double top1_drop = 0;           // fp32 top-1 minus int8 top-1 on the labelled images, points
  double logit_sqnr_db = 0;       // SQNR of the int8 logits against fp32's (+inf when equal)
};

// One activation quantizer tried by ptq.activation_quantizer "auto".
struct QuantizerTrial {
  std::string quantizer;
  HeldOutScore held_out;
};

// How much one int8 conv/linear costs in accuracy (ptq.sensitivity or an accuracy budget),
// measured with every other layer as the all-int8 model has it.
struct LayerSensitivity {
  std::string module_path;
  std::string op;
  double sqnr_db = 0;          // its output against fp32 in the all-int8 model
  double mac_percent = 0;      // its share of the model's conv/linear multiply-accumulates
  HeldOutScore only_this_int8;   // every other conv/linear in float, activations float
  HeldOutScore only_this_float;  // every other layer int8, this one's weights and kernel float
};

// ptq.min_agreement / ptq.max_top1_drop: layers left in float, most sensitive first, until the
// held-out images meet the budget.
struct AccuracyBudgetReport {
  double min_agreement = -1;   // percent; -1 when not asked for
  double max_top1_drop = -1;   // points; -1 when not asked for
  HeldOutScore all_int8;       // before any layer was left in float
  HeldOutScore result;         // the model written
  std::vector<std::string> float_layers;  // in the order they were left in float
  double float_mac_percent = 0;           // share of conv/linear MACs those layers run in float
  bool met = false;
  int trials = 0;              // plans calibrated and scored
};

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
  // tensor names) and quant_params.json.
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
