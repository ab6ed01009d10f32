// fp32 vs simulated int8 accuracy of one model for several PTQ configurations, as a Markdown
// table, with calibration time next to the time of the same number of plain fp32 passes.
//
//   build/bench/bench_ptq_accuracy [--model M.pt] [--data DIR] [--calibration-images N]
//       [--batch B] [--eval-images N] [--mean M] [--std S] [--threads T] [--quantizers A,B,..]
//
// Defaults: the shared ImageNet MobileNetV1-0.25 on ../shared/data/imagenet-sample, the first
// 320 images for calibration (10 x 32), all 1000 for evaluation, every activation quantizer with
// and without bias correction, per-channel weights, fuse on. --eval-data evaluates on another
// dataset (held-out images); --layer-sqnr prints each int8 layer's output SQNR.
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_split.h"
#include "ptq/core/dataset.h"
#include "ptq/core/devices.h"
#include "ptq/core/quantization_session.h"

namespace {

struct Options {
  std::string model = PTQ_SHARED_DIR "/models/mobilenet_v1_0.25_224_keras_imagenet.pt";
  std::string data = PTQ_SHARED_DIR "/data/imagenet-sample";
  std::string eval_data;  // empty: `data`
  int calibration_images = 320;
  int batch = 32;
  int eval_images = 0;
  float mean = 127.5f;
  float std = 127.5f;
  int threads = 2;
  std::string quantizers = "AbsmaxQuantizer,HistQuantizer,KLQuantizer,MSEQuantizer,PercentileQuantizer";
  bool layer_sqnr = false;
  bool fuse = true;
  int bias_correction_batches = ptq::core::PtqConfig().bias_correction_batches;
  std::string weight_rounding = "nearest";
  int adaround_iterations = ptq::core::PtqConfig().adaround_iterations;
  std::string bias_correction = "both";  // rows without and with it, or only "on" / "off"
  bool sensitivity = false;
  std::optional<bool> equalize;
  double min_agreement = -1;
  double max_top1_drop = -1;
  int holdout_batches = ptq::core::PtqConfig().holdout_batches;
};

ptq::core::DataSpec DataOf(const Options& options, const std::string& path, int64_t limit) {
  ptq::core::DataSpec spec;
  spec.path = path;
  spec.limit = limit;
  spec.batch_size = options.batch;
  spec.preprocess.mean = {options.mean};
  spec.preprocess.std = {options.std};
  return spec;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string onednn_isa = ptq::core::CapOnednnBelowAmx();  // as ptq-server runs
  Options options;
  CLI::App app{"PTQ accuracy table"};
  app.add_option("--model", options.model);
  app.add_option("--data", options.data);
  app.add_option("--eval-data", options.eval_data, "evaluate on this dataset instead of --data (held-out images)");
  app.add_option("--calibration-images", options.calibration_images);
  app.add_option("--batch", options.batch);
  app.add_option("--eval-images", options.eval_images, "0: all");
  app.add_option("--mean", options.mean);
  app.add_option("--std", options.std);
  app.add_option("--threads", options.threads);
  app.add_option("--quantizers", options.quantizers);
  app.add_option("--fuse", options.fuse, "fold BatchNorm (ptq.fuse)");
  app.add_option("--bias-correction-batches", options.bias_correction_batches, "ptq.bias_correction_batches");
  app.add_option("--weight-rounding", options.weight_rounding, "ptq.weight_rounding: nearest or adaround");
  app.add_option("--adaround-iterations", options.adaround_iterations, "ptq.adaround_iterations");
  app.add_option("--bias-correction", options.bias_correction, "both, on or off")
      ->check(CLI::IsMember({"both", "on", "off"}));
  app.add_option("--equalize", options.equalize,
                 "ptq.equalize: cross-layer equalization of activation ranges (unset: on unless a budget is asked)");
  app.add_flag("--sensitivity", options.sensitivity, "ptq.sensitivity: print each layer's held-out sensitivity");
  app.add_option("--min-agreement", options.min_agreement, "ptq.min_agreement (percent)");
  app.add_option("--max-top1-drop", options.max_top1_drop, "ptq.max_top1_drop (points)");
  app.add_option("--holdout-batches", options.holdout_batches, "ptq.holdout_batches");
  app.add_flag("--layer-sqnr", options.layer_sqnr, "after each row, every int8 layer's output SQNR (dB) against fp32");
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(options.threads);

  std::printf("model %s (onednn %s)\ndata %s: calibrate on the first %d images (batch %d), evaluate on %s of %s\n\n",
              options.model.c_str(), onednn_isa.c_str(), options.data.c_str(), options.calibration_images, options.batch,
              options.eval_images > 0 ? std::to_string(options.eval_images).c_str() : "all",
              options.eval_data.empty() ? "the same" : options.eval_data.c_str());
  std::printf("| activation quantizer | bias correction | fp32 top-1 | int8 top-1 | drop | fp32 top-5 | "
              "int8 top-5 | agreement | calibration s | fp32 passes s | ratio |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (absl::string_view quantizer : absl::StrSplit(options.quantizers, ',')) {
    for (bool bias_correction : {false, true}) {
      if (options.bias_correction != "both" && bias_correction != (options.bias_correction == "on")) continue;
      ptq::core::PtqConfig config;
      config.sensitivity = options.sensitivity;
      config.equalize = options.equalize;
      config.min_agreement = options.min_agreement;
      config.max_top1_drop = options.max_top1_drop;
      config.holdout_batches = options.holdout_batches;
      config.activation_quantizer = std::string(quantizer);
      config.fuse = options.fuse;
      config.bias_correction_batches = options.bias_correction_batches;
      config.weight_rounding = options.weight_rounding;
      config.adaround_iterations = options.adaround_iterations;
      config.bias_correction = bias_correction;
      auto session = ptq::core::QuantizationSession::Create(options.model, config, {});
      if (!session.ok()) {
        std::fprintf(stderr, "%s\n", session.status().ToString().c_str());
        return 1;
      }
      // Baseline: the same images through plain fp32 forward passes (an uncalibrated session
      // cannot evaluate, so time a fresh pass of the data through the fp32 graph via Evaluate of
      // a calibrated twin below).
      auto calibration_data = ptq::core::OpenDataset(DataOf(options, options.data, options.calibration_images));
      if (!calibration_data.ok()) {
        std::fprintf(stderr, "%s\n", calibration_data.status().ToString().c_str());
        return 1;
      }
      const auto start = std::chrono::steady_clock::now();
      absl::Status calibrated = (*session)->Calibrate(**calibration_data, nullptr, nullptr);
      const double calibration_seconds = Seconds(start);
      if (!calibrated.ok()) {
        std::fprintf(stderr, "%s\n", calibrated.ToString().c_str());
        return 1;
      }
      auto eval_data = ptq::core::OpenDataset(DataOf(options, options.eval_data.empty() ? options.data : options.eval_data, options.eval_images));
      auto accuracy = (*session)->Evaluate(**eval_data, nullptr, nullptr);
      if (!accuracy.ok()) {
        std::fprintf(stderr, "%s\n", accuracy.status().ToString().c_str());
        return 1;
      }
      const auto& fp32 = (*accuracy)[0];
      const auto& int8 = (*accuracy)[1];
      const double fp32_pass_seconds = options.calibration_images / fp32.images_per_second;
      std::printf("| %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f | %.2fx |\n",
                  std::string(quantizer).c_str(), bias_correction ? "yes" : "no", fp32.top1, int8.top1,
                  fp32.top1 - int8.top1, fp32.top5, int8.top5, int8.agreement_top1, calibration_seconds,
                  fp32_pass_seconds, calibration_seconds / fp32_pass_seconds);
      for (const ptq::core::QuantizerTrial& trial : (*session)->ActivationQuantizerTrials()) {
        std::printf("|   auto tried %s: held-out agreement %.2f%%, drop %.2f, logit SQNR %.2f dB%s |\n",
                    trial.quantizer.c_str(), trial.held_out.agreement_top1, trial.held_out.top1_drop,
                    trial.held_out.logit_sqnr_db,
                    trial.quantizer == (*session)->ActivationQuantizerUsed() ? " (chosen)" : "");
      }
      if (const std::optional<ptq::core::HeldOutScore> held_out = (*session)->HeldOut()) {
        std::printf("|   held out: %lld images, agreement %.2f%%, drop %.2f, logit SQNR %.1f dB |\n",
                    static_cast<long long>(held_out->images), held_out->agreement_top1, held_out->top1_drop,
                    held_out->logit_sqnr_db);
      }
      if (const std::optional<ptq::core::AccuracyBudgetReport> budget = (*session)->AccuracyBudget()) {
        std::printf("|   budget %s after %d trials: all-int8 agreement %.2f%% drop %.2f; %zu float layers (%.1f%% MACs):",
                    budget->met ? "met" : "NOT met", budget->trials, budget->all_int8.agreement_top1,
                    budget->all_int8.top1_drop, budget->float_layers.size(), budget->float_mac_percent);
        for (const std::string& layer : budget->float_layers) std::printf(" %s", layer.c_str());
        std::printf(" |\n");
      }
      if (options.sensitivity) {
        for (const ptq::core::LayerSensitivity& layer : (*session)->Sensitivity()) {
          std::printf("|   %s %s | MACs %.1f%% | SQNR %.1f dB | only int8: agree %.1f%% logit SQNR %.1f dB | "
                      "only float: agree %.1f%% logit SQNR %.1f dB |\n",
                      layer.op.c_str(), layer.module_path.c_str(), layer.mac_percent, layer.sqnr_db,
                      layer.only_this_int8.agreement_top1, layer.only_this_int8.logit_sqnr_db,
                      layer.only_this_float.agreement_top1, layer.only_this_float.logit_sqnr_db);
        }
      }
      if (options.layer_sqnr) {
        for (const ptq::core::LayerReport& layer : (*session)->LayerSqnr()) {
          std::printf("|   %s %s | | SQNR %.1f dB |\n", layer.op.c_str(), layer.module_path.c_str(), layer.sqnr_db);
        }
      }
      std::fflush(stdout);
    }
  }
  return 0;
}
