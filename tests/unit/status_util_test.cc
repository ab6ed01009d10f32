#include "grpc/status_util.h"

#include <gtest/gtest.h>

namespace ptq::server {
namespace {

TEST(StatusUtilTest, OkStaysOk) { EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok()); }

TEST(StatusUtilTest, KeepsCodeAndMessage) {
  const struct {
    absl::Status status;
    grpc::StatusCode expected;
  } cases[] = {
      {absl::InvalidArgumentError("bad field"), grpc::StatusCode::INVALID_ARGUMENT},
      {absl::NotFoundError("no model"), grpc::StatusCode::NOT_FOUND},
      {absl::ResourceExhaustedError("too big"), grpc::StatusCode::RESOURCE_EXHAUSTED},
      {absl::FailedPreconditionError("wrong state"), grpc::StatusCode::FAILED_PRECONDITION},
      {absl::DataLossError("truncated"), grpc::StatusCode::DATA_LOSS},
      {absl::PermissionDeniedError("outside root"), grpc::StatusCode::PERMISSION_DENIED},
      {absl::UnauthenticatedError("no token"), grpc::StatusCode::UNAUTHENTICATED},
      {absl::UnimplementedError("later"), grpc::StatusCode::UNIMPLEMENTED},
      {absl::InternalError("bug"), grpc::StatusCode::INTERNAL},
  };
  for (const auto& c : cases) {
    const grpc::Status converted = ToGrpcStatus(c.status);
    EXPECT_EQ(converted.error_code(), c.expected) << c.status;
    EXPECT_EQ(converted.error_message(), std::string(c.status.message()));
  }
}

}  // namespace
}  // namespace ptq::server
