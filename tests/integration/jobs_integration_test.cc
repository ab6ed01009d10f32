// Jobs end to end on a real ptq-server process over loopback: submit, stream calibration data,
// watch, cancel, evaluate, download, restart and kill -9, with real models and real images
// (Debian's Fashion-MNIST; the shared ImageNet MobileNetV1 when ../shared is present).
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "nlohmann/json.hpp"
#include "ptq/common/sha256.h"
#include "server_process.h"
#include "service_client.h"
#include "subprocess.h"
#include "test_env.h"
#include "test_postgres.h"

namespace ptq {
namespace {

namespace fs = std::filesystem;
using testing::ServerProcess;
using testing::ServiceClient;
using testing::TempDir;

constexpr char kFashionPath[] = "fashion-mnist/t10k";

// A data root holding a copy of Fashion-MNIST's test set, and a symlink that leads out of it.
fs::path MakeDataRoot(const fs::path& root) {
  testing::CopyFashionMnistTestSet(root / "fashion-mnist");
  fs::create_directory_symlink(testing::FashionMnistDir(), root / "escape");
  return root;
}

v1::JobConfig FashionConfig(const std::string& model_id, const std::string& source, int batches, int batch_size,
                            int evaluate_limit) {
  v1::JobConfig config;
  config.set_name("fashion-" + source);
  config.mutable_model()->set_model_id(model_id);
  v1::InputSpec* input = config.mutable_input();
  input->set_size(32);
  input->set_resize_short(0);
  for (int c = 0; c < 3; ++c) {
    input->add_mean(72.94f);
    input->add_std(90.02f);
  }
  v1::CalibrationSpec* calibration = config.mutable_calibration();
  calibration->set_source(source);
  if (source == "server") calibration->set_path(kFashionPath);
  calibration->set_quant_batch_num(batches);
  calibration->set_quant_batch_size(batch_size);
  config.mutable_ptq()->set_activation_quantizer("HistQuantizer");
  if (evaluate_limit > 0) {
    config.mutable_evaluate()->set_path(kFashionPath);
    config.mutable_evaluate()->set_limit(evaluate_limit);
  }
  return config;
}

const v1::VariantMetrics* FindVariant(const v1::Metrics& metrics, const std::string& name) {
  for (const v1::VariantMetrics& variant : metrics.variants()) {
    if (variant.variant() == name) return &variant;
  }
  return nullptr;
}

// PTQ_TEST_STORE=postgresql (CTest's jobs_integration_on_postgres) runs every test on a
// PostgreSQL job store of its own; otherwise the server keeps its default SQLite file.
bool OnPostgres() {
  const char* store = std::getenv("PTQ_TEST_STORE");
  return store != nullptr && std::string(store) == "postgresql";
}

class JobsIntegrationTest : public ::testing::Test {
 protected:
  void StartServer(std::vector<std::string> flags = {}) {
    MakeDataRoot(root_.path() / "data");
    flags.insert(flags.end(), {"--data-root", (root_.path() / "data").string(), "--threads", "2"});
    if (OnPostgres()) {
      if (postgres_ == nullptr) postgres_ = std::make_unique<testing::TestPostgres>();
      ASSERT_TRUE(postgres_->running());
      if (store_url_.empty()) store_url_ = postgres_->NewDatabase();
      flags.insert(flags.end(), {"--store", store_url_});
    }
    server_ = std::make_unique<ServerProcess>(root_.path() / "state", flags);
    ASSERT_FALSE(server_->address().empty());
    client_ = std::make_unique<ServiceClient>(server_->address());
    model_id_ = client_->Upload(testing::ReferenceModelsDir() / "mobilenet_v3_small.pt");
    ASSERT_FALSE(model_id_.empty());
  }

  void Reconnect() { client_ = std::make_unique<ServiceClient>(server_->address()); }

  fs::path results_dir() const { return server_->state_dir() / "results"; }

  v1::Job SubmitOk(const v1::JobConfig& config) {
    v1::Job job;
    const grpc::Status status = client_->Submit(config, &job);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return job;
  }

  grpc::StatusCode SubmitCode(const v1::JobConfig& config, std::string* message = nullptr) {
    v1::Job job;
    const grpc::Status status = client_->Submit(config, &job);
    if (message != nullptr) *message = status.error_message();
    return status.error_code();
  }

  v1::Job WaitForEnd(const std::string& job_id) {
    return client_->PollUntil(job_id, [](const v1::Job& job) { return testing::IsFinalState(job.state()); });
  }

  // Downloads every artifact and checks its bytes against the header's sha256 and size.
  void ExpectArtifactsDownload(const v1::Job& job) {
    ASSERT_GT(job.artifacts_size(), 0);
    for (const v1::Artifact& artifact : job.artifacts()) {
      v1::Artifact header;
      std::string bytes;
      const grpc::Status status = client_->Download(job.job_id(), artifact.path(), &header, &bytes);
      ASSERT_TRUE(status.ok()) << artifact.path() << ": " << status.error_message();
      EXPECT_EQ(header.path(), artifact.path());
      EXPECT_EQ(header.size_bytes(), static_cast<int64_t>(bytes.size())) << artifact.path();
      EXPECT_EQ(header.sha256(), Sha256Hex(bytes)) << artifact.path();
    }
  }

