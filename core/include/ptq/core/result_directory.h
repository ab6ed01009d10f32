#ifndef PTQ_CORE_RESULT_DIRECTORY_H_
#define PTQ_CORE_RESULT_DIRECTORY_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "ptq/core/quantization_session.h"

namespace ptq::core {

// What report.json says about one quantization run.
struct RunReport {
  std::string config_json;  // the job config as accepted (a JSON document)
  std::string engine;       // int8 engine of int8_infer/model.pt
  std::vector<VariantAccuracy> metrics;
  std::vector<std::pair<std::string, double>> timings_seconds;  // e.g. {"calibration", 2.1}
  std::vector<LayerReport> layers;
};

// report.json's text (pretty-printed). Infinite SQNRs (identical outputs) are written as null.
std::string ReportJson(const RunReport& report);

// Finishes a result directory built in `staging`: writes report.json, then MANIFEST (one
// "<sha256>  <relative path>" line per file, sorted, as sha256sum prints them), then renames
// `staging` to `destination` in one step, so a reader sees the whole directory or none of it.
// ALREADY_EXISTS when `destination` exists; `staging` is left for the caller to remove on error.
absl::Status PublishResultDirectory(const std::string& staging, const std::string& destination,
                                    const RunReport& report);

}  // namespace ptq::core

#endif  // PTQ_CORE_RESULT_DIRECTORY_H_
