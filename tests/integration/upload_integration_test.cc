// A real ptq-server process on loopback, driven by the real ptq-client binary and, for inputs
// the client never sends (wrong sha, truncated streams), by a raw gRPC stub.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "ptq/common/sha256.h"
#include "ptq/v1/service.grpc.pb.h"
#include "server_process.h"
#include "test_env.h"

namespace ptq {
namespace {

namespace fs = std::filesystem;
using testing::ListFiles;
using testing::ProcessResult;
using testing::ServerProcess;
using testing::TempDir;

constexpr int kMaxUploadMb = 1;


class UploadIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(
        state_root_.path() / "state",
        std::vector<std::string>{"--max-upload-mb", std::to_string(kMaxUploadMb)});
    ASSERT_FALSE(server_->address().empty());
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    stub_ = v1::QuantService::NewStub(channel_);
  }

  fs::path tiny_model() const { return testing::TestModelsDir() / "tiny.pt"; }

  // Sends a header and then `payload` in 64 KiB chunks with a raw stub.
  grpc::Status RawUpload(const v1::UploadModelHeader& header, const std::string& payload,
                         v1::Model* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    auto writer = stub_->UploadModel(&context, response);
    v1::UploadModelRequest message;
    *message.mutable_header() = header;
    bool open = writer->Write(message);
    for (size_t offset = 0; open && offset < payload.size(); offset += 65536) {
      message.set_chunk(payload.substr(offset, 65536));
      open = writer->Write(message);
    }
    if (open) writer->WritesDone();
    return writer->Finish();
  }

  static v1::UploadModelHeader HeaderFor(const std::string& bytes, const std::string& name) {
    v1::UploadModelHeader header;
    header.set_filename(name);
    header.set_size_bytes(static_cast<int64_t>(bytes.size()));
    header.set_sha256(Sha256Hex(bytes));
    return header;
  }

  // Nothing half-uploaded may remain: staging is empty and models/ holds only `expected_ids`.
  void ExpectStoreHolds(const std::vector<std::string>& expected_ids) {
    EXPECT_TRUE(ListFiles(server_->state_dir() / "staging").empty());
    std::vector<std::string> expected_files;
    for (const std::string& id : expected_ids) {
      expected_files.push_back(id + "/model.json");
      expected_files.push_back(id + "/model.pt");
      expected_files.push_back(id + "/owners/default");  // no identities: every caller is tenant default's
    }
    std::sort(expected_files.begin(), expected_files.end());
    EXPECT_EQ(ListFiles(server_->state_dir() / "models"), expected_files);
  }

  void ExpectStillServing() {
    ProcessResult health = server_->Client({"health"});
    EXPECT_EQ(health.exit_code, 0) << health.stderr_text << "\nserver log:\n" << server_->log();
  }

  TempDir state_root_;
  std::unique_ptr<ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::QuantService::Stub> stub_;
};

