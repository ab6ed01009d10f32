#ifndef PTQ_CORE_RESULT_DIRECTORY_H_
#define PTQ_CORE_RESULT_DIRECTORY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ptq/core/report.h"

namespace ptq::core {

// The models in a result directory, relative to it (WriteArtifacts writes the rest beside them).
inline constexpr char kFp32ModelFile[] = "fp32/model.pt";
inline constexpr char kInt8ModelFile[] = "int8_infer/model.pt";
// What the calibration measured, for jobs that reuse it (calibration.from_job).
inline constexpr char kCalibrationStateFile[] = "calibration_state.pt";

// Finishes a result directory built in `staging`: writes report.json (ReportJson), then
// MANIFEST (one "<sha256>  <relative path>" line per file, sorted, as sha256sum prints them),
// then renames `staging` to `destination` in one step, so a reader sees the whole directory or
// none of it.
// ALREADY_EXISTS when `destination` exists; `staging` is left for the caller to remove on error.
absl::Status PublishResultDirectory(const std::string& staging, const std::string& destination,
                                    const RunReport& report);

// One line of a result directory's MANIFEST, with the file's size.
struct ManifestEntry {
  std::string path;  // relative to the result directory
  std::string sha256;
  int64_t size_bytes = 0;
};

// The files a published result directory lists in its MANIFEST, in its order. NOT_FOUND when
// there is no MANIFEST; DATA_LOSS when a line is malformed or a listed file is missing.
absl::StatusOr<std::vector<ManifestEntry>> ReadManifest(const std::string& directory);

// Appends one evaluation (dataset, variants) to the "evaluations" list of a published result
// directory's report.json, and rewrites MANIFEST to match. Each file is replaced by a rename,
// so readers see the old or the new version, never a partial one. Not safe against concurrent
// calls on the same directory: callers serialize them.
absl::Status AddEvaluationToReport(const std::string& directory, const std::string& dataset,
                                   const std::vector<VariantAccuracy>& metrics);

}  // namespace ptq::core

#endif  // PTQ_CORE_RESULT_DIRECTORY_H_
