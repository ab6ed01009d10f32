#include "quant_service.h"

#include "status_util.h"
#include "upload_model_reactor.h"

namespace ptq::server {

QuantService::QuantService(const ModelStore* models, TaskPool* blocking_pool)
    : models_(models), blocking_pool_(blocking_pool) {}

grpc::ServerReadReactor<v1::UploadModelRequest>* QuantService::UploadModel(
    grpc::CallbackServerContext* /*context*/, v1::Model* response) {
  return new UploadModelReactor(models_, blocking_pool_, response);
}

grpc::ServerUnaryReactor* QuantService::GetModel(grpc::CallbackServerContext* context,
                                                 const v1::GetModelRequest* request,
                                                 v1::Model* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<v1::Model> model = models_->Get(request->model_id());
  if (model.ok()) *response = *std::move(model);
  reactor->Finish(ToGrpcStatus(model.status()));
  return reactor;
}

}  // namespace ptq::server