  TempDir root_;
  std::unique_ptr<testing::TestPostgres> postgres_;
  std::string store_url_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<ServiceClient> client_;
  std::string model_id_;
};

TEST_F(JobsIntegrationTest, ServerSourceJobGoesThroughEveryStateAndSucceeds) {
  StartServer();
  const v1::Job submitted = SubmitOk(FashionConfig(model_id_, "server", 4, 16, 512));
  EXPECT_EQ(submitted.state(), v1::JOB_STATE_QUEUED);
  // Defaults are filled in, so the stored job says what it ran with.
  EXPECT_EQ(submitted.config().ptq().weight_quantizer(), "PerChannelAbsmaxQuantizer");
  EXPECT_EQ(submitted.config().ptq().backend(), "onednn");

  const std::vector<v1::Job> seen = client_->Watch(submitted.job_id());
  ASSERT_FALSE(seen.empty());
  std::vector<v1::JobState> states;
  for (const v1::Job& job : seen) {
    if (states.empty() || states.back() != job.state()) states.push_back(job.state());
  }
  const std::vector<v1::JobState> expected = {v1::JOB_STATE_CALIBRATING, v1::JOB_STATE_EXPORTING,
                                              v1::JOB_STATE_EVALUATING, v1::JOB_STATE_SUCCEEDED};
  ASSERT_GE(states.size(), expected.size());
  EXPECT_TRUE(std::equal(expected.rbegin(), expected.rend(), states.rbegin())) << seen.back().DebugString();
  // Progress was reported in batches while calibrating.
  EXPECT_TRUE(std::any_of(seen.begin(), seen.end(), [](const v1::Job& job) {
    return job.state() == v1::JOB_STATE_CALIBRATING && job.progress().done() > 0 && job.progress().unit() == "steps";
  }));

  const v1::Job& done = seen.back();
  ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.error();
  EXPECT_TRUE(done.has_started_at() && done.has_finished_at());
  for (const char* variant : {"fp32", "int8_simulated", "int8"}) {
    const v1::VariantMetrics* metrics = FindVariant(done.metrics(), variant);
    ASSERT_NE(metrics, nullptr) << variant;
    EXPECT_EQ(metrics->count(), 512) << variant;
    EXPECT_GT(metrics->top1(), 80) << variant;  // a trained model on its own test images
  }
  std::set<std::string> paths;
  for (const v1::Artifact& artifact : done.artifacts()) paths.insert(artifact.path());
  for (const char* file : {"fp32/model.pt", "fp32/model.onnx", "int8_infer/model.pt", "int8_infer/model.onnx",
                           "calibration.cache", "calibration_state.pt", "quant_params.json", "report.json",
                           "MANIFEST"}) {
    EXPECT_EQ(paths.count(file), 1u) << file;
  }
  ExpectArtifactsDownload(done);
  EXPECT_TRUE(fs::exists(results_dir() / done.job_id() / "MANIFEST"));
  EXPECT_EQ(testing::ListFiles(results_dir()).size(), paths.size()) << "no staging leftovers";
  // Logged just after watchers hear of the change.
  bool logged = false;
  for (int tries = 0; tries < 100 && !logged; ++tries) {
    logged = server_->log().find("job " + done.job_id() + " EVALUATING -> SUCCEEDED") != std::string::npos;
    if (!logged) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(logged) << server_->log();

  // onednn's AMX kernels are slower on these layers: the server runs below them, and says so.
  const std::string isa =
      nlohmann::json::parse(testing::ReadFileBytes(results_dir() / done.job_id() / "report.json"))["onednn_isa"];
  __builtin_cpu_init();
  if (__builtin_cpu_supports("amx-int8")) {
    EXPECT_EQ(isa, "avx512_core_bf16");
  }
  EXPECT_NE(isa, "avx512_core_amx");
  EXPECT_NE(server_->log().find("onednn instruction set: " + isa), std::string::npos) << server_->log();
}

TEST_F(JobsIntegrationTest, OperatorsOnednnInstructionSetIsKept) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2")) GTEST_SKIP() << "this CPU has no AVX2 to choose";
  setenv("ONEDNN_MAX_CPU_ISA", "AVX2", /*overwrite=*/1);  // the server process inherits it
  StartServer();
  unsetenv("ONEDNN_MAX_CPU_ISA");
  const v1::Job done = WaitForEnd(SubmitOk(FashionConfig(model_id_, "server", 1, 8, 32)).job_id());
  ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.error();
  EXPECT_EQ(nlohmann::json::parse(testing::ReadFileBytes(results_dir() / done.job_id() / "report.json"))["onednn_isa"],
            "avx2");
}

TEST_F(JobsIntegrationTest, StreamSourceJobWaitsForACompleteWellShapedStream) {
  StartServer();
  const v1::Job job = SubmitOk(FashionConfig(model_id_, "stream", 3, 8, 256));
  EXPECT_EQ(job.state(), v1::JOB_STATE_AWAITING_DATA);
  const testing::EncodedImages images = testing::FashionMnistAsPgm(64);
  v1::CalibrationSummary summary;

  // A tensor of the wrong shape (28x28 instead of the model's 32x32).
  v1::CalibrationBatch wrong_shape;
  wrong_shape.set_job_id(job.job_id());
  for (int64_t dim : {8, 3, 28, 28}) wrong_shape.mutable_tensor()->add_shape(dim);
  wrong_shape.mutable_tensor()->set_data(std::string(8 * 3 * 28 * 28 * 4, '\0'));
  grpc::Status status = client_->Stream({wrong_shape}, &summary);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("batch 1"), std::string::npos) << status.error_message();

