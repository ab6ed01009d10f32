#ifndef PTQ_CORE_REPORT_H_
#define PTQ_CORE_REPORT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ptq::core {

// What a run reports, as the session measures it, report.json holds it and the server turns
// it into v1::Metrics: accuracy per variant, per-layer precision, held-out scores, the
// automatic choices and the accuracy budget.

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

// Which half of int8 the all-int8 model loses its accuracy to (ptq.sensitivity or an accuracy
// budget), on the held-out images: every conv/linear's int8 weights (corrected biases
// included) with every activation in float, and every activation on its uint8 grid with the
// fp32 weights and biases (as equalized: its clips go with the activations' grids).
struct ErrorSources {
  HeldOutScore weights_only;
  HeldOutScore activations_only;
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

// What reproduces a result besides its config: the software that made it, the model and the
// calibration images.
struct Provenance {
  std::string ptq_version;
  std::string commit;  // of ptq-service's build
  std::string libtorch;
  std::string onednn;
  std::string model_sha256;
  // SHA-256 over the calibration batches as calibrated (FingerprintingSource), and their images.
  std::string calibration_fingerprint;
  int64_t calibration_images = 0;
  // The job whose calibration was reused (calibration.from_job): its report has the above.
  std::string calibration_from_job;
};

// What report.json says about one quantization run.
struct RunReport {
  std::string config_json;  // the job config as accepted (a JSON document)
  Provenance provenance;
  std::string engine;       // int8 engine of int8_infer/model.pt
  std::string onednn_isa;     // instruction set onednn dispatched to when images/s were measured
  std::vector<VariantAccuracy> metrics;
  std::vector<std::pair<std::string, double>> timings_seconds;  // e.g. {"calibration", 2.1}
  std::vector<LayerReport> layers;
  std::optional<HeldOutScore> held_out;      // with held-out calibration images
  std::vector<QuantizerTrial> quantizer_trials;  // activation_quantizer "auto"
  std::string activation_quantizer_used;
  std::vector<LayerSensitivity> sensitivity;  // ptq.sensitivity or a budget
  std::optional<ErrorSources> error_sources;  // ptq.sensitivity or a budget
  std::optional<AccuracyBudgetReport> budget;
};

// report.json's text (pretty-printed). Infinite SQNRs (identical outputs) are written as null.
std::string ReportJson(const RunReport& report);

}  // namespace ptq::core

#endif  // PTQ_CORE_REPORT_H_
