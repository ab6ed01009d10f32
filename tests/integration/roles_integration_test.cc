// The api and worker roles as real processes: one `--role api` server and two `--role worker`
// servers sharing a PostgreSQL store of the test's own (TestPostgres) and one state directory
// (what a ReadWriteMany volume is in a cluster), driven by the real ptq-client.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"
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

// How many lines of `text` match `pattern`.
int CountMatches(const std::string& text, const std::string& pattern) {
  const std::regex regex(pattern);
  return static_cast<int>(std::distance(std::sregex_iterator(text.begin(), text.end(), regex), std::sregex_iterator()));
}

class RolesIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(postgres_.running());
    store_url_ = postgres_.NewDatabase();
    testing::CopyFashionMnistTestSet(root_.path() / "data" / "fashion-mnist");
    api_ = std::make_unique<ServerProcess>(state_dir(), Flags("api"), "api");
    ASSERT_FALSE(api_->address().empty());
    for (int w = 0; w < 2; ++w) StartWorker(w);
    client_ = std::make_unique<ServiceClient>(api_->address());
  }

  fs::path state_dir() const { return root_.path() / "state"; }

  std::vector<std::string> Flags(const std::string& role) const {
    return {"--role", role, "--store", store_url_, "--data-root", (root_.path() / "data").string(),
            "--threads", "1", "--lease-seconds", "2"};
  }

  void StartWorker(int index) {
    workers_[index] = std::make_unique<ServerProcess>(state_dir(), Flags("worker"), "worker-" + std::to_string(index));
    ASSERT_FALSE(workers_[index]->address().empty());
  }

  // A job config on the bundled MobileNetV3-small: `batches` x 16 calibration images from the
  // server's Fashion-MNIST copy (or streamed by the client from Debian's), evaluation on the
  // first `evaluate` test images.
  fs::path Config(const std::string& name, int batches, int evaluate, const std::string& source = "server") {
    const nlohmann::json config = {
        {"name", name},
        {"model", {{"path", (testing::ReferenceModelsDir() / "mobilenet_v3_small.pt").string()}}},
        {"input", {{"size", 32}, {"resize_short", 0}, {"mean", {72.94, 72.94, 72.94}}, {"std", {90.02, 90.02, 90.02}}}},
        {"calibration",
         {{"source", source},
          {"path", source == "server" ? "fashion-mnist/t10k" : (testing::FashionMnistDir() / "t10k").string()},
          {"quant_batch_num", batches},
          {"quant_batch_size", 16}}},
        {"evaluate", {{"path", "fashion-mnist/t10k"}, {"limit", evaluate}}}};
    const fs::path path = root_.path() / (name + ".json");
    std::ofstream(path) << config.dump();
    return path;
  }

  std::string Submit(const fs::path& config) {
    const testing::ProcessResult submitted = api_->Client({"--json", "submit", "--config", config.string()});
    EXPECT_EQ(submitted.exit_code, 0) << submitted.stderr_text;
    return submitted.exit_code == 0 ? nlohmann::json::parse(submitted.stdout_text).value("job_id", "") : "";
  }

  v1::Job Get(const std::string& job_id) {
    v1::Job job;
    EXPECT_TRUE(client_->Get(job_id, &job).ok());
    return job;
  }

  // The worker whose log says it claimed the job's attempt `attempt`, waiting for it up to 60 s.
  int ClaimingWorker(const std::string& job_id, int attempt) {
    const std::string line = "job " + job_id + " claimed by .* \\(attempt " + std::to_string(attempt) + "\\)";
    for (int tries = 0; tries < 600; ++tries) {
      for (int w = 0; w < 2; ++w) {
        if (CountMatches(workers_[w]->log(), line) > 0) return w;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "no worker claimed attempt " << attempt << " of " << job_id;
    return 0;
  }

  // The job's result directories, and what attempts left beside them.
  std::vector<std::string> ResultEntries() const {
    std::vector<std::string> names;
    for (const fs::directory_entry& entry : fs::directory_iterator(state_dir() / "results")) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  testing::TempDir root_;
  testing::TestPostgres postgres_;
  std::string store_url_;
  std::unique_ptr<ServerProcess> api_;
  std::unique_ptr<ServerProcess> workers_[2];
  std::unique_ptr<ServiceClient> client_;
};

TEST_F(RolesIntegrationTest, TwoWorkersRunTenJobsEachExactlyOnceAndTheApiFollowsThem) {
  std::vector<std::string> jobs;
  for (int i = 0; i < 9; ++i) jobs.push_back(Submit(Config("job-" + std::to_string(i), 2, 64)));
  // The tenth streams its calibration data through the api; a worker reads it from the spool.
  const testing::ProcessResult streamed =
      api_->Client({"--json", "submit", "--config", Config("streamed", 2, 64, "client").string(), "--wait"});
  ASSERT_EQ(streamed.exit_code, 0) << streamed.stderr_text << streamed.stdout_text;
  jobs.push_back(nlohmann::json::parse(streamed.stdout_text).value("job_id", ""));
  // WatchJob on the api follows the last server-source job to its end, wherever it runs.
  const testing::ProcessResult watched = api_->Client({"watch", jobs[8]});
  EXPECT_EQ(watched.exit_code, 0) << watched.stderr_text;
  EXPECT_NE(watched.stdout_text.find("SUCCEEDED"), std::string::npos) << watched.stdout_text;

  for (const std::string& job_id : jobs) {
    ASSERT_FALSE(job_id.empty());
    const v1::Job job =
        client_->PollUntil(job_id, [](const v1::Job& job) { return testing::IsFinalState(job.state()); });
    EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job_id << ": " << job.error();
    EXPECT_EQ(job.attempts(), 1) << job_id;
    EXPECT_GT(job.artifacts_size(), 0) << job_id;
    EXPECT_TRUE(fs::exists(state_dir() / "results" / job_id / "report.json")) << job_id;
  }
  const std::string all_logs = workers_[0]->log() + workers_[1]->log();
  for (const std::string& job_id : jobs) {
    EXPECT_EQ(CountMatches(all_logs, "job " + job_id + " claimed by "), 1) << job_id;
    EXPECT_EQ(CountMatches(all_logs, "job " + job_id + " -> SUCCEEDED"), 1) << job_id;
  }
  EXPECT_EQ(ResultEntries().size(), jobs.size()) << "nothing but the published directories";
  EXPECT_TRUE(fs::is_empty(state_dir() / "streams")) << "the spool goes when its job ends";

  const testing::ProcessResult refused = workers_[0]->Client({"list"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.stderr_text.find("--role worker"), std::string::npos) << refused.stderr_text;
  EXPECT_EQ(workers_[0]->Client({"health"}).exit_code, 0);
}

TEST_F(RolesIntegrationTest, AWorkerKilledMidCalibrationLosesItsJobAfterItsLeaseAndTheJobSucceeds) {
  // 1920 calibration images: seconds of calibration to kill the worker in.
  const std::string job_id = Submit(Config("killed", 120, 500));
  ASSERT_FALSE(job_id.empty());
  const int holder = ClaimingWorker(job_id, 1);
  const v1::Job calibrating = client_->PollUntil(job_id, [](const v1::Job& job) {
    return job.state() == v1::JOB_STATE_CALIBRATING && job.progress().done() > 0;
  });
  ASSERT_EQ(calibrating.state(), v1::JOB_STATE_CALIBRATING);
  workers_[holder]->Kill();

  const int successor = ClaimingWorker(job_id, 2);
  EXPECT_NE(successor, holder);
  const v1::Job job = client_->PollUntil(job_id, [](const v1::Job& job) { return testing::IsFinalState(job.state()); });
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();
  EXPECT_EQ(job.attempts(), 2);
  EXPECT_EQ(ResultEntries(), std::vector<std::string>{job_id}) << "the dead attempt's staging folder is gone";
}

TEST_F(RolesIntegrationTest, AWorkerPausedPastItsLeaseCannotPublishWhenItResumes) {
  const std::string job_id = Submit(Config("paused", 4, 10000));
  ASSERT_FALSE(job_id.empty());
  const int holder = ClaimingWorker(job_id, 1);
  client_->PollUntil(job_id, [](const v1::Job& job) { return job.state() == v1::JOB_STATE_EVALUATING; });
  ASSERT_EQ(::kill(workers_[holder]->pid(), SIGSTOP), 0);
  ClaimingWorker(job_id, 2);
  const v1::Job done = client_->PollUntil(job_id, [](const v1::Job& job) { return testing::IsFinalState(job.state()); });
  ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.error();
  const std::string report = testing::ReadFileBytes(state_dir() / "results" / job_id / "report.json");

  ASSERT_EQ(::kill(workers_[holder]->pid(), SIGCONT), 0);
  for (int tries = 0; tries < 300 && CountMatches(workers_[holder]->log(), "attempt 1 lost its lease") == 0; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(CountMatches(workers_[holder]->log(), "attempt 1 lost its lease; its result is discarded"), 1)
      << workers_[holder]->log();
  const v1::Job after = Get(job_id);
  EXPECT_EQ(after.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(after.attempts(), 2);
  EXPECT_EQ(testing::ReadFileBytes(state_dir() / "results" / job_id / "report.json"), report) << "not overwritten";
  EXPECT_EQ(ResultEntries(), std::vector<std::string>{job_id});
}

TEST_F(RolesIntegrationTest, AWorkerStoppedWithSigtermHandsItsJobBackAtOnce) {
  const std::string job_id = Submit(Config("handed-back", 4, 10000));
  ASSERT_FALSE(job_id.empty());
  const int holder = ClaimingWorker(job_id, 1);
  client_->PollUntil(job_id, [](const v1::Job& job) { return job.state() == v1::JOB_STATE_EVALUATING; });
  EXPECT_EQ(workers_[holder]->Stop(), std::optional<int>(0));
  // Released, not left to expire.
  EXPECT_EQ(CountMatches(workers_[holder]->log(), "job " + job_id + " -> QUEUED on cpu \\(attempt 1\\)"), 1)
      << workers_[holder]->log();
  EXPECT_EQ(ClaimingWorker(job_id, 2), 1 - holder);
  const v1::Job job = client_->PollUntil(job_id, [](const v1::Job& job) { return testing::IsFinalState(job.state()); });
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();
  EXPECT_EQ(job.attempts(), 2);
}

TEST_F(RolesIntegrationTest, AWatchingClientResumesOnTheOtherApiServerWhenOneIsKilled) {
  ServerProcess second_api(state_dir(), Flags("api"), "api-2");
  ASSERT_FALSE(second_api.address().empty());
  // Both replicas as one target, as a Service would be: gRPC's pick_first takes the first.
  const std::string both = "ipv4:" + api_->address() + "," + second_api.address();
  const std::string job_id = Submit(Config("watched", 4, 10000));
  ASSERT_FALSE(job_id.empty());
  const fs::path watch_log = root_.path() / "watch.log";
  testing::ChildProcess watcher({testing::ClientBinary(), "--server", both, "watch", job_id}, watch_log.string());
  client_->PollUntil(job_id, [](const v1::Job& job) { return job.state() == v1::JOB_STATE_EVALUATING; });
  api_->Kill();
  const std::optional<int> exit_code = watcher.WaitFor(std::chrono::seconds(300));
  const std::string watched = testing::ReadFileBytes(watch_log);
  EXPECT_EQ(exit_code, std::optional<int>(0)) << watched;
  EXPECT_NE(watched.find("watching job " + job_id + " again"), std::string::npos) << watched;
  EXPECT_NE(watched.find(job_id + " SUCCEEDED"), std::string::npos) << watched;
}

TEST_F(RolesIntegrationTest, OneIdempotencyKeySubmittedToBothApiServersAtOnceMakesOneJob) {
  ServerProcess second_api(state_dir(), Flags("api"), "api-2");
  ASSERT_FALSE(second_api.address().empty());
  const std::vector<std::string> submit = {"--json", "submit", "--config", Config("retried", 2, 64).string(),
                                           "--idempotency-key", "retry-1"};
  // Together, well within the 0.5 s in which an api server learns of the other's jobs.
  testing::ProcessResult on_first;
  std::thread first([&] { on_first = api_->Client(submit); });
  const testing::ProcessResult on_second = second_api.Client(submit);
  first.join();
  ASSERT_EQ(on_first.exit_code, 0) << on_first.stderr_text;
  ASSERT_EQ(on_second.exit_code, 0) << on_second.stderr_text;
  const std::string job_id = nlohmann::json::parse(on_first.stdout_text).value("job_id", "");
  EXPECT_EQ(nlohmann::json::parse(on_second.stdout_text).value("job_id", ""), job_id);
  EXPECT_EQ(CountMatches(api_->log() + second_api.log(), "job job-[0-9a-f]+ submitted"), 1);

  // The key with another config is refused on either server.
  const testing::ProcessResult changed = second_api.Client(
      {"submit", "--config", Config("retried-changed", 3, 64).string(), "--idempotency-key", "retry-1"});
  EXPECT_NE(changed.exit_code, 0);
  EXPECT_NE(changed.stderr_text.find("was used for job " + job_id + " with a different config"), std::string::npos)
      << changed.stderr_text;
  const v1::Job job = client_->PollUntil(job_id, [](const v1::Job& job) { return testing::IsFinalState(job.state()); });
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();
  EXPECT_EQ(ResultEntries(), std::vector<std::string>{job_id});
}

TEST_F(RolesIntegrationTest, AJobDeletedThroughOneApiServerIsGoneFromTheOther) {
  ServerProcess second_api(state_dir(), Flags("api"), "api-2");
  ASSERT_FALSE(second_api.address().empty());
  const std::string job_id = Submit(Config("deleted", 2, 64));
  ASSERT_FALSE(job_id.empty());
  const v1::Job job = client_->PollUntil(job_id, [](const v1::Job& job) { return testing::IsFinalState(job.state()); });
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();
  ASSERT_EQ(second_api.Client({"status", job_id}).exit_code, 0) << "the second api server follows the job";

  const testing::ProcessResult deleted = api_->Client({"delete", job_id});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.stderr_text;
  testing::ProcessResult status;
  for (int tries = 0; tries < 50; ++tries) {  // it reads the store every 0.5 s
    status = second_api.Client({"status", job_id});
    if (status.exit_code != 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(status.exit_code, 0);
  EXPECT_NE(status.stderr_text.find("NOT_FOUND"), std::string::npos) << status.stderr_text;
  const testing::ProcessResult listed = second_api.Client({"list"});
  EXPECT_EQ(listed.exit_code, 0) << listed.stderr_text;
  EXPECT_EQ(listed.stdout_text.find(job_id), std::string::npos) << listed.stdout_text;
  EXPECT_TRUE(ResultEntries().empty());
}

TEST_F(RolesIntegrationTest, ACancelOnTheApiReachesTheWorkerRunningTheJob) {
  const std::string job_id = Submit(Config("cancelled", 4, 10000));
  ASSERT_FALSE(job_id.empty());
  client_->PollUntil(job_id, [](const v1::Job& job) { return job.state() == v1::JOB_STATE_EVALUATING; });
  const testing::ProcessResult cancel = api_->Client({"cancel", job_id});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.stderr_text;
  const v1::Job job = client_->PollUntil(job_id, [](const v1::Job& job) { return testing::IsFinalState(job.state()); },
                                         std::chrono::seconds(30));
  EXPECT_EQ(job.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_TRUE(ResultEntries().empty()) << "a cancelled run publishes nothing";

  // A job no worker holds yet ends at once.
  workers_[0]->Kill();
  workers_[1]->Kill();
  const std::string waiting = Submit(Config("waiting", 2, 64));
  ASSERT_FALSE(waiting.empty());
  EXPECT_EQ(api_->Client({"cancel", waiting}).exit_code, 0);
  EXPECT_EQ(Get(waiting).state(), v1::JOB_STATE_CANCELLED);
}

}  // namespace
}  // namespace ptq
