#include "ptq/core/quantization_session.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "evaluation.h"
#include "export/onnx_export.h"
#include "export/quant_params_json.h"
#include "export/quantized_engine.h"
#include "export/sensitivity_svg.h"
#include "export/torchscript_export.h"
#include "graph/graph_passes.h"
#include "graph/imported_models.h"
#include "ptq/common/file_write.h"
#include "ptq/core/devices.h"
#include "ptq/core/result_directory.h"
#include "quant/activation_observer.h"
#include "quant/calibration_state.h"
#include "quant/calibrator.h"
#include "quant/quantized_model.h"
#include "torch_errors.h"

namespace ptq::core {
namespace {

void MoveToDevice(Graph& graph, const at::Device& device) {
  for (Node& node : graph.nodes) {
    for (at::Tensor* tensor : {&node.weight, &node.bias, &node.running_mean, &node.running_var}) {
      if (tensor->defined()) *tensor = tensor->to(device);
    }
  }
}

}  // namespace

struct QuantizationSession::State {
  PtqConfig config;
  at::Device device = at::kCPU;
  QuantizedModel model;
  PlanOptions plan_options;
  ModelSummary summary;
};

QuantizationSession::QuantizationSession(std::unique_ptr<State> state) : state_(std::move(state)) {}
QuantizationSession::~QuantizationSession() = default;

const ModelSummary& QuantizationSession::summary() const { return state_->summary; }

absl::StatusOr<std::unique_ptr<QuantizationSession>> QuantizationSession::Create(
    const std::string& model_path, const PtqConfig& config, const RuntimeOptions& runtime) {
  if (absl::Status status = ValidatePtqConfig(config); !status.ok()) return status;
  auto state = std::make_unique<State>();
  state->config = config;
  absl::StatusOr<at::Device> device = GuardTorch<at::Device>("device", [&] { return at::Device(runtime.device); });
  if (!device.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("device '", runtime.device, "' is not a device LibTorch knows"));
  }
  if (device->is_cuda() && !torch::cuda::is_available()) {
    return absl::FailedPreconditionError(
        absl::StrCat("device '", runtime.device, "' asked for, but LibTorch sees no CUDA device"));
  }
  state->device = *device;
  if (device->is_cuda()) KeepCudaAtTrueFp32();

  absl::StatusOr<Graph> graph = ImportTorchScriptOnce(model_path);
  if (!graph.ok()) return graph.status();
  QuantizedModel& model = state->model;
  model.fp32 = *std::move(graph);
  absl::Status passes = GuardTorch<bool>("passes", [&]() -> absl::StatusOr<bool> {
                          if (config.fuse) {
                            if (absl::Status s = FoldBatchNorms(model.fp32, config.fuse_list); !s.ok()) return s;
                          }
                          FuseActivations(model.fp32);
                          MoveToDevice(model.fp32, state->device);
                          return true;
                        }).status();
  if (!passes.ok()) return passes;
  model.se_blocks = FindSeBlocks(model.fp32);
  PlanOptions& plan_options = state->plan_options;
  plan_options.skip_layers = config.skip_layers;
  plan_options.skip_se_quant = config.skip_se_quant;
  absl::StatusOr<QuantPlan> plan = PlanQuantization(model.fp32, model.se_blocks, plan_options);
  if (!plan.ok()) return plan.status();
  model.plan = *std::move(plan);

  ModelSummary& summary = state->summary;
  summary.nodes = static_cast<int>(model.fp32.nodes.size());
  for (size_t i = 0; i < model.fp32.nodes.size(); ++i) {
    const Node& node = model.fp32.nodes[i];
    const bool weighted = IsWeightedLayer(node);
    summary.conv_and_linear_layers += weighted;
    summary.float_layers += weighted && !model.plan.node_is_int8[i];
    summary.folded_batch_norms += !node.folded_batch_norm.empty();
  }
  summary.se_blocks = static_cast<int>(model.se_blocks.size());
  return std::unique_ptr<QuantizationSession>(new QuantizationSession(std::move(state)));
}