  // Too few batches, then a client that goes away mid-stream.
  status = client_->Stream(testing::ImageBatches(job.job_id(), images, 2, 8), &summary);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("2 of 3 batches"), std::string::npos) << status.error_message();
  status = client_->Stream(testing::ImageBatches(job.job_id(), images, 3, 8), &summary, /*cancel_after=*/2);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  // Too many batches. The server may not have seen the cancelled stream end yet (ABORTED:
  // another stream holds the job), as a client reconnecting at once would find.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  do {
    status = client_->Stream(testing::ImageBatches(job.job_id(), images, 4, 8), &summary);
  } while (status.error_code() == grpc::StatusCode::ABORTED && std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("one too many"), std::string::npos) << status.error_message();

  v1::Job waiting = client_->PollUntil(job.job_id(), [](const v1::Job&) { return true; });
  EXPECT_EQ(waiting.state(), v1::JOB_STATE_AWAITING_DATA) << "not half-calibrated";

  status = client_->Stream(testing::ImageBatches(job.job_id(), images, 3, 8), &summary);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(summary.batches_received(), 3);
  EXPECT_EQ(summary.images_received(), 24);
  const v1::Job done = WaitForEnd(job.job_id());
  ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.error();
  ASSERT_NE(FindVariant(done.metrics(), "int8"), nullptr);
  EXPECT_GT(FindVariant(done.metrics(), "int8")->top1(), 80);

  // A stream for a job that is no longer waiting.
  status = client_->Stream(testing::ImageBatches(job.job_id(), images, 3, 8), &summary);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  status = client_->Stream(testing::ImageBatches("job-0000000000000000", images, 1, 8), &summary);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(JobsIntegrationTest, TwoJobsWithDifferentConfigsKeepTheirOwnResults) {
  StartServer({"--workers", "2"});
  v1::JobConfig kl = FashionConfig(model_id_, "server", 3, 16, 128);
  kl.mutable_ptq()->set_activation_quantizer("KLQuantizer");
  v1::JobConfig hist = FashionConfig(model_id_, "server", 3, 16, 128);
  hist.mutable_ptq()->set_hist_percent(0.999);
  const v1::Job first = SubmitOk(kl);
  const v1::Job second = SubmitOk(hist);
  const v1::Job first_done = WaitForEnd(first.job_id());
  const v1::Job second_done = WaitForEnd(second.job_id());
  ASSERT_EQ(first_done.state(), v1::JOB_STATE_SUCCEEDED) << first_done.error();
  ASSERT_EQ(second_done.state(), v1::JOB_STATE_SUCCEEDED) << second_done.error();

  auto quant_params = [&](const std::string& job_id) {
    return nlohmann::json::parse(testing::ReadFileBytes(results_dir() / job_id / "quant_params.json"));
  };
  auto report = [&](const std::string& job_id) {
    return nlohmann::json::parse(testing::ReadFileBytes(results_dir() / job_id / "report.json"));
  };
  EXPECT_NE(quant_params(first.job_id()).dump(), quant_params(second.job_id()).dump());
  EXPECT_EQ(report(first.job_id())["config"]["ptq"]["activation_quantizer"], "KLQuantizer");
  EXPECT_EQ(report(second.job_id())["config"]["ptq"]["activation_quantizer"], "HistQuantizer");
  EXPECT_DOUBLE_EQ(report(second.job_id())["config"]["ptq"]["hist_percent"].get<double>(), 0.999);
}

// LibTorch's quantized engine is process-wide: it decides how int8 weights are packed when a
// file loads and which kernels quantized ops run. An int8 file run under the other engine gives
// other logits (up to 0.1 apart on these models), so a job whose evaluation ran under the
// other job's engine no longer agrees image for image with its own simulation, nor with the
// same job run alone.
TEST_F(JobsIntegrationTest, JobsOnDifferentInt8BackendsAtOnceEachRunOnTheirOwn) {
  StartServer({"--workers", "2"});
  auto config_for = [&](const std::string& backend) {
    v1::JobConfig config = FashionConfig(model_id_, "server", 2, 16, 2000);
    config.mutable_ptq()->set_backend(backend);
    return config;
  };
  auto int8_metrics = [&](const std::string& job_id) {
    const nlohmann::json report =
        nlohmann::json::parse(testing::ReadFileBytes(results_dir() / job_id / "report.json"));
    for (const nlohmann::json& variant : report["metrics"]) {
      if (variant["variant"] == "int8") return variant;
    }
    return nlohmann::json();
  };
  std::map<std::string, nlohmann::json> alone;
  for (const std::string backend : {"onednn", "qnnpack"}) {
    const v1::Job job = WaitForEnd(SubmitOk(config_for(backend)).job_id());
    ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();
    alone[backend] = int8_metrics(job.job_id());
    EXPECT_EQ(alone[backend]["engine"], backend);
  }
  for (int round = 0; round < 3; ++round) {
    const v1::Job onednn = SubmitOk(config_for("onednn"));
    const v1::Job qnnpack = SubmitOk(config_for("qnnpack"));
    for (const auto& [backend, submitted] :
         {std::pair{std::string("onednn"), &onednn}, std::pair{std::string("qnnpack"), &qnnpack}}) {
      const v1::Job job = WaitForEnd(submitted->job_id());
      ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();
      const nlohmann::json metrics = int8_metrics(job.job_id());
      EXPECT_EQ(metrics["engine"], backend) << "round " << round;
      EXPECT_EQ(metrics["agreement_with_simulated_top1"], alone[backend]["agreement_with_simulated_top1"])
          << backend << ", round " << round;
      EXPECT_EQ(metrics["top1"], alone[backend]["top1"]) << backend << ", round " << round;
      EXPECT_EQ(metrics["agreement_top1"], alone[backend]["agreement_top1"]) << backend << ", round " << round;
    }
  }
}

