// A real ptq-server with --metrics-listen, scraped over HTTP before, during and after a real
// job that the real ptq-client submits with its calibration images streamed: the gauges follow
// the job, the counters and histograms count what happened.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "http_get.h"
#include "nlohmann/json.hpp"
#include "server_process.h"
#include "subprocess.h"
#include "test_env.h"

namespace ptq {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ProcessResult;
using testing::ServerProcess;
using testing::TempDir;

constexpr int kBatches = 60;
constexpr int kBatchSize = 32;

// The value of the sample `series` (name and labels exactly as exposed), NaN when absent.
double Sample(const std::string& exposition, const std::string& series) {
  std::istringstream lines(exposition);
  for (std::string line; std::getline(lines, line);) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 && line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nan("");
}

class MetricsIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(root_.path() / "state",
                                              std::vector<std::string>{"--metrics-listen", "127.0.0.1:0", "--threads", "2"});
    ASSERT_FALSE(server_->address().empty());
    ASSERT_FALSE(server_->metrics_address().empty()) << server_->log();
  }

  std::string Scrape() const {
    const testing::HttpResponse response = testing::HttpGet(server_->metrics_address(), "/metrics");
    EXPECT_EQ(response.status, 200);
    return response.body;
  }

  std::string WriteConfig(const json& config) const {
    const fs::path path = root_.path() / "job.json";
    std::ofstream(path) << config.dump(2);
    return path.string();
  }

  TempDir root_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(MetricsIntegrationTest, GaugesFollowAJobAndCountersCountItsCallsBytesAndImages) {
  std::string before = Scrape();
  EXPECT_EQ(Sample(before, "ptq_jobs{state=\"SUCCEEDED\"}"), 0);
  EXPECT_EQ(Sample(before, "ptq_workers{state=\"idle\"}"), 1);
  EXPECT_EQ(Sample(before, "ptq_workers{state=\"busy\"}"), 0);
  EXPECT_EQ(Sample(before, "ptq_calibration_images_total"), 0);
  EXPECT_TRUE(std::isnan(Sample(before, "ptq_rpc_handled_total{code=\"OK\",method=\"SubmitQuantJob\"}")));
  // Build info names the commit that `ptq-server --version` names.
  const size_t commit_label = before.find("ptq_build_info{commit=\"");
  ASSERT_NE(commit_label, std::string::npos) << before;
  const size_t commit_start = commit_label + std::string("ptq_build_info{commit=\"").size();
  const std::string commit = before.substr(commit_start, before.find('"', commit_start) - commit_start);
  const ProcessResult version = testing::RunProcess({testing::ServerBinary(), "--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_NE(version.stdout_text.find("(commit " + commit + ";"), std::string::npos) << version.stdout_text;

  const fs::path model = testing::ReferenceModelsDir() / "mobilenet_v3_small.pt";
  const json config = {
      {"name", "metrics"},
      {"model", {{"path", model.string()}}},
      {"input", {{"size", 32}, {"resize_short", 0}, {"mean", {72.94, 72.94, 72.94}}, {"std", {90.02, 90.02, 90.02}}}},
      {"calibration",
       {{"source", "client"},
        {"path", (testing::FashionMnistDir() / "t10k").string()},
        {"quant_batch_num", kBatches},
        {"quant_batch_size", kBatchSize}}},
  };
  const std::string config_file = WriteConfig(config);
  std::future<ProcessResult> submit = std::async(std::launch::async, [&] {
    return server_->Client({"submit", "--config", config_file, "--wait", "--json"});
  });
  // Scraped while the job runs: one job in a running state on the one busy worker.
  bool saw_running = false;
  while (submit.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready) {
    const std::string during = Scrape();
    if (Sample(during, "ptq_jobs{state=\"CALIBRATING\"}") == 1) {
      saw_running = true;
      EXPECT_EQ(Sample(during, "ptq_workers{state=\"busy\"}"), 1) << during;
      EXPECT_EQ(Sample(during, "ptq_workers{state=\"idle\"}"), 0) << during;
    }
  }
  const ProcessResult run = submit.get();
  ASSERT_EQ(run.exit_code, 0) << run.stdout_text << run.stderr_text;
  EXPECT_TRUE(saw_running) << "no scrape saw the job calibrating";

  // A refused submission and a lookup of an unknown job are counted with their codes.
  json bad = config;
  bad["calibration"]["quant_batch_num"] = -1;
  EXPECT_NE(server_->Client({"submit", "--config", WriteConfig(bad)}).exit_code, 0);
  EXPECT_NE(server_->Client({"status", "job-0000000000000000"}).exit_code, 0);

  const std::string after = Scrape();
  EXPECT_EQ(Sample(after, "ptq_jobs{state=\"SUCCEEDED\"}"), 1) << after;
  EXPECT_EQ(Sample(after, "ptq_jobs{state=\"CALIBRATING\"}"), 0);
  EXPECT_EQ(Sample(after, "ptq_workers{state=\"busy\"}"), 0);
  EXPECT_EQ(Sample(after, "ptq_work_queue_items"), 0);
  EXPECT_EQ(Sample(after, "ptq_job_run_duration_seconds_count{state=\"SUCCEEDED\"}"), 1);
  EXPECT_GT(Sample(after, "ptq_job_run_duration_seconds_sum{state=\"SUCCEEDED\"}"), 0);
  EXPECT_EQ(Sample(after, "ptq_job_stage_duration_seconds_count{stage=\"calibration\"}"), 1);
  EXPECT_EQ(Sample(after, "ptq_job_stage_duration_seconds_count{stage=\"export\"}"), 1);
  EXPECT_TRUE(std::isnan(Sample(after, "ptq_job_stage_duration_seconds_count{stage=\"evaluation\"}")))
      << "the job evaluated nothing";
  EXPECT_EQ(Sample(after, "ptq_calibration_images_total"), kBatches * kBatchSize);
  EXPECT_GT(Sample(after, "ptq_calibration_seconds_total"), 0);
  EXPECT_EQ(Sample(after, "ptq_rpc_handled_total{code=\"OK\",method=\"UploadModel\"}"), 1);
  // The client checks a config (validate_only) before it uploads and submits it.
  EXPECT_EQ(Sample(after, "ptq_rpc_handled_total{code=\"OK\",method=\"SubmitQuantJob\"}"), 2);
  EXPECT_EQ(Sample(after, "ptq_rpc_handled_total{code=\"OK\",method=\"StreamCalibrationBatch\"}"), 1);
  EXPECT_EQ(Sample(after, "ptq_rpc_handled_total{code=\"INVALID_ARGUMENT\",method=\"SubmitQuantJob\"}"), 1);
  EXPECT_EQ(Sample(after, "ptq_rpc_handled_total{code=\"NOT_FOUND\",method=\"GetJob\"}"), 1);
  EXPECT_EQ(Sample(after, "ptq_rpc_duration_seconds_count{method=\"SubmitQuantJob\"}"), 3);
  // The model's bytes (and the messages' framing); Fashion-MNIST's 28 x 28 grey images as sent.
  EXPECT_GE(Sample(after, "ptq_received_bytes_total{kind=\"model_upload\"}"), fs::file_size(model));
  EXPECT_GE(Sample(after, "ptq_received_bytes_total{kind=\"calibration_stream\"}"), kBatches * kBatchSize * 28 * 28);
  EXPECT_TRUE(std::isnan(Sample(after, "ptq_job_store_errors_total{operation=\"update\"}")));
}

TEST_F(MetricsIntegrationTest, AnEndpointThatCannotBeBoundStopsTheStartNamingTheFlag) {
  const ProcessResult second =
      testing::RunProcess({testing::ServerBinary(), "--insecure", "--listen", "127.0.0.1:0", "--state-dir",
                           (root_.path() / "second").string(), "--metrics-listen", server_->metrics_address()});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE((second.stdout_text + second.stderr_text).find("--metrics-listen: cannot listen on '" + server_->metrics_address() + "'"),
            std::string::npos)
      << second.stdout_text << second.stderr_text;
}

}  // namespace
}  // namespace ptq
