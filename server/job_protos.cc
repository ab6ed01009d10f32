#include "job_protos.h"

namespace ptq::server {

v1::VariantMetrics ToProto(const core::VariantAccuracy& accuracy) {
  v1::VariantMetrics metrics;
  metrics.set_variant(accuracy.variant);
  metrics.set_top1(accuracy.top1);
  metrics.set_top5(accuracy.top5);
  metrics.set_count(accuracy.count);
  metrics.set_agreement_top1(accuracy.agreement_top1);
  metrics.set_images_per_second(accuracy.images_per_second);
  return metrics;
}

void SetArtifacts(const std::vector<core::ManifestEntry>& entries, v1::Job& job) {
  job.clear_artifacts();
  for (const core::ManifestEntry& entry : entries) {
    v1::Artifact* artifact = job.add_artifacts();
    artifact->set_path(entry.path);
    artifact->set_sha256(entry.sha256);
    artifact->set_size_bytes(entry.size_bytes);
  }
  // MANIFEST lists every file but itself; downloads offer it too.
  v1::Artifact* manifest = job.add_artifacts();
  manifest->set_path("MANIFEST");
}

}  // namespace ptq::server
