// Liveness that sees a wedged worker, not only an open port: a real ptq-server whose only
// worker blocks in a read that never returns (a dataset list that is a FIFO nobody writes, as a
// hung network mount would) reports the health service "liveness" NOT_SERVING after
// --stall-timeout-seconds, names the job in its log and the job's, stays ready for RPCs, and
// is live again once the read returns and the job goes on.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

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

json FashionConfig(const std::string& data, int batches, int batch_size) {
  return {{"name", "liveness"},
          {"model", {{"path", (testing::ReferenceModelsDir() / "mobilenet_v3_small.pt").string()}}},
          {"input", {{"size", 32}, {"resize_short", 0}, {"mean", {72.94, 72.94, 72.94}}, {"std", {90.02, 90.02, 90.02}}}},
          {"calibration", {{"source", "server"}, {"path", data}, {"quant_batch_num", batches}, {"quant_batch_size", batch_size}}}};
}

std::string Submit(const ServerProcess& server, const fs::path& config_path, const json& config) {
  std::ofstream(config_path) << config.dump();
  const ProcessResult submit = server.Client({"submit", "--config", config_path.string(), "--json"});
  EXPECT_EQ(submit.exit_code, 0) << submit.stderr_text;
  return submit.exit_code == 0 ? json::parse(submit.stdout_text)["job_id"].get<std::string>() : "";
}

std::string State(const ServerProcess& server, const std::string& job_id) {
  const ProcessResult status = server.Client({"status", job_id, "--json"});
  return status.exit_code == 0 ? json::parse(status.stdout_text)["state"].get<std::string>() : "";
}

// Polls `condition` every 100 ms for up to `seconds`.
template <typename Condition>
bool Within(int seconds, Condition condition) {
  for (int i = 0; i < seconds * 10; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

TEST(LivenessIntegrationTest, AWorkerBlockedInAReadMakesTheServerNotLiveUntilTheReadReturns) {
  testing::TempDir root;
  const fs::path data = root.path() / "data";
  testing::CopyFashionMnistTestSet(data / "fashion-mnist");
  const fs::path wedged = data / "wedged";
  fs::create_directories(wedged / "val");
  fs::copy_file(testing::TestDataDir() / "texture_120x90.jpg", wedged / "val" / "texture.jpg");
  const std::string list = "val/texture.jpg 3\n";
  std::ofstream(wedged / "val_list.txt") << list;
  ServerProcess server(root.path() / "state", {"--data-root", data.string(), "--threads", "2", "--workers", "1",
                                               "--stall-timeout-seconds", "2"});
  ASSERT_FALSE(server.address().empty());
  auto health = [&](const std::string& service) {
    return server.Client(service.empty() ? std::vector<std::string>{"health"}
                                         : std::vector<std::string>{"health", "--service", service});
  };
  ASSERT_EQ(health("liveness").exit_code, 0) << "live from the start";

  // The one worker is busy with a long job while the second is queued; the second's list, read
  // when it is submitted, becomes a FIFO before the worker opens it again to calibrate.
  const std::string busy = Submit(server, root.path() / "busy.json", FashionConfig("fashion-mnist/t10k", 300, 32));
  ASSERT_TRUE(Within(60, [&] { return State(server, busy) == "JOB_STATE_CALIBRATING"; }));
  const std::string stuck = Submit(server, root.path() / "stuck.json", FashionConfig("wedged", 1, 1));
  ASSERT_EQ(State(server, stuck), "JOB_STATE_QUEUED");
  fs::remove(wedged / "val_list.txt");
  ASSERT_EQ(mkfifo((wedged / "val_list.txt").c_str(), 0600), 0);
  ASSERT_EQ(server.Client({"cancel", busy}).exit_code, 0);
  EXPECT_TRUE(health("liveness").exit_code == 0) << "the busy job made progress until it was cancelled";

  const bool reported = Within(30, [&] { return health("liveness").exit_code != 0; });
  // Unwedge before any assertion can end the test: the server's stop waits for its worker.
  const int fifo = open((wedged / "val_list.txt").c_str(), O_WRONLY);
  ASSERT_GE(fifo, 0);
  ASSERT_TRUE(reported) << "liveness stayed SERVING with a worker blocked; server log:\n" << server.log();
  const ProcessResult not_live = health("liveness");
  ASSERT_EQ(write(fifo, list.data(), list.size()), static_cast<ssize_t>(list.size()));
  close(fifo);
  EXPECT_EQ(not_live.exit_code, 1);
  EXPECT_NE(not_live.stdout_text.find("liveness: NOT_SERVING"), std::string::npos) << not_live.stdout_text;
  EXPECT_NE(server.log().find("has made no progress on job " + stuck), std::string::npos) << server.log();
  const ProcessResult logs = server.Client({"logs", stuck});
  EXPECT_NE(logs.stdout_text.find("has made no progress"), std::string::npos) << logs.stdout_text;

  // The read returned: the job goes on and ends, and the server is live again.
  EXPECT_TRUE(Within(60, [&] { return State(server, stuck) == "JOB_STATE_SUCCEEDED"; })) << server.log();
  EXPECT_TRUE(Within(10, [&] { return health("liveness").exit_code == 0; }));
  EXPECT_NE(server.log().find("every worker is making progress again"), std::string::npos);
}

TEST(LivenessIntegrationTest, UnwatchedWorkersLeaveLivenessServingAndUnknownServicesAreNotFound) {
  testing::TempDir root;
  ServerProcess server(root.path() / "state", {"--stall-timeout-seconds", "0"});
  ASSERT_FALSE(server.address().empty());
  EXPECT_EQ(server.Client({"health", "--service", "liveness"}).exit_code, 0);
  const ProcessResult unknown = server.Client({"health", "--service", "no.such.Service"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.stderr_text.find("NOT_FOUND"), std::string::npos) << unknown.stderr_text;
}

}  // namespace
}  // namespace ptq
