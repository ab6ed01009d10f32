#include "grpc/download_artifact_reactor.h"

#include "absl/strings/str_cat.h"
#include "grpc/status_util.h"
#include "ptq/common/sha256.h"

namespace ptq::server {
namespace {

constexpr size_t kChunkBytes = 1 << 20;

}  // namespace

DownloadArtifactReactor::DownloadArtifactReactor(const JobManager* jobs, const std::filesystem::path& results_dir,
                                                 const TenantScope& caller,
                                                 const v1::DownloadArtifactRequest& request) {
  if (absl::Status opened = Open(jobs, results_dir, caller, request); !opened.ok()) {
    Finish(ToGrpcStatus(opened));
    return;
  }
  StartWrite(&chunk_);
}

absl::Status DownloadArtifactReactor::Open(const JobManager* jobs, const std::filesystem::path& results_dir,
                                           const TenantScope& caller, const v1::DownloadArtifactRequest& request) {
  absl::StatusOr<v1::Job> job = jobs->Get(request.job_id(), caller);
  if (!job.ok()) return job.status();
  if (job->state() != v1::JOB_STATE_SUCCEEDED) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job->job_id(), " has no result directory: it has not succeeded"));
  }
  const v1::Artifact* listed = nullptr;
  for (const v1::Artifact& artifact : job->artifacts()) {
    if (artifact.path() == request.path()) listed = &artifact;
  }
  if (listed == nullptr) {
    return absl::NotFoundError(absl::StrCat("job ", job->job_id(), " has no artifact '", request.path(),
                                            "'; Job.artifacts lists the files"));
  }
  const std::filesystem::path path = results_dir / job->job_id() / listed->path();
  file_.open(path, std::ios::binary);
  if (!file_) return absl::DataLossError(absl::StrCat("artifact '", request.path(), "' is missing on the server"));
  v1::Artifact* header = chunk_.mutable_header();
  *header = *listed;
  if (header->sha256().empty()) {  // MANIFEST is not listed in itself
    absl::StatusOr<std::string> digest = Sha256OfFile(path.string());
    if (!digest.ok()) return digest.status();
    header->set_sha256(*digest);
    header->set_size_bytes(static_cast<int64_t>(std::filesystem::file_size(path)));
  }
  return absl::OkStatus();
}

void DownloadArtifactReactor::OnWriteDone(bool ok) {
  if (!ok) {
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "download cancelled"));
    return;
  }
  WriteNextChunk();
}

void DownloadArtifactReactor::WriteNextChunk() {
  std::string* data = chunk_.mutable_data();
  data->resize(kChunkBytes);
  file_.read(data->data(), static_cast<std::streamsize>(kChunkBytes));
  data->resize(static_cast<size_t>(file_.gcount()));
  if (data->empty()) {
    Finish(file_.eof() ? grpc::Status::OK : grpc::Status(grpc::StatusCode::DATA_LOSS, "cannot read the artifact"));
    return;
  }
  StartWrite(&chunk_);
}

}  // namespace ptq::server
