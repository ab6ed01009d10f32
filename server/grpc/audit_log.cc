#include "grpc/audit_log.h"

#include <grpcpp/support/interceptor.h>

#include <algorithm>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "ptq/v1/service.pb.h"
#include "spdlog/spdlog.h"

namespace ptq::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

constexpr absl::string_view kServicePrefix = "/ptq.v1.QuantService/";
// Ids clients send are echoed at most this long.
constexpr size_t kMaxLoggedIdLength = 100;

// The methods that change or run something: each gets an audit line whatever its result.
bool IsMutating(absl::string_view method) {
  return method == "UploadModel" || method == "SubmitQuantJob" || method == "StreamCalibrationBatch" ||
         method == "CancelJob" || method == "DeleteJob" || method == "DeleteModel" || method == "Evaluate";
}

// `value` as it is when it is made of plain characters, else quoted with C escapes.
std::string LogValue(absl::string_view value) {
  value = value.substr(0, kMaxLoggedIdLength);
  const bool plain = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
    return absl::ascii_isalnum(c) || absl::StrContains("._:/@=+-", c);
  });
  return plain ? std::string(value) : absl::StrCat("\"", absl::CEscape(value), "\"");
}

class AuditInterceptor : public grpc::experimental::Interceptor {
 public:
  AuditInterceptor(const CallAuthenticator* authenticator, grpc::experimental::ServerRpcInfo* info)
      : authenticator_(authenticator), info_(info) {
    method_ = std::string(absl::StripPrefix(info->method(), kServicePrefix));
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      NoteRequest(methods->GetRecvMessage());
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      NoteResponse(methods->GetSendMessage());
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      Log(methods->GetSendStatus());
    }
    methods->Proceed();
  }

 private:
  // gRPC hands interceptors each message untyped; the method fixes its type.
  void NoteRequest(const void* message) {
    if (message == nullptr) return;  // a read that failed (the end of a client stream)
    std::lock_guard<std::mutex> lock(mutex_);
    if (method_ == "SubmitQuantJob") {
      const auto* request = static_cast<const v1::SubmitQuantJobRequest*>(message);
      model_id_ = request->config().model().model_id();
      validate_only_ = request->validate_only();
    } else if (method_ == "StreamCalibrationBatch" && job_id_.empty()) {
      job_id_ = static_cast<const v1::CalibrationBatch*>(message)->job_id();
    } else if (method_ == "CancelJob") {
      job_id_ = static_cast<const v1::CancelJobRequest*>(message)->job_id();
    } else if (method_ == "DeleteJob") {
      job_id_ = static_cast<const v1::DeleteJobRequest*>(message)->job_id();
    } else if (method_ == "DeleteModel") {
      model_id_ = static_cast<const v1::DeleteModelRequest*>(message)->model_id();
    } else if (method_ == "Evaluate") {
      const auto* request = static_cast<const v1::EvaluateRequest*>(message);
      job_id_ = request->job_id();
      model_id_ = request->model_id();
    }
  }

  void NoteResponse(const void* message) {
    if (message == nullptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (method_ == "UploadModel") {
      model_id_ = static_cast<const v1::Model*>(message)->model_id();
    } else if (method_ == "SubmitQuantJob") {
      job_id_ = static_cast<const v1::Job*>(message)->job_id();
    }
  }

  void Log(const grpc::Status& status) {
    const bool refused = status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
                         status.error_code() == grpc::StatusCode::PERMISSION_DENIED;
    if (!refused && !IsMutating(method_)) return;
    std::string line = absl::StrCat("audit method=", LogValue(method_));
    if (absl::StatusOr<Identity> caller = authenticator_->Authenticate(*info_->server_context()); caller.ok()) {
      absl::StrAppend(&line, " who=", LogValue(caller->who), " tenant=", LogValue(caller->tenant),
                      " role=", RoleName(caller->role));
    } else {
      absl::StrAppend(&line, " who=unauthenticated");
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (!job_id_.empty()) absl::StrAppend(&line, " job=", LogValue(job_id_));
    if (!model_id_.empty()) absl::StrAppend(&line, " model=", LogValue(model_id_));
    if (validate_only_) absl::StrAppend(&line, " validate_only=true");
    absl::StrAppend(&line, " peer=", LogValue(info_->server_context()->peer()),
                    " result=", StatusCodeName(status.error_code()));
    spdlog::info("{}", line);
  }

  static std::string StatusCodeName(grpc::StatusCode code) {
    return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  }

  const CallAuthenticator* authenticator_;
  grpc::experimental::ServerRpcInfo* info_;
  std::string method_;
  std::mutex mutex_;
  std::string job_id_;
  std::string model_id_;
  bool validate_only_ = false;
};

}  // namespace

grpc::experimental::Interceptor* AuditLogFactory::CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) {
  return new AuditInterceptor(authenticator_, info);
}

}  // namespace ptq::server