absl::Status QuantizationSession::Calibrate(BatchSource& data, const ProgressCallback& progress,
                                            const std::atomic<bool>* cancelled) {
  State& state = *state_;
  CalibrationOptions options;
  options.activation = ActivationSpecOf(state.config);
  (void)ParseWeightQuantizer(state.config.weight_quantizer, &options.weights);  // validated at Create
  options.bias_correction = state.config.bias_correction;
  options.bias_correction_batches = state.config.bias_correction_batches;
  if (state.config.weight_rounding == "adaround") options.rounding.iterations = state.config.adaround_iterations;
  options.equalize = state.config.Equalizes();
  if (state.config.HoldsImagesOut()) options.holdout_batches = state.config.holdout_batches;
  options.sensitivity = state.config.sensitivity;
  options.budget.min_agreement = state.config.min_agreement;
  options.budget.max_top1_drop = state.config.max_top1_drop;
  options.plan = state.plan_options;
  BatchStream stream;
  stream.count = data.num_batches();
  stream.next = [&]() -> absl::StatusOr<std::optional<CalibrationBatch>> {
    Batch batch;
    absl::StatusOr<bool> more = data.Next(&batch);
    if (!more.ok()) return more.status();
    if (!*more) return std::optional<CalibrationBatch>();
    std::vector<int32_t> labels = std::move(batch.labels);
    labels.resize(static_cast<size_t>(batch.size()), kNoLabel);
    return std::optional<CalibrationBatch>(CalibrationBatch{BatchTensor(std::move(batch), state.device), std::move(labels)});
  };
  return GuardTorch<bool>("calibration",
                       [&]() -> absl::StatusOr<bool> {
                         torch::NoGradGuard no_grad;
                         absl::Status status = ptq::core::Calibrate(state.model, stream, options, progress, cancelled);
                         if (!status.ok()) return status;
                         return true;
                       })
      .status();
}

absl::Status QuantizationSession::CalibrateFrom(const std::string& state_path) {
  State& state = *state_;
  std::ifstream file(state_path, std::ios::binary);
  std::ostringstream bytes;
  if (!file || !(bytes << file.rdbuf())) {
    return absl::FailedPreconditionError(absl::StrCat("cannot read '", state_path, "'"));
  }
  WeightGranularity weights = WeightGranularity::kPerChannel;
  (void)ParseWeightQuantizer(state.config.weight_quantizer, &weights);  // validated at Create
  return GuardTorch<bool>("calibration from a saved state",
                          [&]() -> absl::StatusOr<bool> {
                            torch::NoGradGuard no_grad;
                            absl::StatusOr<CalibrationState> saved = ParseCalibrationState(bytes.str());
                            absl::Status status =
                                saved.ok() ? RestoreCalibration(state.model, *saved, weights) : saved.status();
                            if (!status.ok()) return status;
                            return true;
                          })
      .status();
}

