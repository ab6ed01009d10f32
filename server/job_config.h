#ifndef PTQ_SERVER_JOB_CONFIG_H_
#define PTQ_SERVER_JOB_CONFIG_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "ptq/core/dataset.h"
#include "ptq/core/ptq_config.h"
#include "ptq/v1/config.pb.h"

namespace ptq::server {

// A job config turned into what the engine takes, with every path resolved.
struct ResolvedJob {
  core::PtqConfig ptq;
  core::PreprocessSpec preprocess;
  // Calibration batches arrive with StreamCalibrationBatch ("stream", or "client" through
  // ptq-client) instead of being read from `calibration`.
  bool streamed = false;
  int quant_batch_num = 0;
  int quant_batch_size = 0;
  core::DataSpec calibration;  // server source only: the first quant_batch_num batches
  // calibration.from_job: the job whose calibration_state.pt replaces calibration data.
  std::string calibration_from_job;
  std::optional<core::DataSpec> evaluation;
};

// A config within every list and string bound is far below this; the cap keeps a stored job,
// and so a ListJobs page, small.
inline constexpr size_t kMaxJobConfigBytes = size_t{512} << 10;

// Fills the defaults into `config` (so a stored job says what it ran with) and checks every
// field: INVALID_ARGUMENT naming the key for bad values, strings longer than their bound, and
// configs over kMaxJobConfigBytes; for server-side dataset paths the
// statuses of ResolveDataPath (PERMISSION_DENIED for escapes, NOT_FOUND, ...). Pure: the
// same config and data root always resolve the same way, also after a restart.
absl::StatusOr<ResolvedJob> ResolveJobConfig(v1::JobConfig* config, const std::string& data_root);

// The input section alone, its defaults filled in (an evaluation of an uploaded model reads its
// dataset with it). INVALID_ARGUMENT naming the key.
absl::StatusOr<core::PreprocessSpec> ResolveInput(v1::InputSpec* input);

// An evaluation dataset under the data root, read with `preprocess` in batches of 32: its first
// `limit` images (0: all). Errors name evaluate.path, evaluate.format and evaluate.limit:
// ResolveDataPath's statuses, INVALID_ARGUMENT for an unknown format or a negative limit.
absl::StatusOr<core::DataSpec> ResolveEvaluationData(const std::string& data_root, const std::string& path,
                                                    const std::string& format, int64_t limit,
                                                    const core::PreprocessSpec& preprocess);

}  // namespace ptq::server

#endif  // PTQ_SERVER_JOB_CONFIG_H_
