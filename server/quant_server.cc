#include "quant_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace ptq::server {
namespace {

// "0.0.0.0:50051" with the port replaced by `port`.
std::string WithPort(const std::string& address, int port) {
  const size_t colon = address.rfind(':');
  return absl::StrCat(address.substr(0, colon), ":", port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<QuantServer>> QuantServer::Start(const ServerOptions& options) {
  if (options.listen_address.rfind(':') == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen must be host:port, got '", options.listen_address, "'"));
  }
  if (!options.data_root.empty() && !std::filesystem::is_directory(options.data_root)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--data-root '", options.data_root, "' is not a directory"));
  }
  auto server = std::unique_ptr<QuantServer>(new QuantServer());
  absl::StatusOr<std::unique_ptr<ModelStore>> models =
      ModelStore::Create(options.state_dir, options.max_upload_bytes);
  if (!models.ok()) return models.status();
  server->models_ = *std::move(models);
  server->blocking_pool_ = std::make_unique<TaskPool>(options.blocking_threads);
  server->service_ =
      std::make_unique<QuantService>(server->models_.get(), server->blocking_pool_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(options.listen_address, grpc::InsecureServerCredentials(), &bound_port);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.RegisterService(server->service_.get());
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || bound_port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on '", options.listen_address, "'"));
  }
  server->bound_address_ = WithPort(options.listen_address, bound_port);
  grpc::HealthCheckServiceInterface* health = server->grpc_server_->GetHealthCheckService();
  health->SetServingStatus(kServiceName, true);
  health->SetServingStatus(true);
  return server;
}

QuantServer::~QuantServer() { Shutdown(std::chrono::milliseconds(0)); }

void QuantServer::Shutdown(std::chrono::milliseconds grace) {
  if (shut_down_) return;
  shut_down_ = true;
  if (grpc_server_ != nullptr) {
    grpc_server_->GetHealthCheckService()->SetServingStatus(false);
    grpc_server_->Shutdown(std::chrono::system_clock::now() + grace);
    grpc_server_->Wait();
  }
  if (blocking_pool_ != nullptr) blocking_pool_->Stop();
}

}  // namespace ptq::server
