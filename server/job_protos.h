#ifndef PTQ_SERVER_JOB_PROTOS_H_
#define PTQ_SERVER_JOB_PROTOS_H_

#include <vector>

#include "ptq/core/report.h"
#include "ptq/core/result_directory.h"
#include "ptq/v1/job.pb.h"

namespace ptq::server {

// Core's results as the job protos say them.
v1::VariantMetrics ToProto(const core::VariantAccuracy& accuracy);

// The job's artifacts: every file of the result directory's MANIFEST, then MANIFEST itself.
void SetArtifacts(const std::vector<core::ManifestEntry>& entries, v1::Job& job);

}  // namespace ptq::server

#endif  // PTQ_SERVER_JOB_PROTOS_H_
