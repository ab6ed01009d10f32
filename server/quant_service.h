#ifndef PTQ_SERVER_QUANT_SERVICE_H_
#define PTQ_SERVER_QUANT_SERVICE_H_

#include "model_store.h"
#include "ptq/v1/service.grpc.pb.h"
#include "ptq/common/task_pool.h"

namespace ptq::server {

// The gRPC front of ptq.v1.QuantService: turns each call into work for the stores (and, with
// later issues, the job manager). RPCs not overridden here answer UNIMPLEMENTED, which is the
// generated base class's behaviour.
class QuantService final : public v1::QuantService::CallbackService {
 public:
  // Borrows both; they must outlive the gRPC server.
  QuantService(const ModelStore* models, TaskPool* blocking_pool);

  grpc::ServerReadReactor<v1::UploadModelRequest>* UploadModel(grpc::CallbackServerContext* context,
                                                              v1::Model* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* context,
                                     const v1::GetModelRequest* request,
                                     v1::Model* response) override;

 private:
  const ModelStore* models_;
  TaskPool* blocking_pool_;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_QUANT_SERVICE_H_
