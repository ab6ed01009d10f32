#include "quant/calibrator.h"

#include <algorithm>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "graph/executor.h"
#include "quant/cross_layer_equalization.h"
#include "quant/layer_sensitivity.h"
#include "torch_errors.h"

namespace ptq::core {
namespace {

using Observers = std::map<int, std::unique_ptr<ActivationObserver>>;

absl::Status Cancelled() { return absl::CancelledError("calibration cancelled"); }

bool IsCancelled(const std::atomic<bool>* cancelled) {
  return cancelled != nullptr && cancelled->load();
}

// Step 1: fake-quantize the weights of every int8 conv/linear into the simulated graph.
void QuantizeWeights(QuantizedModel& model, WeightGranularity granularity) {
  model.simulated = model.fp32;
  model.weights.assign(model.fp32.nodes.size(), std::nullopt);
  model.bias_corrections.assign(model.fp32.nodes.size(), at::Tensor());
  for (size_t i = 0; i < model.fp32.nodes.size(); ++i) {
    Node& node = model.simulated.nodes[i];
    if (!model.plan.node_is_int8[i] || !IsWeightedLayer(node)) continue;
    WeightQParams qparams = ComputeWeightQParams(node.weight, granularity);
    node.weight = FakeQuantizeWeight(node.weight, qparams);
    model.weights[i] = std::move(qparams);
  }
}

// Subtracts `correction` (per output channel) from node `index`'s simulated bias.
void ApplyBiasCorrection(QuantizedModel& model, size_t index, const at::Tensor& correction) {
  Node& node = model.simulated.nodes[index];
  node.bias = node.bias.defined() ? node.bias - correction : -correction;
  model.bias_corrections[index] = correction;
}

// A value's parameters once its observer (if it has one) has seen every batch. Values are
// settled in id order, so a shared point's source is settled before it. With
// `shared_histograms` ("auto": every observer a HistogramObserver), the threshold is the one
// model.activation_quantizer picks from the histogram.
absl::Status SettlePoint(QuantizedModel& model, int value, const Observers& observers, bool shared_histograms) {
  const std::optional<ActivationPoint>& point = model.plan.points[static_cast<size_t>(value)];
  if (!point) return absl::OkStatus();
  std::optional<ActivationQParams>& qparams = model.activations[static_cast<size_t>(value)];
  switch (point->source) {
    case PointSource::kFixedUnitInterval: {
      ActivationQParams fixed;
      fixed.scheme = ActivationScheme::kUnsigned;
      fixed.scale = 1.0 / 256;
      fixed.threshold = 255.0 / 256;
      qparams = fixed;
      return absl::OkStatus();
    }
    case PointSource::kSameAsInput:
      qparams = model.activations[static_cast<size_t>(point->same_as)];
      return absl::OkStatus();
    case PointSource::kObserved: {
      const ActivationObserver& observer = *observers.at(value);
      const int levels = LevelsOf(point->scheme);
      absl::StatusOr<double> threshold =
          shared_histograms ? static_cast<const HistogramObserver&>(observer).ComputeThreshold(
                                  HistogramObserver::MethodOf(model.activation_quantizer), levels)
                            : observer.ComputeThreshold(levels);
      if (!threshold.ok()) {
        return absl::Status(threshold.status().code(), absl::StrCat("activation of '", point->name,
                                                                    "': ", threshold.status().message()));
      }
      // A histogram's top bin edge can land past a ReLU6's 6 (6.004 seen). Capped, the uint8
      // grid stays inside the clip, and ONNX Runtime folds the QDQ file's Clip into its
      // QuantizeLinear (it failed to load such a file at its default optimization level,
      // "two nodes with same node name").
      const double capped =
          point->scheme == ActivationScheme::kUnsigned ? std::min(*threshold, point->upper_bound) : *threshold;
      qparams = ActivationQParamsFor(capped, point->scheme);
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

// FAILED_PRECONDITION naming the first value of the fp32 graph that is NaN or Inf on `batch`:
// thresholds computed from such values mean nothing, so calibration stops at the first batch
// whose output is not finite. Runs the batch again, checking every value, only then.
absl::Status NonFiniteActivation(const Graph& graph, const at::Tensor& batch, int64_t batch_index) {
  const std::string where = absl::StrCat("calibration batch ", batch_index + 1);
  if (!at::isfinite(batch).all().item<bool>()) {
    return absl::FailedPreconditionError(absl::StrCat(where, " holds NaN or Inf values after preprocessing"));
  }
  int first = -1;
  RunGraph(graph, batch, [&first](int value, at::Tensor& tensor) {
    if (first < 0 && !at::isfinite(tensor).all().item<bool>()) first = value;
  });
  const std::vector<int> producers = ProducersOf(graph);
  const int producer = first < 0 ? -1 : producers[static_cast<size_t>(first)];
  const std::string layer = producer < 0 ? "the model" : Describe(graph.nodes[static_cast<size_t>(producer)]);
  return absl::FailedPreconditionError(absl::StrCat(
      where, ": ", layer, " produced NaN or Inf values in fp32, so no range can be calibrated (check the "
      "model's weights and input.mean / input.std); calibration stopped"));
}

// The fp32 graph on calibration batch `batch_index`. A LibTorch error there is the model's own
// (shapes that do not fit, an op refusing its inputs): FAILED_PRECONDITION naming the layer,
// where GuardTorch would call it INTERNAL.
absl::StatusOr<at::Tensor> RunFp32Batch(const Graph& graph, const at::Tensor& images, const ValueHook& hook,
                                        int64_t batch_index) {
  size_t running = 0;
  try {
    return RunGraph(graph, images, hook, [&](size_t index, const std::vector<at::Tensor>& inputs) {
      running = index;
      return RunNode(graph.nodes[index], inputs);
    });
  } catch (const c10::Error& e) {
    return absl::FailedPreconditionError(absl::StrCat("calibration batch ", batch_index + 1,
                                                      ": the model's forward failed at ", Describe(graph.nodes[running]),
                                                      ": ", FirstLine(e.what_without_backtrace())));
  }
}

// One value over the kept images, fp32 and simulated.
struct PairedValue {
  at::Tensor fp32;
  at::Tensor simulated;
};

// Per-channel mean of (simulated - fp32) over images and positions (channels are dim 1).
at::Tensor MeanChannelError(const PairedValue& output) {
  std::vector<int64_t> reduce = {0};
  for (int64_t d = 2; d < output.fp32.dim(); ++d) reduce.push_back(d);
  const int64_t positions = output.fp32.numel() / output.fp32.size(1);
  return (output.simulated.sum(reduce) - output.fp32.sum(reduce)) / static_cast<double>(positions);
}

// Pass 2 (learned rounding, bias correction): node by node over the kept images, fp32 and
// simulated side by side, so each layer is refined with every earlier layer already refined.
// The kept batches run as one: at small inputs the per-op cost dominates, and this halves the
// calls.
absl::Status RefineLayers(QuantizedModel& model, const at::Tensor& kept, const CalibrationOptions& options,
                          int64_t steps_before, int64_t total_steps, const CalibrationProgress& progress,
                          const std::atomic<bool>* cancelled) {
  const Graph& graph = model.fp32;
  std::vector<PairedValue> values(static_cast<size_t>(graph.num_values));
  PairedValue& input = values[static_cast<size_t>(graph.input)];
  input.fp32 = kept;
  input.simulated = kept;
  RoundToQuantizedGrid(model, graph.input, input.simulated);

  const std::vector<int> last_use = LastUses(graph);
  std::vector<at::Tensor> fp32_inputs, simulated_inputs;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (IsCancelled(cancelled)) return Cancelled();
    Node& simulated_node = model.simulated.nodes[i];
    const bool refine = model.plan.node_is_int8[i] && IsWeightedLayer(simulated_node);
    // The bias acts before the fused activation, so outputs are compared there.
    const FusedActivation activation = graph.nodes[i].activation;
    Node fp32_part = graph.nodes[i];
    Node simulated_part = simulated_node;
    if (refine) {
      fp32_part.activation = FusedActivation::kNone;
      simulated_part.activation = FusedActivation::kNone;
    }
    fp32_inputs.clear();
    simulated_inputs.clear();
    for (int value : fp32_part.inputs) {
      fp32_inputs.push_back(values[static_cast<size_t>(value)].fp32);
      simulated_inputs.push_back(values[static_cast<size_t>(value)].simulated);
    }
    PairedValue& output = values[static_cast<size_t>(graph.nodes[i].output)];
    output.fp32 = RunNode(fp32_part, fp32_inputs);
    if (refine && options.rounding.iterations > 0) {
      simulated_node.weight =
          LearnWeightRounding(graph.nodes[i], *model.weights[i], simulated_inputs.front(),
                              ApplyFusedActivation(output.fp32.clone(), activation), options.rounding, i, cancelled);
      simulated_part.weight = simulated_node.weight;
    }
    output.simulated = RunNode(simulated_part, simulated_inputs);
    if (refine) {
      if (options.bias_correction) {
        const at::Tensor correction = MeanChannelError(output);
        ApplyBiasCorrection(model, i, correction);
        std::vector<int64_t> per_channel(static_cast<size_t>(output.simulated.dim()), 1);
        per_channel[1] = -1;
        output.simulated = output.simulated - correction.reshape(per_channel);
      }
      output.simulated = ApplyFusedActivation(output.simulated, activation);
      output.fp32 = ApplyFusedActivation(output.fp32, activation);
    }
    RoundToQuantizedGrid(model, graph.nodes[i].output, output.simulated);
    for (int value : graph.nodes[i].inputs) {
      if (last_use[static_cast<size_t>(value)] == static_cast<int>(i) && value != graph.output) {
        values[static_cast<size_t>(value)] = PairedValue();
      }
    }
    if (progress) progress(steps_before + static_cast<int64_t>(i) + 1, total_steps);
  }
  return absl::OkStatus();
}

// Pass 1: every batch but the last `held_out_count` streams through the fp32 graph once,
// feeding the observers; the first `keep` batches are kept for the layer-by-layer pass, the
// held-out ones (observed by nothing) for scoring.
absl::Status Observe(QuantizedModel& model, BatchStream& batches, const Observers& observers, int64_t keep,
                     std::vector<at::Tensor>* kept, int64_t held_out_count, HeldOutImages* held_out,
                     int64_t total_steps, const CalibrationProgress& progress, const std::atomic<bool>* cancelled) {
  const ValueHook observe = [&observers](int value, at::Tensor& tensor) {
    auto it = observers.find(value);
    if (it != observers.end()) it->second->Observe(tensor);
  };
  const int64_t observed_count = batches.count - held_out_count;
  int64_t done = 0;
  while (true) {
    if (IsCancelled(cancelled)) return Cancelled();
    absl::StatusOr<std::optional<CalibrationBatch>> batch = batches.next();
    if (!batch.ok()) return batch.status();
    if (!batch->has_value()) break;
    at::Tensor& images = (*batch)->images;
    if (done >= observed_count) {
      held_out->batches.push_back(images);
      held_out->labels.insert(held_out->labels.end(), (*batch)->labels.begin(), (*batch)->labels.end());
    } else {
      absl::StatusOr<at::Tensor> run = RunFp32Batch(model.fp32, images, observe, done);
      if (!run.ok()) return run.status();
      const at::Tensor& output = *run;
      if (output.dim() != 2 || output.size(0) != images.size(0)) {
        return absl::FailedPreconditionError(
            absl::StrCat("calibration batch ", done + 1, ": the model's output has shape ", c10::str(output.sizes()),
                         " for ", images.size(0), " images; a classifier returns [images, classes] logits"));
      }
      if (!at::isfinite(output).all().item<bool>()) return NonFiniteActivation(model.fp32, images, done);
      if (static_cast<int64_t>(kept->size()) < keep) kept->push_back(images);
    }
    ++done;
    if (progress) progress(done, total_steps);
  }
  if (done == 0) return absl::FailedPreconditionError("calibration data has no batches");
  if (held_out_count > 0 && held_out->batches.size() != static_cast<size_t>(held_out_count)) {
    return absl::FailedPreconditionError(absl::StrCat("calibration data ended after ", done, " of ", batches.count,
                                                      " batches, before the held-out ones"));
  }
  return absl::OkStatus();
}

// Steps 1-4 on the model's plan from what the observers saw.
absl::Status QuantizeOnPlan(QuantizedModel& model, const Observers& observers, const at::Tensor& kept,
                            const CalibrationOptions& options, int64_t steps_before, int64_t total_steps,
                            const CalibrationProgress& progress, const std::atomic<bool>* cancelled) {
  QuantizeWeights(model, options.weights);
  model.activations.assign(model.plan.points.size(), std::nullopt);
  const bool shared_histograms = options.activation.name == kAutoActivationQuantizer;
  for (int value = 0; value < model.fp32.num_values; ++value) {
    if (absl::Status status = SettlePoint(model, value, observers, shared_histograms); !status.ok()) return status;
  }
  if (options.bias_correction || options.rounding.iterations > 0) {
    if (absl::Status status = RefineLayers(model, kept, options, steps_before, total_steps, progress, cancelled);
        !status.ok()) {
      return status;
    }
  }
  PrepareInt8Kernels(model);
  constexpr int64_t kSqnrImages = 8;  // enough for a stable ratio, cheap in memory
  model.sqnr_images = kept.narrow(0, 0, std::min(kSqnrImages, kept.size(0)));
  model.layer_sqnr = MeasureLayerSqnr(model, model.sqnr_images);
  return absl::OkStatus();
}

bool BetterOnHeldOut(const HeldOutScore& a, const HeldOutScore& b) {
  if (a.agreement_top1 != b.agreement_top1) return a.agreement_top1 > b.agreement_top1;
  return a.logit_sqnr_db > b.logit_sqnr_db;
}

// "auto": the model calibrated with each quantizer's thresholds in turn (steps 1-4, from the
// same histograms) and scored on the held-out images; the one that agrees with fp32's top-1
// most often is kept, ties going to the higher logit SQNR, then to the earlier quantizer.
// (Logit SQNR alone picked HistQuantizer on the shared MobileNetV1-0.25, whose agreement was
// the lowest but KL's there: it is not what top-1 follows.)
absl::Status ChooseActivationQuantizer(QuantizedModel& model, const Observers& observers, const at::Tensor& kept,
                                       const HeldOutImages& held_out, const CalibrationOptions& options,
                                       const std::function<void()>& step, const std::atomic<bool>* cancelled) {
  std::optional<QuantizedModel> best;
  std::vector<QuantizerTrial> trials;
  for (const std::string& quantizer : AutoActivationQuantizers()) {
    model.activation_quantizer = quantizer;
    if (absl::Status status = QuantizeOnPlan(model, observers, kept, options, 0, 0, {}, cancelled); !status.ok()) {
      return status;
    }
    trials.push_back({quantizer, ScoreOnHeldOut(model, held_out)});
    if (!best || BetterOnHeldOut(trials.back().held_out, *best->held_out)) {
      best = model;
      best->held_out = trials.back().held_out;
    }
    step();
  }
  model = *std::move(best);
  model.quantizer_trials = std::move(trials);
  return absl::OkStatus();
}

// Step 5 after the model is calibrated: its held-out score, sensitivity, then the budget's
// trials (each re-planned with more layers in float and redone from the same observations),
// whose last one's score replaces it.
absl::Status MeasureOnHeldOut(QuantizedModel& model, const Observers& observers, const at::Tensor& kept,
                              const HeldOutImages& held_out, const CalibrationOptions& options,
                              const std::function<void()>& step, const std::atomic<bool>* cancelled) {
  if (!model.held_out) model.held_out = ScoreOnHeldOut(model, held_out);  // "auto" scored its choice
  if (options.sensitivity || options.budget.asked()) {
    absl::StatusOr<std::vector<LayerSensitivity>> sensitivity = MeasureLayerSensitivity(model, held_out, step, cancelled);
    if (!sensitivity.ok()) return sensitivity.status();
    model.sensitivity = *std::move(sensitivity);
    model.error_sources = MeasureErrorSources(model, held_out);
  }
  if (!options.budget.asked()) return absl::OkStatus();
  const RequantizeWithFloatLayers requantize = [&](const std::vector<std::string>& float_layers) {
    PlanOptions plan_options = options.plan;
    plan_options.budget_float_layers = float_layers;
    absl::StatusOr<QuantPlan> plan = PlanQuantization(model.fp32, model.se_blocks, plan_options);
    if (!plan.ok()) return plan.status();
    model.plan = *std::move(plan);
    return QuantizeOnPlan(model, observers, kept, options, 0, 0, {}, cancelled);
  };
  absl::StatusOr<AccuracyBudgetReport> budget =
      FallBackUntilBudget(model, held_out, *model.held_out, options.budget, model.sensitivity, requantize, step,
                          cancelled);
  if (!budget.ok()) return budget.status();
  model.budget = *std::move(budget);
  model.held_out = model.budget->result;
  return absl::OkStatus();
}

// Equalization: the first `count` batches are read ahead, the graph equalized on them (its
// activation ranges for per-channel weights, its weight ranges for per-tensor ones; the
// pre-equalization graph kept as the fp32 reference), and `batches` then yields them again
// before the rest.
absl::Status EqualizeOnFirstBatches(QuantizedModel& model, BatchStream& batches, int64_t count,
                                    WeightGranularity weights) {
  auto read_ahead = std::make_shared<std::vector<CalibrationBatch>>();
  std::vector<at::Tensor> images;
  while (static_cast<int64_t>(read_ahead->size()) < count) {
    absl::StatusOr<std::optional<CalibrationBatch>> batch = batches.next();
    if (!batch.ok()) return batch.status();
    if (!batch->has_value()) break;
    images.push_back((*batch)->images);
    read_ahead->push_back(**std::move(batch));
  }
  model.before_equalization = model.fp32;
  model.equalized_values = weights == WeightGranularity::kPerChannel
                               ? EqualizeActivationRanges(model.fp32, model.plan, images)
                               : EqualizeWeightRanges(model.fp32, model.plan, images);
  batches.next = [read_ahead, next = std::move(batches.next), at = size_t{0}]() mutable
      -> absl::StatusOr<std::optional<CalibrationBatch>> {
    if (at < read_ahead->size()) return std::optional<CalibrationBatch>(std::move((*read_ahead)[at++]));
    return next();
  };
  return absl::OkStatus();
}

}  // namespace

absl::Status Calibrate(QuantizedModel& model, BatchStream& batches, const CalibrationOptions& options,
                       const CalibrationProgress& progress, const std::atomic<bool>* cancelled) {
  model.calibrated = false;
  model.held_out.reset();
  model.sensitivity.clear();
  model.error_sources.reset();
  model.budget.reset();
  model.quantizer_trials.clear();
  if (model.before_equalization) model.fp32 = *std::exchange(model.before_equalization, std::nullopt);
  model.equalized_values.clear();
  const bool choose_quantizer = options.activation.name == kAutoActivationQuantizer;
  const int64_t held_out_count = options.holdout_batches;
  if (held_out_count > 0 && held_out_count >= batches.count) {
    return absl::FailedPreconditionError(absl::StrCat("ptq.holdout_batches (", held_out_count,
                                                      ") must leave calibration batches to calibrate on; the data has ",
                                                      batches.count));
  }
  model.activation_quantizer = options.activation.name;
  const bool measure_sensitivity = options.sensitivity || options.budget.asked();
  if ((choose_quantizer || measure_sensitivity) && held_out_count == 0) {
    return absl::InvalidArgumentError(
        "activation_quantizer \"auto\", sensitivity and accuracy budgets need held-out batches (ptq.holdout_batches)");
  }
  Observers observers;
  if (held_out_count > 0) {
    for (int value = 0; value < model.fp32.num_values; ++value) {
      observers[value] = MakeActivationObserver(options.activation);
    }
  } else {
    for (int value : model.plan.ObservedValues()) observers[value] = MakeActivationObserver(options.activation);
  }
  // The first batch is kept anyway: the per-layer SQNR report is measured on it.
  const bool refine = options.bias_correction || options.rounding.iterations > 0;
  const int64_t keep = std::max<int64_t>(1, refine ? options.bias_correction_batches : 0);
  const int64_t layers = static_cast<int64_t>(model.fp32.nodes.size());
  int64_t weighted_int8 = 0;
  for (size_t i = 0; i < model.fp32.nodes.size(); ++i) {
    weighted_int8 += model.plan.node_is_int8[i] && IsWeightedLayer(model.fp32.nodes[i]);
  }
  const int64_t choice_steps = choose_quantizer ? static_cast<int64_t>(AutoActivationQuantizers().size()) : 0;
  const int64_t total_steps = batches.count + (refine && !choose_quantizer ? layers : 0) + choice_steps +
                              (measure_sensitivity ? weighted_int8 : 0) + (options.budget.asked() ? weighted_int8 : 0);
  if (options.equalize) {
    const int64_t read_ahead =
        std::min<int64_t>(std::max(1, options.bias_correction_batches), batches.count - held_out_count);
    if (absl::Status status = EqualizeOnFirstBatches(model, batches, read_ahead, options.weights); !status.ok()) {
      return status;
    }
  }
  std::vector<at::Tensor> kept;
  HeldOutImages held_out;
  absl::Status status =
      Observe(model, batches, observers, keep, &kept, held_out_count, &held_out, total_steps, progress, cancelled);
  if (!status.ok()) return status;
  const at::Tensor kept_images = at::cat(kept);
  model.input_shape = kept.front().sizes().vec();
  if (held_out_count > 0) ComputeFp32Logits(model, held_out);
  int64_t done = batches.count + (refine && !choose_quantizer ? layers : 0);
  const std::function<void()> step = [&] {
    if (progress) progress(++done, total_steps);
  };
  status = choose_quantizer
               ? ChooseActivationQuantizer(model, observers, kept_images, held_out, options, step, cancelled)
               : QuantizeOnPlan(model, observers, kept_images, options, batches.count, total_steps, progress, cancelled);
  if (status.ok() && held_out_count > 0) {
    status = MeasureOnHeldOut(model, observers, kept_images, held_out, options, step, cancelled);
    if (status.ok() && progress) progress(total_steps, total_steps);  // a budget met early ends here
  }
  if (!status.ok()) return status;
  model.calibrated = true;
  return absl::OkStatus();
}

absl::Status RestoreCalibration(QuantizedModel& model, const CalibrationState& state, WeightGranularity weights) {
  model.calibrated = false;
  const Graph& graph = model.fp32;
  if (state.node_signatures.size() != graph.nodes.size()) {
    return absl::FailedPreconditionError(absl::StrCat("it was calibrated on a graph of ", state.node_signatures.size(),
                                                      " nodes; this one has ", graph.nodes.size()));
  }
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (const std::string here = NodeSignature(graph.nodes[i]); state.node_signatures[i] != here) {
      return absl::FailedPreconditionError(absl::StrCat("node ", i, " was '", state.node_signatures[i],
                                                        "' where it was calibrated and is '", here, "' here"));
    }
  }
  if (state.sqnr_images.dim() != 4 || state.sqnr_images.size(0) == 0) {
    return absl::FailedPreconditionError("it holds no input images");
  }
  const auto valid_node = [&](int node) { return node >= 0 && static_cast<size_t>(node) < graph.nodes.size(); };
  const auto valid_value = [&](int value) { return value >= 0 && value < graph.num_values; };
  for (const auto& [node, layer] : state.equalized_layers) {
    const at::Tensor& weight = graph.nodes[static_cast<size_t>(valid_node(node) ? node : 0)].weight;
    if (!valid_node(node) || !weight.defined() || !layer.first.sizes().equals(weight.sizes())) {
      return absl::FailedPreconditionError(absl::StrCat("its equalized weights of node ", node, " do not fit"));
    }
  }
  for (int value : state.equalized_values) {
    if (!valid_value(value)) return absl::FailedPreconditionError(absl::StrCat("it names value ", value));
  }
  model.activation_quantizer = state.activation_quantizer;
  if (model.before_equalization) model.fp32 = *std::exchange(model.before_equalization, std::nullopt);
  model.equalized_values = state.equalized_values;
  if (!state.equalized_layers.empty()) {
    model.before_equalization = model.fp32;
    for (const auto& [node, layer] : state.equalized_layers) {
      Node& equalized = model.fp32.nodes[static_cast<size_t>(node)];
      equalized.weight = layer.first.to(equalized.weight.device());
      if (layer.second.defined()) equalized.bias = layer.second.to(equalized.weight.device());
    }
  }
  QuantizeWeights(model, weights);
  model.activations.assign(model.plan.points.size(), std::nullopt);
  for (int value = 0; value < graph.num_values; ++value) {
    const std::optional<ActivationPoint>& point = model.plan.points[static_cast<size_t>(value)];
    if (!point) continue;
    if (point->source != PointSource::kObserved) {
      if (absl::Status settled = SettlePoint(model, value, {}, false); !settled.ok()) return settled;
      continue;
    }
    auto saved = state.activations.find(value);
    if (saved == state.activations.end() || saved->second.scheme != point->scheme) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the activation of '", point->name, "' was not quantized ",
          saved == state.activations.end() ? "there" : "with this scheme there",
          ", so it has no calibrated range (its layers were in float); calibrate again to quantize them"));
    }
    model.activations[static_cast<size_t>(value)] = saved->second;
  }
  for (const auto& [node, correction] : state.bias_corrections) {
    if (!valid_node(node)) return absl::FailedPreconditionError(absl::StrCat("it names node ", node));
    const size_t index = static_cast<size_t>(node);
    if (!model.plan.node_is_int8[index] || !IsWeightedLayer(model.simulated.nodes[index])) continue;
    const at::Tensor& weight = model.simulated.nodes[index].weight;
    if (correction.dim() != 1 || correction.size(0) != weight.size(0)) {
      return absl::FailedPreconditionError(absl::StrCat("its bias correction of node ", node, " does not fit"));
    }
    ApplyBiasCorrection(model, index, correction.to(weight.device(), weight.scalar_type()));
  }
  PrepareInt8Kernels(model);
  const at::Device device = graph.nodes.empty() || !graph.nodes.front().weight.defined()
                                ? at::Device(at::kCPU)
                                : graph.nodes.front().weight.device();
  model.sqnr_images = state.sqnr_images.to(device);
  model.input_shape = model.sqnr_images.sizes().vec();
  model.layer_sqnr = MeasureLayerSqnr(model, model.sqnr_images);
  model.held_out.reset();
  model.sensitivity.clear();
  model.budget.reset();
  model.quantizer_trials.clear();
  model.calibrated = true;
  return absl::OkStatus();
}

}  // namespace ptq::core
