#ifndef PTQ_CORE_PTQ_CONFIG_H_
#define PTQ_CORE_PTQ_CONFIG_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ptq::core {

// The `ptq` section of a job config: the PaddleSlim seed's knobs under their names, plus ours.
struct PtqConfig {
  // AbsmaxQuantizer, HistQuantizer, KLQuantizer (the seed's default), MSEQuantizer,
  // PercentileQuantizer (ours: the seed's KL and unfolded BatchNorm lose several points on
  // ImageNet MobileNets we never tuned on; bench/results/accuracy_defaults.md), or "auto": each
  // of them tried, the one agreeing most with fp32's top-1 on held-out images kept.
  std::string activation_quantizer = "PercentileQuantizer";
  // PerChannelAbsmaxQuantizer (default) or AbsmaxQuantizer (per tensor); symmetric int8.
  std::string weight_quantizer = "PerChannelAbsmaxQuantizer";
  int bins = 1024;              // histogram bins (Hist, KL, MSE, Percentile)
  int upsample_bins = 64;       // resampling factor when a histogram's range grows
  double hist_percent = 0.99999;  // HistQuantizer
  double percentile = 99.99;      // PercentileQuantizer
  bool fuse = true;             // fold BatchNorm into conv/linear (the seed: false)
  std::vector<std::vector<std::string>> fuse_list;  // only these [layer, batch_norm] pairs
  bool skip_se_quant = false;   // keep squeeze-excitation layers in float
  std::vector<std::string> skip_layers;  // keep these conv/linear layers in float
  // Empirical bias correction from the calibration batches. On by default: it won for every
  // activation quantizer on the real MobileNetV1-0.25 (see bench_ptq_accuracy).
  bool bias_correction = true;
  // How many of the first calibration batches bias correction measures on. It holds two live
  // activations per kept image at each layer, so memory grows with it.
  int bias_correction_batches = 2;
  // "nearest", or "adaround": each int8 layer's weight rounding learned on the kept calibration
  // batches (AdaRound), `adaround_iterations` optimizer steps per layer.
  std::string weight_rounding = "nearest";
  int adaround_iterations = 500;
  // Cross-layer equalization before ranges are set, measured on the first
  // `bias_correction_batches` batches: each channel of an activation between two int8 convs
  // rescaled toward the tensor's range with per-channel weights, toward balanced weight ranges
  // (DFQ) with per-tensor weights. Unset: on, except with an accuracy budget (Equalizes()). With
  // per-channel weights it raised top-1 agreement with fp32 on every model measured; with
  // per-tensor ones it made MobileNetV1/V2 usable and left the MobileNetV3s within noise
  // (bench/results/equalize_ab_per_tensor.md). It clips rescaled channels
  // near their calibration maximum, which float layers keep: a budget on the shared
  // MobileNetV1-0.25 then left 17 layers float instead of 7, and its int8 file ran no faster
  // than fp32 (bench/results/accuracy_defaults.md).
  std::optional<bool> equalize;
  // Per-layer sensitivity on held-out calibration images (report.json, sensitivity.svg).
  bool sensitivity = false;
  // Accuracy budget on held-out calibration images (-1: none): layers are left in float, most
  // sensitive first, until int8 agrees with fp32 on at least `min_agreement` percent of them and
  // loses at most `max_top1_drop` top-1 points (this one needs labelled calibration data).
  double min_agreement = -1;
  double max_top1_drop = -1;
  // The last this many calibration batches are held out (set no range or correction) when
  // sensitivity or a budget is asked for.
  int holdout_batches = 2;
  // The int8 engine of the exported TorchScript and of every int8 run: "onednn" or "qnnpack".
  std::string backend = "onednn";

  bool AsksForBudget() const { return min_agreement >= 0 || max_top1_drop >= 0; }
  bool HoldsImagesOut() const { return sensitivity || AsksForBudget() || activation_quantizer == "auto"; }
  bool Equalizes() const { return equalize.value_or(!AsksForBudget()); }
};

// Bounds on the layer lists: a MobileNet has a few hundred named modules; module paths are
// dotted names of a few dozen characters.
inline constexpr size_t kMaxLayerNames = 1024;
inline constexpr size_t kMaxLayerNameLength = 256;
inline constexpr size_t kMaxFuseGroupLayers = 8;
inline constexpr int kMaxBiasCorrectionBatches = 64;
inline constexpr int kMaxAdaRoundIterations = 20000;
inline constexpr int kMaxHoldoutBatches = 64;

// INVALID_ARGUMENT naming the key ("ptq.hist_percent must be in (0, 1], got 2"), including
// numbers out of range and layer lists or names beyond the bounds above.
absl::Status ValidatePtqConfig(const PtqConfig& config);

}  // namespace ptq::core

#endif  // PTQ_CORE_PTQ_CONFIG_H_
