#ifndef PTQ_SERVER_CALIBRATION_REUSE_H_
#define PTQ_SERVER_CALIBRATION_REUSE_H_

#include "absl/status/status.h"
#include "ptq/v1/job.pb.h"

namespace ptq::server {

// calibration.from_job: fills `config` from `earlier`, the SUCCEEDED job whose calibration it
// reuses (its config as stored, every default resolved). Every model, input and ptq key
// `config` leaves unset is taken from `earlier`; those that decide how the ranges were measured
// (model, input, activation and weight quantizers and their settings, fuse, fuse_list, bias
// correction, weight rounding, equalization) must equal `earlier`'s where given, and the plan's
// (skip_layers, skip_se_quant, backend) may differ. Sensitivity and accuracy budgets are never
// taken: they need held-out data. INVALID_ARGUMENT naming the key that differs;
// FAILED_PRECONDITION when `earlier` learned its weight rounding, which is not kept.
absl::Status InheritCalibration(const v1::Job& earlier, v1::JobConfig* config);

}  // namespace ptq::server

#endif  // PTQ_SERVER_CALIBRATION_REUSE_H_