TEST_F(JobsIntegrationTest, BadSubmissionsGetTheRightCodeAndTheServerKeepsServing) {
  StartServer();
  std::string message;
  v1::JobConfig config = FashionConfig(model_id_, "server", 2, 8, 0);
  config.mutable_ptq()->set_hist_percent(2);
  EXPECT_EQ(SubmitCode(config, &message), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(message.find("hist_percent"), std::string::npos) << message;

  config = FashionConfig(model_id_, "server", 0, 8, 0);
  EXPECT_EQ(SubmitCode(config, &message), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(message.find("calibration.quant_batch_num"), std::string::npos) << message;

  config = FashionConfig(model_id_, "carrier-pigeon", 2, 8, 0);
  EXPECT_EQ(SubmitCode(config, &message), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(message.find("calibration.source"), std::string::npos) << message;

  for (const char* path : {"../data/fashion-mnist/t10k", "/usr/share/datasets/fashion-mnist/t10k", "escape/t10k"}) {
    config = FashionConfig(model_id_, "server", 2, 8, 0);
    config.mutable_calibration()->set_path(path);
    EXPECT_EQ(SubmitCode(config, &message), grpc::StatusCode::PERMISSION_DENIED) << path << ": " << message;
    EXPECT_NE(message.find("calibration.path"), std::string::npos) << message;
  }
  config = FashionConfig(model_id_, "server", 2, 8, 0);
  config.mutable_calibration()->set_path("no-such-dataset/t10k");
  EXPECT_EQ(SubmitCode(config, &message), grpc::StatusCode::NOT_FOUND) << message;

  config = FashionConfig(std::string(64, 'a'), "server", 2, 8, 0);
  EXPECT_EQ(SubmitCode(config, &message), grpc::StatusCode::NOT_FOUND) << message;
  EXPECT_NE(message.find("model.model_id"), std::string::npos) << message;
  config = FashionConfig("", "server", 2, 8, 0);
  EXPECT_EQ(SubmitCode(config, &message), grpc::StatusCode::INVALID_ARGUMENT) << message;

  v1::Job job;
  EXPECT_EQ(client_->Get("job-does-not-exist", &job).error_code(), grpc::StatusCode::NOT_FOUND);
  // Nothing was stored, and the server still runs jobs.
  grpc::ClientContext context;
  v1::ListJobsResponse listed;
  ASSERT_TRUE(client_->stub().ListJobs(&context, v1::ListJobsRequest(), &listed).ok());
  EXPECT_EQ(listed.jobs_size(), 0);
  EXPECT_EQ(WaitForEnd(SubmitOk(FashionConfig(model_id_, "server", 2, 8, 0)).job_id()).state(),
            v1::JOB_STATE_SUCCEEDED);
  EXPECT_TRUE(server_->running());
}

TEST_F(JobsIntegrationTest, CancelStopsACalibratingJobAndRemovesItsOutput) {
  StartServer();
  // 300 batches of 32: long enough to be caught calibrating.
  const v1::Job job = SubmitOk(FashionConfig(model_id_, "server", 300, 32, 0));
  client_->PollUntil(job.job_id(), [](const v1::Job& j) {
    return j.state() == v1::JOB_STATE_CALIBRATING && j.progress().done() >= 2;
  });
  grpc::ClientContext context;
  v1::CancelJobRequest request;
  request.set_job_id(job.job_id());
  v1::Job answer;
  ASSERT_TRUE(client_->stub().CancelJob(&context, request, &answer).ok());
  const auto asked = std::chrono::steady_clock::now();
  const v1::Job done = WaitForEnd(job.job_id());
  EXPECT_EQ(done.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds(5));
  EXPECT_TRUE(testing::ListFiles(results_dir()).empty()) << "partial output removed";

  grpc::ClientContext again;
  EXPECT_EQ(client_->stub().CancelJob(&again, request, &answer).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(JobsIntegrationTest, KilledServerRequeuesTheRunningJobWhichThenSucceeds) {
  StartServer();
  const v1::Job job = SubmitOk(FashionConfig(model_id_, "server", 200, 32, 128));
  // A stream job whose data is complete (spooled) when the server dies.
  const v1::Job streamed = SubmitOk(FashionConfig(model_id_, "stream", 1, 8, 0));
  const testing::EncodedImages images = testing::FashionMnistAsPgm(8);
  v1::CalibrationSummary summary;
  ASSERT_TRUE(client_->Stream(testing::ImageBatches(streamed.job_id(), images, 1, 8), &summary).ok());
  client_->PollUntil(job.job_id(), [](const v1::Job& j) {
    return j.state() == v1::JOB_STATE_CALIBRATING && j.progress().done() >= 2;
  });
  server_->Kill();
  server_->Restart();
  Reconnect();

  // Until the job ends, a result directory is either absent or complete.
  v1::Job done;
  while (client_->Get(job.job_id(), &done).ok() && !testing::IsFinalState(done.state())) {
    if (fs::exists(results_dir() / job.job_id())) {
      EXPECT_TRUE(fs::exists(results_dir() / job.job_id() / "MANIFEST"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.error();
  EXPECT_NE(server_->log().find("job " + job.job_id() + " re-queued after a restart"), std::string::npos);
  ExpectArtifactsDownload(done);

  // The stream job, queued behind it with its data complete, runs from its spooled data.
  const v1::Job kept = WaitForEnd(streamed.job_id());
  EXPECT_EQ(kept.state(), v1::JOB_STATE_SUCCEEDED) << kept.error();
  EXPECT_NE(server_->log().find("job " + streamed.job_id() + " re-queued after a restart"), std::string::npos);
  EXPECT_TRUE(testing::ListFiles(server_->state_dir() / "streams").empty()) << "its spool goes when it ends";
}

// A job's config is resolved when it is submitted and again by the start that recovers it, not
// on each use: a waiting job whose dataset has gone from the data root fails at that start,
// saying why, and the others keep waiting.
TEST_F(JobsIntegrationTest, AWaitingJobWhoseDatasetWentAwayFailsAtTheRestartWithTheReason) {
  StartServer();
  const v1::Job kept = SubmitOk(FashionConfig(model_id_, "stream", 1, 8, 0));
  const v1::Job orphaned = SubmitOk(FashionConfig(model_id_, "stream", 1, 8, 64));
  EXPECT_EQ(server_->Stop(std::chrono::seconds(30)), 0);
  fs::rename(root_.path() / "data" / "fashion-mnist", root_.path() / "data" / "moved");
  server_->Restart();
  Reconnect();
  v1::Job job;
  ASSERT_TRUE(client_->Get(orphaned.job_id(), &job).ok());
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(job.error().find("no longer resolves"), std::string::npos) << job.error();
  EXPECT_NE(job.error().find("evaluate.path"), std::string::npos) << job.error();
  ASSERT_TRUE(client_->Get(kept.job_id(), &job).ok());
  EXPECT_EQ(job.state(), v1::JOB_STATE_AWAITING_DATA);
  const testing::EncodedImages images = testing::FashionMnistAsPgm(8);
  v1::CalibrationSummary summary;
  ASSERT_TRUE(client_->Stream(testing::ImageBatches(kept.job_id(), images, 1, 8), &summary).ok());
  EXPECT_EQ(WaitForEnd(kept.job_id()).state(), v1::JOB_STATE_SUCCEEDED);
}

// Regression: a job whose run ended the process was re-queued at every start, a crash loop.
TEST_F(JobsIntegrationTest, AJobTheServerDiedRunningThreeTimesFailsInsteadOfRunningAgain) {
  StartServer();
  const v1::Job job = SubmitOk(FashionConfig(model_id_, "server", 300, 32, 0));
  for (int run = 1; run <= 3; ++run) {
    const v1::Job running = client_->PollUntil(
        job.job_id(), [](const v1::Job& j) { return j.state() == v1::JOB_STATE_CALIBRATING; });
    EXPECT_EQ(running.attempts(), run);
    server_->Kill();
    server_->Restart();
    Reconnect();
  }
  v1::Job failed;
  ASSERT_TRUE(client_->Get(job.job_id(), &failed).ok());
  EXPECT_EQ(failed.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(failed.error().find("the server stopped while running this job 3 times"), std::string::npos)
      << failed.error();
  // The server itself keeps serving: another job runs to the end.
  EXPECT_EQ(WaitForEnd(SubmitOk(FashionConfig(model_id_, "server", 2, 8, 0)).job_id()).state(),
            v1::JOB_STATE_SUCCEEDED);
}

// Regression: with its database gone the server started empty, orphaning every result.
TEST_F(JobsIntegrationTest, AMissingOrEmptyDatabaseBesideResultsStopsTheStart) {
  if (OnPostgres()) GTEST_SKIP() << "the database file this test removes is the SQLite store's";
  StartServer();
  ASSERT_EQ(WaitForEnd(SubmitOk(FashionConfig(model_id_, "server", 2, 8, 0)).job_id()).state(),
            v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(server_->Stop(std::chrono::seconds(30)), 0);
  const fs::path database = server_->state_dir() / "jobs.sqlite";
  for (const bool empty : {true, false}) {
    fs::remove(database);
    fs::remove(database.string() + "-wal");
    fs::remove(database.string() + "-shm");
    if (empty) std::ofstream(database).close();
    const testing::ProcessResult start = testing::RunProcess(
        {testing::ServerBinary(), "--listen", "127.0.0.1:0", "--insecure", "--state-dir",
         server_->state_dir().string()},
        std::chrono::seconds(60));
    EXPECT_EQ(start.exit_code, 1);
    const std::string said = start.stdout_text + start.stderr_text;
    EXPECT_NE(said.find(empty ? "is empty" : "is missing"), std::string::npos) << said;
    EXPECT_NE(said.find("holds 1 result directories"), std::string::npos) << said;
  }
}

// Regressions: stream jobs that never got their data waited forever, holding --max-queue
// slots across restarts, and a stream that stopped sending held its job's claim forever.
TEST_F(JobsIntegrationTest, IdleStreamsAreCancelledAndDatalessStreamJobsExpire) {
  StartServer({"--max-queue", "1", "--awaiting-data-ttl", "10", "--stream-idle-timeout", "1"});
  const v1::Job waiting = SubmitOk(FashionConfig(model_id_, "stream", 2, 8, 0));
  EXPECT_EQ(SubmitCode(FashionConfig(model_id_, "stream", 2, 8, 0)), grpc::StatusCode::RESOURCE_EXHAUSTED);
  const std::vector<v1::CalibrationBatch> batches =
      testing::ImageBatches(waiting.job_id(), testing::FashionMnistAsPgm(8), 2, 8);
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::CalibrationSummary summary;
    auto writer = client_->stub().StreamCalibrationBatch(&context, &summary);
    ASSERT_TRUE(writer->Write(batches[0]));  // one of two, then nothing
    const grpc::Status idle = writer->Finish();
    EXPECT_EQ(idle.error_code(), grpc::StatusCode::CANCELLED) << idle.error_message();
  }
  EXPECT_NE(server_->log().find("sent nothing for 1 s (--stream-idle-timeout)"), std::string::npos) << server_->log();
  v1::Job still;
  ASSERT_TRUE(client_->Get(waiting.job_id(), &still).ok());
  EXPECT_EQ(still.state(), v1::JOB_STATE_AWAITING_DATA) << "the claim is released, the job keeps waiting";

  const v1::Job expired = WaitForEnd(waiting.job_id());
  EXPECT_EQ(expired.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(expired.error().find("within 10 s of submission (--awaiting-data-ttl)"), std::string::npos)
      << expired.error();
  EXPECT_EQ(SubmitCode(FashionConfig(model_id_, "stream", 2, 8, 0)), grpc::StatusCode::OK) << "its slot is free";
}

// Regression: nothing bounded the decoded calibration data held in memory for stream jobs.
TEST_F(JobsIntegrationTest, StreamedDataHeldForJobsHasABudget) {
  StartServer({"--max-stream-mb", "1"});
  // The one worker is busy, so a stream job that has its data waits in the queue holding it.
  const v1::Job busy = SubmitOk(FashionConfig(model_id_, "server", 300, 32, 0));
  client_->PollUntil(busy.job_id(), [](const v1::Job& j) { return j.state() == v1::JOB_STATE_CALIBRATING; });
  const testing::EncodedImages images = testing::FashionMnistAsPgm(64);
  const v1::Job holding = SubmitOk(FashionConfig(model_id_, "stream", 1, 64, 0));
  v1::CalibrationSummary summary;
  // 64 images of 3 x 32 x 32 floats: 768 KiB of the 1 MiB.
  ASSERT_TRUE(client_->Stream(testing::ImageBatches(holding.job_id(), images, 1, 64), &summary).ok());

  const v1::Job waiting = SubmitOk(FashionConfig(model_id_, "stream", 2, 32, 0));
  const std::vector<v1::CalibrationBatch> waiting_batches = testing::ImageBatches(waiting.job_id(), images, 2, 32);
  const grpc::Status over = client_->Stream(waiting_batches, &summary);  // 384 KiB more does not fit
  EXPECT_EQ(over.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << over.error_message();
  EXPECT_NE(over.error_message().find("--max-stream-mb (1 MiB)"), std::string::npos) << over.error_message();

  // Once the queued job has run, its bytes are back in the budget.
  grpc::ClientContext context;
  v1::CancelJobRequest cancel;
  cancel.set_job_id(busy.job_id());
  v1::Job cancelled;
  ASSERT_TRUE(client_->stub().CancelJob(&context, cancel, &cancelled).ok());
  EXPECT_EQ(WaitForEnd(holding.job_id()).state(), v1::JOB_STATE_SUCCEEDED);
  const grpc::Status retried = client_->Stream(waiting_batches, &summary);
  ASSERT_TRUE(retried.ok()) << retried.error_message();
  EXPECT_EQ(WaitForEnd(waiting.job_id()).state(), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(JobsIntegrationTest, SigtermLetsTheRunningJobFinishWithinTheGracePeriod) {
  StartServer({"--shutdown-grace-seconds", "120"});
  const v1::Job job = SubmitOk(FashionConfig(model_id_, "server", 150, 32, 256));
  client_->PollUntil(job.job_id(), [](const v1::Job& j) { return j.state() == v1::JOB_STATE_CALIBRATING; });
  const std::optional<int> exit_code = server_->Stop(std::chrono::seconds(120));
  EXPECT_EQ(exit_code, 0);
  EXPECT_NE(server_->log().find("draining: waiting"), std::string::npos) << server_->log();
  server_->Restart();
  Reconnect();
  v1::Job done;
  ASSERT_TRUE(client_->Get(job.job_id(), &done).ok());
  EXPECT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << "finished before the server exited: " << done.error();
}

TEST_F(JobsIntegrationTest, SigtermAfterTheGracePeriodRequeuesTheRunningJob) {
  StartServer({"--shutdown-grace-seconds", "1"});
  const v1::Job job = SubmitOk(FashionConfig(model_id_, "server", 300, 32, 0));
  client_->PollUntil(job.job_id(), [](const v1::Job& j) {
    return j.state() == v1::JOB_STATE_CALIBRATING && j.progress().done() >= 2;
  });
  const auto asked = std::chrono::steady_clock::now();
  EXPECT_EQ(server_->Stop(std::chrono::seconds(30)), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds(10));
  EXPECT_NE(server_->log().find("grace period over"), std::string::npos) << server_->log();
  EXPECT_TRUE(testing::ListFiles(results_dir()).empty()) << "no partial result directory";
  server_->Restart();
  Reconnect();
  EXPECT_NE(server_->log().find("job " + job.job_id() + " re-queued after a restart"), std::string::npos);
  const v1::Job done = WaitForEnd(job.job_id());
  EXPECT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(done.attempts(), 1) << "a run a stop interrupted is not counted";
}

// Regression: jobs with large configs made one ListJobs page larger than gRPC's default 4 MiB
// receive limit, breaking every client that listed them.
TEST_F(JobsIntegrationTest, ListPagesStayUnderOneMebibyteWhateverTheConfigs) {
  StartServer();
  v1::JobConfig large = FashionConfig(model_id_, "stream", 1, 8, 0);
  for (int i = 0; i < 1000; ++i) large.mutable_ptq()->add_skip_layers(std::string(250, 'a' + i % 26));
  std::vector<std::string> submitted;
  for (int i = 0; i < 5; ++i) submitted.insert(submitted.begin(), SubmitOk(large).job_id());
  std::vector<std::string> listed;
  v1::ListJobsRequest request;
  request.set_page_size(500);
  int pages = 0;
  do {
    grpc::ClientContext context;
    v1::ListJobsResponse page;
    ASSERT_TRUE(client_->stub().ListJobs(&context, request, &page).ok());
    EXPECT_LE(page.ByteSizeLong(), size_t{1} << 20);
    EXPECT_GE(page.jobs_size(), 1);
    for (const v1::Job& job : page.jobs()) listed.push_back(job.job_id());
    request.set_page_token(page.next_page_token());
    ++pages;
  } while (!request.page_token().empty() && pages < 10);
  EXPECT_EQ(listed, submitted);
  EXPECT_GT(pages, 1);
}

TEST_F(JobsIntegrationTest, FinishedJobsSurviveARestartAndListPagesThroughThem) {
  StartServer();
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(SubmitOk(FashionConfig(model_id_, "server", 1, 8, 0)).job_id());
  const std::string waiting = SubmitOk(FashionConfig(model_id_, "stream", 1, 8, 0)).job_id();
  for (const std::string& id : ids) ASSERT_EQ(WaitForEnd(id).state(), v1::JOB_STATE_SUCCEEDED);
  server_->Restart();
  Reconnect();

  std::vector<std::string> listed;
  v1::ListJobsRequest request;
  request.set_page_size(2);
  do {
    grpc::ClientContext context;
    v1::ListJobsResponse page;
    ASSERT_TRUE(client_->stub().ListJobs(&context, request, &page).ok());
    EXPECT_LE(page.jobs_size(), 2);
    for (const v1::Job& job : page.jobs()) listed.push_back(job.job_id());
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  const std::vector<std::string> newest_first = {waiting, ids[2], ids[1], ids[0]};
  EXPECT_EQ(listed, newest_first);

  grpc::ClientContext context;
  v1::ListJobsRequest only_waiting;
  only_waiting.add_states(v1::JOB_STATE_AWAITING_DATA);
  v1::ListJobsResponse page;
  ASSERT_TRUE(client_->stub().ListJobs(&context, only_waiting, &page).ok());
  ASSERT_EQ(page.jobs_size(), 1);
  EXPECT_EQ(page.jobs(0).job_id(), waiting);

  v1::Job job;
  ASSERT_TRUE(client_->Get(ids[0], &job).ok());
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED);
  ExpectArtifactsDownload(job);
}

// The nice value of each of a process's threads (field 19 of /proc/PID/task/TID/stat).
std::vector<int> ThreadNiceValues(pid_t pid) {
  std::vector<int> nice_values;
  for (const fs::directory_entry& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    const std::string stat = testing::ReadFileBytes(task.path() / "stat");
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));  // after "(comm) "
    std::string field;
    for (int index = 3; index <= 19 && fields >> field; ++index) {
      if (index == 19) nice_values.push_back(std::stoi(field));
    }
  }
  return nice_values;
}

TEST_F(JobsIntegrationTest, JobsComputeAtTheWorkerNiceValueAndRpcThreadsDoNot) {
  StartServer({"--worker-nice", "7"});
  const v1::Job done = WaitForEnd(SubmitOk(FashionConfig(model_id_, "server", 2, 16, 0)).job_id());
  ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.error();
  const std::vector<int> nice_values = ThreadNiceValues(server_->pid());
  // The worker and the second thread of its LibTorch team (--threads 2) at 7; main, gRPC and
  // pool threads at 0.
  EXPECT_GE(std::count(nice_values.begin(), nice_values.end(), 7), 2) << ::testing::PrintToString(nice_values);
  EXPECT_GE(std::count(nice_values.begin(), nice_values.end(), 0), 3) << ::testing::PrintToString(nice_values);
}

TEST_F(JobsIntegrationTest, JsonLogsHaveOneObjectPerLineWithTheJobId) {
  StartServer({"--log-format", "json"});
  const v1::Job job = WaitForEnd(SubmitOk(FashionConfig(model_id_, "server", 2, 8, 0)).job_id());
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED);
  std::istringstream lines(server_->log());
  std::string line;
  std::vector<std::string> transitions;
  while (std::getline(lines, line)) {
    const nlohmann::json entry = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(entry.is_object()) << "not a JSON object: " << line;
    EXPECT_TRUE(entry.contains("time") && entry.contains("level") && entry.contains("message")) << line;
    const std::string message = entry["message"];
    if (message.find(" -> ") != std::string::npos) {
      EXPECT_EQ(entry.value("job_id", ""), job.job_id()) << line;
      const std::string after = message.substr(message.find(" -> ") + 4);
      transitions.push_back(after.substr(0, after.find(' ')));
    }
  }
  EXPECT_EQ(transitions, (std::vector<std::string>{"QUEUED", "CALIBRATING", "EXPORTING", "SUCCEEDED"}))
      << "one line per state change";
}

// Regression: a job name holding a newline and a log prefix forged a line of the text log.
TEST_F(JobsIntegrationTest, TextLogsEscapeControlCharactersInNamesClientsChose) {
  StartServer();
  v1::JobConfig config = FashionConfig(model_id_, "stream", 1, 8, 0);
  config.set_name("forger\n[2030-01-01 00:00:00.000] [error] FAKE\x1b[2K");
  SubmitOk(config);
  std::istringstream lines(server_->log());
  std::string line;
  int submitted = 0;
  while (std::getline(lines, line)) {
    EXPECT_NE(line.rfind("[2030-", 0), 0u) << "a forged line: " << line;
    EXPECT_EQ(line.find('\x1b'), std::string::npos) << line;
    if (line.find("submitted ('forger\\n[2030-01-01 00:00:00.000] [error] FAKE\\x1b[2K'") != std::string::npos) {
      ++submitted;
    }
  }
  EXPECT_EQ(submitted, 1) << server_->log();
}

// Regression: the state folder was 0755, and jobs.sqlite, models and results 0644.
TEST_F(JobsIntegrationTest, StateFilesAreTheServerUsersAlone) {
  namespace fs = std::filesystem;
  fs::create_directories(root_.path() / "state");
  fs::permissions(root_.path() / "state", fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                              fs::perms::others_read | fs::perms::others_exec);
  StartServer();
  const v1::Job job = WaitForEnd(SubmitOk(FashionConfig(model_id_, "server", 2, 8, 0)).job_id());
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();
  const fs::perms shared = fs::perms::group_all | fs::perms::others_all;
  EXPECT_EQ(fs::status(server_->state_dir()).permissions() & shared, fs::perms::none) << "an existing 0755 folder";
  int checked = 0;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(server_->state_dir())) {
    if (entry.is_symlink()) continue;
    EXPECT_EQ(entry.status().permissions() & shared, fs::perms::none) << entry.path();
    ++checked;
  }
  EXPECT_GT(checked, 10) << "models, jobs.sqlite and a result directory";
}

// Regression: errors clients read named the server's files by their absolute paths.
TEST_F(JobsIntegrationTest, ErrorsClientsReadNameFilesRelativeToTheDataRootAndTheStateDirectory) {
  StartServer();
  const std::string root = root_.path().string();
  fs::create_directories(root_.path() / "data" / "empty");
  v1::JobConfig config = FashionConfig(model_id_, "server", 1, 8, 0);
  config.mutable_calibration()->set_path("empty");
  config.mutable_calibration()->set_format("imagenet");
  std::string message;
  EXPECT_EQ(SubmitCode(config, &message), grpc::StatusCode::NOT_FOUND) << message;
  EXPECT_NE(message.find("dataset 'empty' has no"), std::string::npos) << message;
  EXPECT_EQ(message.find(root), std::string::npos) << message;

  const std::string unsupported = client_->Upload(testing::TestModelsDir() / "unsupported_op.pt");
  const v1::Job failed = WaitForEnd(SubmitOk(FashionConfig(unsupported, "server", 1, 8, 0)).job_id());
  ASSERT_EQ(failed.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(failed.error().find("'models/" + unsupported + "/model.pt'"), std::string::npos) << failed.error();
  EXPECT_EQ(failed.error().find(root), std::string::npos) << failed.error();
  EXPECT_NE(server_->log().find((root_.path() / "state" / "models").string()), std::string::npos)
      << "the server's own log keeps the full paths";
}

TEST_F(JobsIntegrationTest, IdempotencyKeyReturnsTheSameJob) {
  StartServer();
  const v1::JobConfig config = FashionConfig(model_id_, "stream", 1, 8, 0);
  v1::Job first, second, third;
  ASSERT_TRUE(client_->Submit(config, &first, "deploy-42").ok());
  ASSERT_TRUE(client_->Submit(config, &second, "deploy-42").ok());
  EXPECT_EQ(first.job_id(), second.job_id());
  v1::JobConfig other = config;
  other.mutable_ptq()->set_activation_quantizer("AbsmaxQuantizer");
  EXPECT_EQ(client_->Submit(other, &third, "deploy-42").error_code(), grpc::StatusCode::ALREADY_EXISTS);
}

TEST_F(JobsIntegrationTest, FullQueueSaysResourceExhausted) {
  StartServer({"--max-queue", "1"});
  SubmitOk(FashionConfig(model_id_, "stream", 1, 8, 0));
  std::string message;
  EXPECT_EQ(SubmitCode(FashionConfig(model_id_, "stream", 1, 8, 0), &message), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << message;
}

TEST_F(JobsIntegrationTest, EvaluateStreamsProgressAndAddsToTheReport) {
  StartServer();
  const v1::Job job = WaitForEnd(SubmitOk(FashionConfig(model_id_, "server", 2, 16, 0)).job_id());
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();

  auto evaluate = [&](const std::vector<std::string>& variants, std::vector<v1::EvaluateUpdate>* updates) {
    grpc::ClientContext context;
    v1::EvaluateRequest request;
    request.set_job_id(job.job_id());
    request.set_dataset(kFashionPath);
    request.set_limit(300);
    for (const std::string& variant : variants) request.add_variants(variant);
    auto reader = client_->stub().Evaluate(&context, request);
    v1::EvaluateUpdate update;
    while (reader->Read(&update)) updates->push_back(update);
    return reader->Finish();
  };
  std::vector<v1::EvaluateUpdate> updates;
  grpc::Status status = evaluate({}, &updates);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_GE(updates.size(), 2u);
  EXPECT_TRUE(updates.front().has_progress());
  const v1::Metrics metrics = updates.back().metrics();
  for (const char* variant : {"fp32", "int8_simulated", "int8"}) {
    ASSERT_NE(FindVariant(metrics, variant), nullptr) << variant;
    EXPECT_EQ(FindVariant(metrics, variant)->count(), 300);
  }
  const nlohmann::json report =
      nlohmann::json::parse(testing::ReadFileBytes(results_dir() / job.job_id() / "report.json"));
  ASSERT_EQ(report["evaluations"].size(), 1u);
  EXPECT_EQ(report["evaluations"][0]["dataset"], kFashionPath);
  v1::Job updated;
  ASSERT_TRUE(client_->Get(job.job_id(), &updated).ok());
  ExpectArtifactsDownload(updated);  // report.json's new sha256 is what is served

  // After a restart the simulated model is gone; the files still evaluate.
  server_->Restart();
  Reconnect();
  updates.clear();
  status = evaluate({"int8_simulated"}, &updates);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  updates.clear();
  status = evaluate({}, &updates);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const v1::Metrics& after = updates.back().metrics();
  ASSERT_NE(FindVariant(after, "int8"), nullptr);
  EXPECT_EQ(FindVariant(after, "int8_simulated"), nullptr);
  EXPECT_DOUBLE_EQ(FindVariant(after, "int8")->top1(), FindVariant(metrics, "int8")->top1());

  // An uploaded fp32 model evaluates too, with the request's preprocessing.
  {
    grpc::ClientContext context;
    v1::EvaluateRequest request;
    request.set_model_id(model_id_);
    request.set_dataset(kFashionPath);
    request.set_limit(300);
    *request.mutable_input() = job.config().input();
    auto reader = client_->stub().Evaluate(&context, request);
    v1::EvaluateUpdate update;
    v1::Metrics model_metrics;
    while (reader->Read(&update)) {
      if (update.has_metrics()) model_metrics = update.metrics();
    }
    ASSERT_TRUE(reader->Finish().ok());
    ASSERT_EQ(model_metrics.variants_size(), 1);
    EXPECT_EQ(model_metrics.variants(0).variant(), "fp32");
    EXPECT_DOUBLE_EQ(model_metrics.variants(0).top1(), FindVariant(metrics, "fp32")->top1());
  }

  updates.clear();
  grpc::ClientContext context;
  v1::EvaluateRequest bad;
  bad.set_job_id(job.job_id());
  bad.set_dataset("../outside");
  auto reader = client_->stub().Evaluate(&context, bad);
  v1::EvaluateUpdate update;
  while (reader->Read(&update)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(JobsIntegrationTest, SharedImageNetMobileNetV1ThroughServerAndStreamSources) {
  const std::optional<fs::path> shared = testing::SharedDir();
  if (!shared) GTEST_SKIP() << "../shared is absent: the real ImageNet model and images are not here";
  server_ = std::make_unique<ServerProcess>(root_.path() / "state",
                                            std::vector<std::string>{"--data-root", (*shared / "data").string(),
                                                                     "--threads", "2"});
  ASSERT_FALSE(server_->address().empty());
  client_ = std::make_unique<ServiceClient>(server_->address());
  const std::string model = client_->Upload(*shared / "models" / "mobilenet_v1_0.25_224_keras_imagenet.pt");
  ASSERT_FALSE(model.empty());
  auto config = [&](const std::string& source) {
    v1::JobConfig c;
    c.mutable_model()->set_model_id(model);
    for (int i = 0; i < 3; ++i) {
      c.mutable_input()->add_mean(127.5f);
      c.mutable_input()->add_std(127.5f);
    }
    c.mutable_calibration()->set_source(source);
    if (source == "server") c.mutable_calibration()->set_path("imagenet-sample");
    c.mutable_calibration()->set_quant_batch_num(4);
    c.mutable_calibration()->set_quant_batch_size(8);
    c.mutable_ptq()->set_activation_quantizer("HistQuantizer");
    c.mutable_evaluate()->set_path("imagenet-sample");
    c.mutable_evaluate()->set_limit(200);
    return c;
  };
  const v1::Job from_server = SubmitOk(config("server"));
  const v1::Job from_stream = SubmitOk(config("stream"));
  // The stream sends the first 32 JPEGs of the sample, encoded as they are on disk.
  testing::EncodedImages jpegs;
  std::ifstream list(*shared / "data" / "imagenet-sample" / "val_list.txt");
  std::string file;
  int label;
  while (jpegs.images.size() < 32 && list >> file >> label) {
    jpegs.images.push_back(testing::ReadFileBytes(*shared / "data" / "imagenet-sample" / file));
    jpegs.labels.push_back(label);
  }
  v1::CalibrationSummary summary;
  const grpc::Status streamed = client_->Stream(testing::ImageBatches(from_stream.job_id(), jpegs, 4, 8), &summary);
  ASSERT_TRUE(streamed.ok()) << streamed.error_message();
  for (const v1::Job& job : {from_server, from_stream}) {
    const v1::Job done = WaitForEnd(job.job_id());
    ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.error();
    const v1::VariantMetrics* fp32 = FindVariant(done.metrics(), "fp32");
    const v1::VariantMetrics* int8 = FindVariant(done.metrics(), "int8");
    ASSERT_NE(fp32, nullptr);
    ASSERT_NE(int8, nullptr);
    EXPECT_EQ(int8->count(), 200);
    EXPECT_GT(fp32->top1(), 45);  // MobileNetV1-0.25 measures 59.6 on all 1000
    EXPECT_GT(int8->agreement_top1(), 70);  // 32 calibration images; bench_ptq_accuracy uses 320
  }
}

}  // namespace
}  // namespace ptq
