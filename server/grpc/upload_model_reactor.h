#ifndef PTQ_SERVER_GRPC_UPLOAD_MODEL_REACTOR_H_
#define PTQ_SERVER_GRPC_UPLOAD_MODEL_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <memory>

#include "absl/status/status.h"
#include "model_store.h"
#include "ptq/common/task_pool.h"
#include "ptq/v1/service.pb.h"

namespace ptq::server {

// One UploadModel call: reads the header, appends each chunk to a PendingUpload, and on the
// end of the stream hands the blocking commit (hash check, TorchScript load) to `commit_pool`
// so that no gRPC callback thread waits on it. Deletes itself in OnDone.
class UploadModelReactor : public grpc::ServerReadReactor<v1::UploadModelRequest> {
 public:
  // The model is stored as `tenant`'s.
  UploadModelReactor(const ModelStore* store, TaskPool* commit_pool, std::string tenant, v1::Model* response);

  void OnReadDone(bool ok) override;
  void OnDone() override;

 private:
  void OnHeader(const v1::UploadModelHeader& header);
  void OnChunk(const std::string& chunk);
  void CommitOnPool();
  // Drops the pending upload (removing its staging files) and ends the call.
  void FinishWithError(const absl::Status& status);

  const ModelStore* store_;
  TaskPool* commit_pool_;
  const std::string tenant_;
  v1::Model* response_;
  v1::UploadModelRequest request_;
  std::unique_ptr<PendingUpload> upload_;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_GRPC_UPLOAD_MODEL_REACTOR_H_
