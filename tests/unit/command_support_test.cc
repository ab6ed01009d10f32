// How ptq-client reports a failed call: who said no decides the exit code and the words.
#include "command_support.h"

#include <gtest/gtest.h>

#include <iostream>
#include <sstream>

#include "nlohmann/json.hpp"

namespace ptq::client {
namespace {

// What ReportRpcError writes to stderr, and its exit code.
std::pair<std::string, ExitCode> Reported(const absl::Status& status, bool json) {
  GlobalOptions options;
  options.server = "ptq.example:50051";
  options.timeout = std::chrono::milliseconds(2500);
  options.json = json;
  std::ostringstream captured;
  std::streambuf* stderr_buffer = std::cerr.rdbuf(captured.rdbuf());
  const ExitCode code = ReportRpcError("status", status, options);
  std::cerr.rdbuf(stderr_buffer);
  return {captured.str(), code};
}

TEST(ReportRpcErrorTest, SaysWhoSaidNo) {
  auto [text, code] = Reported(absl::NotFoundError("job 'x' does not exist"), false);
  EXPECT_EQ(code, kExitServerRefused);
  EXPECT_EQ(text, "ptq-client: status: server said NOT_FOUND: job 'x' does not exist\n");

  std::tie(text, code) = Reported(absl::UnavailableError("connection refused"), false);
  EXPECT_EQ(code, kExitError);
  EXPECT_EQ(text, "ptq-client: status: cannot reach server ptq.example:50051 (UNAVAILABLE: connection refused)\n");

  // A connected server that is too slow is not an unreachable one.
  std::tie(text, code) = Reported(absl::DeadlineExceededError("Deadline Exceeded"), false);
  EXPECT_EQ(code, kExitError);
  EXPECT_EQ(text,
            "ptq-client: status: server ptq.example:50051 did not answer within --timeout 2.5 s "
            "(DEADLINE_EXCEEDED: Deadline Exceeded)\n");
}

TEST(ReportRpcErrorTest, UnderJsonTheErrorIsOneDocument) {
  const auto [text, code] = Reported(absl::DeadlineExceededError("Deadline Exceeded"), true);
  EXPECT_EQ(code, kExitError);
  const nlohmann::json error = nlohmann::json::parse(text)["error"];
  EXPECT_EQ(error["command"], "status");
  EXPECT_EQ(error["code"], "DEADLINE_EXCEEDED");
  EXPECT_EQ(error["message"], "Deadline Exceeded");
  EXPECT_EQ(error["explanation"], "server ptq.example:50051 did not answer within --timeout 2.5 s");
  EXPECT_EQ(error["exit_code"], 1);
}

TEST(ReportErrorTest, ALocalErrorIsALineOrUnderJsonOneDocument) {
  GlobalOptions options;
  std::ostringstream captured;
  std::streambuf* stderr_buffer = std::cerr.rdbuf(captured.rdbuf());
  const ExitCode plain = ReportError("download", "report.json does not match MANIFEST", kExitError, options);
  options.json = true;
  const ExitCode as_json = ReportError("download", "report.json does not match MANIFEST", kExitError, options);
  std::cerr.rdbuf(stderr_buffer);
  EXPECT_EQ(plain, kExitError);
  EXPECT_EQ(as_json, kExitError);
  const std::string text = captured.str();
  const size_t line_end = text.find('\n');
  EXPECT_EQ(text.substr(0, line_end + 1), "ptq-client: download: report.json does not match MANIFEST\n");
  const nlohmann::json error = nlohmann::json::parse(text.substr(line_end + 1))["error"];
  EXPECT_EQ(error["command"], "download");
  EXPECT_EQ(error["message"], "report.json does not match MANIFEST");
  EXPECT_EQ(error["exit_code"], 1);
}

}  // namespace
}  // namespace ptq::client
