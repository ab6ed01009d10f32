#ifndef PTQ_SERVER_GRPC_DOWNLOAD_ARTIFACT_REACTOR_H_
#define PTQ_SERVER_GRPC_DOWNLOAD_ARTIFACT_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <fstream>

#include "job_manager.h"
#include "ptq/v1/service.pb.h"

namespace ptq::server {

// One DownloadArtifact call: a header with the file's path, size and sha256, then its bytes in
// 1 MiB chunks, one write at a time. Only files the job lists as artifacts can be fetched.
// Deletes itself in OnDone.
class DownloadArtifactReactor : public grpc::ServerWriteReactor<v1::ArtifactChunk> {
 public:
  DownloadArtifactReactor(const JobManager* jobs, const std::filesystem::path& results_dir, const TenantScope& caller,
                          const v1::DownloadArtifactRequest& request);

  void OnWriteDone(bool ok) override;
  void OnDone() override { delete this; }

 private:
  absl::Status Open(const JobManager* jobs, const std::filesystem::path& results_dir, const TenantScope& caller,
                    const v1::DownloadArtifactRequest& request);
  void WriteNextChunk();

  std::ifstream file_;
  v1::ArtifactChunk chunk_;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_GRPC_DOWNLOAD_ARTIFACT_REACTOR_H_