TEST_F(UploadIntegrationTest, HealthReportsServingInTextAndJson) {
  ProcessResult text = server_->Client({"health"});
  EXPECT_EQ(text.exit_code, 0) << text.stderr_text;
  EXPECT_NE(text.stdout_text.find("SERVING"), std::string::npos) << text.stdout_text;

  ProcessResult json = server_->Client({"health", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.stderr_text;
  EXPECT_EQ(nlohmann::json::parse(json.stdout_text).at("status"), "SERVING");
}

TEST_F(UploadIntegrationTest, ClientUploadsAModelTheTestMadeAndGetsItsSha256AsId) {
  const std::string sha = Sha256Hex(ptq::testing::ReadFileBytes(tiny_model()));
  ProcessResult first = server_->Client({"upload", tiny_model().string(), "--json"});
  ASSERT_EQ(first.exit_code, 0) << first.stderr_text;
  const nlohmann::json model = nlohmann::json::parse(first.stdout_text);
  EXPECT_EQ(model.at("model_id"), sha);
  EXPECT_EQ(model.at("parameter_count"), "322");  // int64 is a string in proto3 JSON
  EXPECT_EQ(model.at("already_present"), false);

  ProcessResult second = server_->Client({"upload", tiny_model().string(), "--json"});
  ASSERT_EQ(second.exit_code, 0) << second.stderr_text;
  EXPECT_EQ(nlohmann::json::parse(second.stdout_text).at("model_id"), sha);
  EXPECT_EQ(nlohmann::json::parse(second.stdout_text).at("already_present"), true);

  // A raw re-upload of the same bytes (no GetModel shortcut) also lands on the same id.
  v1::Model response;
  const std::string bytes = ptq::testing::ReadFileBytes(tiny_model());
  ASSERT_TRUE(RawUpload(HeaderFor(bytes, "again.pt"), bytes, &response).ok());
  EXPECT_EQ(response.model_id(), sha);
  EXPECT_TRUE(response.already_present());

  EXPECT_EQ(ptq::testing::ReadFileBytes(server_->state_dir() / "models" / sha / "model.pt"), bytes);
  ExpectStoreHolds({sha});
}

TEST_F(UploadIntegrationTest, ClientUploadsTheSharedRealMobileNetV1) {
  const std::optional<fs::path> shared = testing::SharedDir();
  if (!shared) GTEST_SKIP() << "../shared is not present: skipping the real MobileNetV1 upload";
  const fs::path model_path = *shared / "models" / "mobilenet_v1_0.25_224_keras_imagenet.pt";
  // The shared model is 2 MB: this server's 1 MiB limit refuses it, a roomier one takes it.
  ProcessResult refused = server_->Client({"upload", model_path.string()});
  EXPECT_EQ(refused.exit_code, 3);
  EXPECT_NE(refused.stderr_text.find("RESOURCE_EXHAUSTED"), std::string::npos)
      << refused.stderr_text;

  ServerProcess roomy(state_root_.path() / "roomy");
  ProcessResult stored = roomy.Client({"upload", model_path.string(), "--json"});
  ASSERT_EQ(stored.exit_code, 0) << stored.stderr_text << roomy.log();
  const nlohmann::json model = nlohmann::json::parse(stored.stdout_text);
  EXPECT_EQ(model.at("model_id"), Sha256Hex(ptq::testing::ReadFileBytes(model_path)));
  EXPECT_EQ(model.at("parameter_count"), "470072");  // as its JSON sidecar says
}

TEST_F(UploadIntegrationTest, WrongSha256IsInvalidArgumentAndLeavesNothing) {
  const std::string bytes = ptq::testing::ReadFileBytes(tiny_model());
  v1::UploadModelHeader header = HeaderFor(bytes, "tiny.pt");
  header.set_sha256(Sha256Hex("other bytes"));
  v1::Model response;
  grpc::Status status = RawUpload(header, bytes, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("sha256 mismatch"), std::string::npos)
      << status.error_message();
  ExpectStoreHolds({});
  ExpectStillServing();
}

TEST_F(UploadIntegrationTest, TruncatedStreamIsDataLossAndLeavesNothing) {
  const std::string bytes = ptq::testing::ReadFileBytes(tiny_model());
  v1::Model response;
  grpc::Status status =
      RawUpload(HeaderFor(bytes, "tiny.pt"), bytes.substr(0, bytes.size() / 2), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS) << status.error_message();
  EXPECT_NE(status.error_message().find("ended after"), std::string::npos);
  ExpectStoreHolds({});
  ExpectStillServing();
}

TEST_F(UploadIntegrationTest, OverTheLimitIsResourceExhaustedAndLeavesNothing) {
  const std::string big((kMaxUploadMb << 20) + 1, 'b');
  v1::Model response;
  grpc::Status declared = RawUpload(HeaderFor(big, "big.pt"), big, &response);
  EXPECT_EQ(declared.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << declared.error_message();
  EXPECT_NE(declared.error_message().find("--max-upload-mb"), std::string::npos);

  // A header that understates the size cannot sneak past the limit either.
  v1::UploadModelHeader lying = HeaderFor(big, "big.pt");
  lying.set_size_bytes(1000);
  grpc::Status streamed = RawUpload(lying, big, &response);
  EXPECT_EQ(streamed.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << streamed.error_message();
  ExpectStoreHolds({});
  ExpectStillServing();
}

TEST_F(UploadIntegrationTest, RandomBytesAreNotTorchScript) {
  std::string junk(30000, '\0');
  std::ifstream("/dev/urandom", std::ios::binary).read(junk.data(), junk.size());
  v1::Model response;
  grpc::Status status = RawUpload(HeaderFor(junk, "junk.pt"), junk, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("'junk.pt' is not a TorchScript file"), std::string::npos)
      << status.error_message();

  // Through the CLI: exit code 3 (the server said no) with the code and message shown.
  TempDir dir;
  const fs::path junk_path = dir.path() / "junk.pt";
  std::ofstream(junk_path, std::ios::binary) << junk;
  ProcessResult cli = server_->Client({"upload", junk_path.string()});
  EXPECT_EQ(cli.exit_code, 3);
  EXPECT_NE(cli.stderr_text.find("INVALID_ARGUMENT"), std::string::npos) << cli.stderr_text;
  EXPECT_NE(cli.stderr_text.find("TorchScript"), std::string::npos) << cli.stderr_text;
  ExpectStoreHolds({});
  ExpectStillServing();
}

// Regression: an uploaded TorchScript could read server files (aten::from_file), in its
// forward or in the __setstate__ LibTorch runs while loading it.
TEST_F(UploadIntegrationTest, ModelsThatReadFilesAreRefusedAndNothingIsStored) {
  for (const auto& [file, named] : std::vector<std::pair<std::string, std::string>>{
           {"reads_file.pt", "aten::from_file"}, {"reads_file_on_load.pt", "__setstate__"}}) {
    ProcessResult cli = server_->Client({"upload", (testing::TestModelsDir() / file).string()});
    EXPECT_EQ(cli.exit_code, 3) << file << ": " << cli.stderr_text;
    EXPECT_NE(cli.stderr_text.find("INVALID_ARGUMENT"), std::string::npos) << cli.stderr_text;
    EXPECT_NE(cli.stderr_text.find(named), std::string::npos) << cli.stderr_text;
  }
  ExpectStoreHolds({});
  ExpectStillServing();
}

TEST_F(UploadIntegrationTest, StreamWithoutHeaderIsInvalidArgument) {
  grpc::ClientContext context;
  v1::Model response;
  auto writer = stub_->UploadModel(&context, &response);
  v1::UploadModelRequest chunk;
  chunk.set_chunk("bytes before any header");
  writer->Write(chunk);
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("header"), std::string::npos);
  ExpectStoreHolds({});
}

TEST_F(UploadIntegrationTest, ClientThatDisconnectsMidStreamLeavesNothing) {
  const std::string bytes = ptq::testing::ReadFileBytes(tiny_model());
  {
    grpc::ClientContext context;
    v1::Model response;
    auto writer = stub_->UploadModel(&context, &response);
    v1::UploadModelRequest message;
    *message.mutable_header() = HeaderFor(bytes, "tiny.pt");
    ASSERT_TRUE(writer->Write(message));
    message.set_chunk(bytes.substr(0, 1000));
    ASSERT_TRUE(writer->Write(message));
    context.TryCancel();
    EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  // The server notices the cancellation asynchronously (slowly when other tests load the cores).
  for (int i = 0; i < 600 && !ListFiles(server_->state_dir() / "staging").empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ExpectStoreHolds({});
  ExpectStillServing();
}

TEST_F(UploadIntegrationTest, GetModelAnswersNotFoundAndInvalidArgument) {
  grpc::ClientContext unknown_context;
  v1::GetModelRequest request;
  request.set_model_id(Sha256Hex("never uploaded"));
  v1::Model response;
  EXPECT_EQ(stub_->GetModel(&unknown_context, request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext malformed_context;
  request.set_model_id("../models");
  EXPECT_EQ(stub_->GetModel(&malformed_context, request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

// Regression: reflection listed every service and message to whoever connected.
TEST_F(UploadIntegrationTest, ReflectionListsTheServicesOnlyWhenEnabled) {
  const auto list_services = [](const std::shared_ptr<grpc::Channel>& channel, std::vector<std::string>* names) {
    auto reflection = grpc::reflection::v1alpha::ServerReflection::NewStub(channel);
    grpc::ClientContext context;
    auto stream = reflection->ServerReflectionInfo(&context);
    grpc::reflection::v1alpha::ServerReflectionRequest request;
    request.set_list_services("");
    stream->Write(request);
    grpc::reflection::v1alpha::ServerReflectionResponse response;
    if (stream->Read(&response)) {
      for (const auto& service : response.list_services_response().service()) names->push_back(service.name());
    }
    stream->WritesDone();
    return stream->Finish();
  };
  std::vector<std::string> names;
  EXPECT_EQ(list_services(channel_, &names).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_TRUE(names.empty());

  testing::ServerProcess with_reflection(state_root_.path() / "reflection-state", {"--reflection"});
  ASSERT_FALSE(with_reflection.address().empty());
  const grpc::Status listed =
      list_services(grpc::CreateChannel(with_reflection.address(), grpc::InsecureChannelCredentials()), &names);
  EXPECT_TRUE(listed.ok()) << listed.error_message();
  EXPECT_NE(std::find(names.begin(), names.end(), "ptq.v1.QuantService"), names.end());
}

TEST_F(UploadIntegrationTest, ModelsSurviveARestart) {
  ProcessResult uploaded = server_->Client({"upload", tiny_model().string(), "--json"});
  ASSERT_EQ(uploaded.exit_code, 0) << uploaded.stderr_text;
  server_->Restart();
  ASSERT_FALSE(server_->address().empty());
  // The client asks GetModel first, so this answers "already present" without sending bytes.
  ProcessResult again = server_->Client({"upload", tiny_model().string(), "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.stderr_text;
  EXPECT_EQ(nlohmann::json::parse(again.stdout_text).at("already_present"), true);
}

TEST_F(UploadIntegrationTest, SigtermStopsTheServerCleanly) {
  const std::optional<int> exit_code = server_->Stop(std::chrono::seconds(20));
  ASSERT_TRUE(exit_code.has_value()) << "server did not exit on SIGTERM";
  EXPECT_EQ(*exit_code, 0) << server_->log();
  EXPECT_NE(server_->log().find("ptq-server stopped"), std::string::npos);
}

TEST_F(UploadIntegrationTest, ClientExitCodes) {
  EXPECT_EQ(server_->Client({}).exit_code, 2);                          // no command
  EXPECT_EQ(server_->Client({"frobnicate"}).exit_code, 2);              // unknown command
  EXPECT_EQ(server_->Client({"upload"}).exit_code, 2);                  // missing argument
  ProcessResult missing = server_->Client({"upload", "/no/such/model.pt"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.stderr_text.find("/no/such/model.pt"), std::string::npos);

  ProcessResult unreachable = testing::RunProcess(
      {testing::ClientBinary(), "--server", "127.0.0.1:1", "--timeout", "2", "health"});
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_NE(unreachable.stderr_text.find("cannot reach server"), std::string::npos)
      << unreachable.stderr_text;
}

TEST_F(UploadIntegrationTest, ClientReadsTheServerAddressFromTheEnvironment) {
  ProcessResult health = testing::RunProcess({testing::ClientBinary(), "health"},
                                             std::chrono::seconds(30),
                                             {"PTQ_SERVER=" + server_->address()});
  EXPECT_EQ(health.exit_code, 0) << health.stderr_text;
}

}  // namespace
}  // namespace ptq