absl::Status QuantizationSession::ExportTorchScript(const std::string& fp32_path, const std::string& int8_path) const {
  if (!state_->model.calibrated) {
    return absl::FailedPreconditionError("export needs a calibrated model: run Calibrate first");
  }
  absl::StatusOr<torch::jit::Module> fp32 = BuildFp32Module(state_->model);
  if (!fp32.ok()) return fp32.status();
  const QuantizedEngineSection engine(state_->config.backend);
  absl::StatusOr<torch::jit::Module> int8 = BuildInt8Module(state_->model);
  if (!int8.ok()) return int8.status();
  // Serialized in memory, then written with checked writes: LibTorch's file writer reports a
  // full disk from its destructor, where an exception ends the process.
  for (const auto& [module, path] : {std::pair{&*fp32, &fp32_path}, std::pair{&*int8, &int8_path}}) {
    absl::StatusOr<std::string> bytes = GuardTorch<std::string>("serializing TorchScript", [&]() -> absl::StatusOr<std::string> {
      std::ostringstream out;
      module->save(out);
      return out.str();
    });
    if (!bytes.ok()) return bytes.status();
    if (absl::Status written = WriteFileContents(*path, *bytes); !written.ok()) return written;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<VariantAccuracy>> QuantizationSession::Evaluate(BatchSource& data,
                                                                           const ProgressCallback& progress,
                                                                           const std::atomic<bool>* cancelled,
                                                                           const std::string& int8_model_path) {
  State& state = *state_;
  if (!state.model.calibrated) {
    return absl::FailedPreconditionError("evaluate needs a calibrated model: run Calibrate first");
  }
  const QuantizedModel& model = state.model;
  std::vector<EvaluationRunner> runners = {
      {"fp32", [&model](const at::Tensor& input) { return RunFp32(model, input); }, "", -1},
      {"int8_simulated", [&model](const at::Tensor& input) { return RunSimulated(model, input); }, "", -1}};
  if (!int8_model_path.empty()) {
    absl::StatusOr<EvaluationRunner> int8 = TorchScriptFileRunner("int8", int8_model_path, state.config.backend);
    if (!int8.ok()) return int8.status();
    int8->also_agree_with = 1;
    runners.push_back(*std::move(int8));
  }
  return EvaluateRunners(runners, data, state.device, progress, cancelled);
}

absl::Status QuantizationSession::WriteArtifacts(const std::string& directory) const {
  const std::filesystem::path root(directory);
  std::error_code error;
  const std::filesystem::path fp32_model = root / kFp32ModelFile, int8_model = root / kInt8ModelFile;
  for (const std::filesystem::path& sub : {fp32_model.parent_path(), int8_model.parent_path()}) {
    std::filesystem::create_directories(sub, error);
    if (error) return absl::InternalError(absl::StrCat("cannot create '", sub.string(), "': ", error.message()));
  }
  if (absl::Status exported = ExportTorchScript(fp32_model.string(), int8_model.string());
      !exported.ok()) {
    return exported;
  }
  absl::StatusOr<std::string> params = QuantParamsJson();
  if (!params.ok()) return params.status();
  absl::StatusOr<std::string> fp32_onnx = BuildOnnx(state_->model, OnnxVariant::kFp32);
  if (!fp32_onnx.ok()) return fp32_onnx.status();
  absl::StatusOr<std::string> int8_onnx = BuildOnnx(state_->model, OnnxVariant::kQdq);
  if (!int8_onnx.ok()) return int8_onnx.status();
  absl::StatusOr<std::string> calibration_state = GuardTorch<std::string>(
      kCalibrationStateFile, [&]() -> absl::StatusOr<std::string> {
        return SerializeCalibrationState(CaptureCalibrationState(state_->model));
      });
  if (!calibration_state.ok()) return calibration_state.status();
  const std::pair<std::filesystem::path, std::string> files[] = {
      {root / "quant_params.json", *params + "\n"},
      {fp32_model.parent_path() / "model.onnx", *fp32_onnx},
      {int8_model.parent_path() / "model.onnx", *int8_onnx},
      {root / "calibration.cache", TensorRtCalibrationCache(state_->model)},
      {root / kCalibrationStateFile, *calibration_state},
  };
  if (!state_->model.sensitivity.empty()) {
    const std::vector<std::string> float_layers =
        state_->model.budget ? state_->model.budget->float_layers : std::vector<std::string>();
    if (absl::Status written =
            WriteFileContents(root / "sensitivity.svg", SensitivitySvg(state_->model.sensitivity, float_layers));
        !written.ok()) {
      return written;
    }
  }
  for (const auto& [path, contents] : files) {
    if (absl::Status written = WriteFileContents(path, contents); !written.ok()) return written;
  }
  return absl::OkStatus();
}

std::vector<LayerReport> QuantizationSession::LayerSqnr() const {
  std::vector<LayerReport> layers;
  for (const QuantizedModel::LayerSqnr& layer : state_->model.layer_sqnr) {
    layers.push_back({layer.module_path, layer.op, layer.sqnr_db});
  }
  return layers;
}

std::optional<HeldOutScore> QuantizationSession::HeldOut() const { return state_->model.held_out; }

std::string QuantizationSession::ActivationQuantizerUsed() const { return state_->model.activation_quantizer; }

std::vector<QuantizerTrial> QuantizationSession::ActivationQuantizerTrials() const {
  return state_->model.quantizer_trials;
}

std::vector<LayerSensitivity> QuantizationSession::Sensitivity() const { return state_->model.sensitivity; }

std::optional<ErrorSources> QuantizationSession::ErrorSourcesOnHeldOut() const { return state_->model.error_sources; }

std::optional<AccuracyBudgetReport> QuantizationSession::AccuracyBudget() const { return state_->model.budget; }

absl::StatusOr<std::string> QuantizationSession::QuantParamsJson() const {
  if (!state_->model.calibrated) {
    return absl::FailedPreconditionError("quantization parameters exist only after Calibrate");
  }
  return GuardTorch<std::string>("quant_params.json",
                              [&]() -> absl::StatusOr<std::string> {
                                return ptq::core::QuantParamsJson(state_->model, state_->config);
                              });
}

}  // namespace ptq::core
