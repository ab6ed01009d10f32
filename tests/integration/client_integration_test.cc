// The real ptq-client binary against a real ptq-server on loopback, on the bundled Fashion-MNIST
// model and Debian's Fashion-MNIST images: submit --wait through both calibration sources,
// download with sha256 checks, cancel, status/list/watch, every exit code, --json documents,
// and the progress display in a pipe and in a pseudo-terminal.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <thread>

#include "nlohmann/json.hpp"
#include "ptq/common/sha256.h"
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

class ClientIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::CopyFashionMnistTestSet(root_.path() / "data" / "fashion-mnist");
    server_ = std::make_unique<ServerProcess>(
        root_.path() / "state", std::vector<std::string>{"--data-root", (root_.path() / "data").string(), "--threads", "2"});
    ASSERT_FALSE(server_->address().empty());
  }

  // A config for the bundled MobileNetV3-small; `source` "server" reads the data root,
  // "client" reads Debian's copy on this machine.
  json Config(const std::string& source, int batches, int evaluate_limit) const {
    json config = {
        {"name", "fashion-" + source},
        {"model", {{"path", (testing::ReferenceModelsDir() / "mobilenet_v3_small.pt").string()}}},
        {"input", {{"size", 32}, {"resize_short", 0}, {"mean", {72.94, 72.94, 72.94}}, {"std", {90.02, 90.02, 90.02}}}},
        {"calibration", {{"source", source}, {"quant_batch_num", batches}, {"quant_batch_size", 16}}},
        {"ptq", {{"activation_quantizer", "HistQuantizer"}, {"hist_percent", 0.999}, {"fuse", true}}},
    };
    config["calibration"]["path"] =
        source == "server" ? "fashion-mnist/t10k" : (testing::FashionMnistDir() / "t10k").string();
    if (evaluate_limit > 0) config["evaluate"] = {{"path", "fashion-mnist/t10k"}, {"limit", evaluate_limit}};
    return config;
  }

  std::string WriteConfig(const json& config, const std::string& name = "job.json") const {
    const fs::path path = root_.path() / name;
    std::ofstream(path) << config.dump(2);
    return path.string();
  }

  ProcessResult Client(const std::vector<std::string>& args) const { return server_->Client(args); }

  // Polls `status` until the job is in a final state; its JSON then.
  json WaitForEnd(const ServerProcess& server, const std::string& job_id) const {
    for (int i = 0; i < 600; ++i) {
      const ProcessResult status = server.Client({"status", job_id, "--json"});
      if (status.exit_code == 0) {
        json job = json::parse(status.stdout_text);
        const std::string state = job["state"];
        if (state == "JOB_STATE_SUCCEEDED" || state == "JOB_STATE_FAILED" || state == "JOB_STATE_CANCELLED") return job;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "job " << job_id << " did not end";
    return json::object();
  }

  // Whether `status` says NOT_FOUND for the job within `seconds`.
  // Whether `condition` holds within `seconds` (checked every 100 ms).
  static bool Within(int seconds, const std::function<bool()>& condition) {
    for (int i = 0; i < seconds * 10; ++i) {
      if (condition()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  static bool GoneWithin(const ServerProcess& server, const std::string& job_id, int seconds) {
    return Within(seconds, [&] {
      return server.Client({"status", job_id}).stderr_text.find("NOT_FOUND") != std::string::npos;
    });
  }

  static int64_t FolderBytes(const fs::path& folder) {
    int64_t bytes = 0;
    for (const fs::directory_entry& entry : fs::recursive_directory_iterator(folder)) {
      if (entry.is_regular_file()) bytes += static_cast<int64_t>(entry.file_size());
    }
    return bytes;
  }

  TempDir root_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ClientIntegrationTest, SubmitWaitWithServerSourceDownloadsAVerifiedResultDirectory) {
  json config = Config("server", 3, 500);
  config["output_dir"] = (root_.path() / "out").string();
  const ProcessResult run = Client({"submit", "--config", WriteConfig(config), "--wait", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  const json job = json::parse(run.stdout_text);  // one JSON document, nothing else on stdout
  EXPECT_EQ(job["state"], "JOB_STATE_SUCCEEDED");
  ASSERT_EQ(job["metrics"]["variants"].size(), 3u);
  for (const json& variant : job["metrics"]["variants"]) {
    EXPECT_EQ(variant["count"], "500") << variant;  // int64 prints as a JSON string
    EXPECT_GT(variant["top1"].get<double>(), 80) << variant;
  }
  // output_dir received the result directory; every file matches MANIFEST.
  const fs::path out = root_.path() / "out" / job["job_id"].get<std::string>();
  std::ifstream manifest(out / "MANIFEST");
  std::string sha, path;
  int files = 0;
  while (manifest >> sha >> path) {
    EXPECT_EQ(*Sha256OfFile((out / path).string()), sha) << path;
    ++files;
  }
  EXPECT_EQ(files, 8);

  // `download` fetches it again, checking every sha256; `status --json` is the same job.
  const ProcessResult download =
      Client({"download", job["job_id"], "--out", (root_.path() / "again").string(), "--json"});
  ASSERT_EQ(download.exit_code, 0) << download.stderr_text;
  EXPECT_EQ(json::parse(download.stdout_text)["files"].size(), 9u);
  EXPECT_EQ(testing::ReadFileBytes(root_.path() / "again" / "int8_infer" / "model.pt"),
            testing::ReadFileBytes(out / "int8_infer" / "model.pt"));
  const ProcessResult status = Client({"status", job["job_id"], "--json"});
  ASSERT_EQ(status.exit_code, 0);
  EXPECT_EQ(json::parse(status.stdout_text)["job_id"], job["job_id"]);
}

TEST_F(ClientIntegrationTest, SubmitWaitWithClientSourceStreamsLocalImagesAndPrintsTheTable) {
  const ProcessResult run = Client({"submit", "--config", WriteConfig(Config("client", 4, 300)), "--wait"});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  // The seed's table: fp32 and int8 top-1/top-5 side by side.
  EXPECT_NE(run.stdout_text.find("| model | FP32 top-1/top-5 | method | int8 simulated top-1/top-5 | int8 top-1/top-5"),
            std::string::npos)
      << run.stdout_text;
  EXPECT_NE(run.stdout_text.find("| fashion-client |"), std::string::npos) << run.stdout_text;
  EXPECT_NE(run.stderr_text.find("streamed 4 batches (64 images)"), std::string::npos) << run.stderr_text;
  // The uploaded model is reused: a second submit sends no model bytes again.
  const ProcessResult list = Client({"list", "--json"});
  ASSERT_EQ(list.exit_code, 0);
  const json jobs = json::parse(list.stdout_text)["jobs"];
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["config"]["calibration"]["source"], "stream");
}

// `watch` outlives the server: killed and started again on the same address, it is found again
// and the job (re-queued by the restart) is followed to its end.
TEST_F(ClientIntegrationTest, WatchResumesAcrossAServerCrashAndRestart) {
  const ProcessResult submitted = Client({"submit", "--config", WriteConfig(Config("server", 150, 0)), "--json"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.stderr_text;
  const std::string job_id = json::parse(submitted.stdout_text)["job_id"];
  const std::string log = (root_.path() / "watch.log").string();
  testing::ChildProcess watch({testing::ClientBinary(), "--server", server_->address(), "watch", job_id, "--json"},
                              log);
  for (int i = 0; i < 200; ++i) {
    const ProcessResult status = Client({"status", job_id, "--json"});
    if (status.exit_code == 0 && json::parse(status.stdout_text)["state"] == "JOB_STATE_CALIBRATING") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  server_->CrashAndRestartOnTheSamePort();
  ASSERT_FALSE(server_->address().empty());
  EXPECT_EQ(watch.WaitFor(std::chrono::seconds(180)), 0) << testing::ReadFileBytes(log);
  const std::string output = testing::ReadFileBytes(log);
  EXPECT_NE(output.find("lost the server"), std::string::npos) << output;
  EXPECT_NE(output.find("JOB_STATE_SUCCEEDED"), std::string::npos) << output;
  EXPECT_NE(output.find("\"attempts\":2"), std::string::npos) << "run again after the crash: " << output;
}

// Under --json a script reads errors as documents too.
TEST_F(ClientIntegrationTest, ErrorsAreJsonDocumentsOnStderrUnderJson) {
  const ProcessResult unknown = Client({"status", "job-0000000000000000", "--json"});
  EXPECT_EQ(unknown.exit_code, 3);
  const json refused = json::parse(unknown.stderr_text, nullptr, false);
  ASSERT_FALSE(refused.is_discarded()) << unknown.stderr_text;
  EXPECT_EQ(refused["error"]["command"], "status");
  EXPECT_EQ(refused["error"]["code"], "NOT_FOUND");
  EXPECT_EQ(refused["error"]["exit_code"], 3);
  EXPECT_NE(refused["error"]["message"].get<std::string>().find("does not exist"), std::string::npos);

  const ProcessResult nobody = testing::RunProcess(
      {testing::ClientBinary(), "--server", "127.0.0.1:1", "--timeout", "2", "--json", "list"});
  EXPECT_EQ(nobody.exit_code, 1);
  const json unreachable = json::parse(nobody.stderr_text, nullptr, false);
  ASSERT_FALSE(unreachable.is_discarded()) << nobody.stderr_text;
  EXPECT_EQ(unreachable["error"]["code"], "UNAVAILABLE");
  EXPECT_EQ(unreachable["error"]["explanation"], "cannot reach server 127.0.0.1:1");

  // Errors the client finds itself too.
  const ProcessResult missing = Client({"--json", "upload", (root_.path() / "missing.pt").string()});
  EXPECT_EQ(missing.exit_code, 2);
  const json local = json::parse(missing.stderr_text, nullptr, false);
  ASSERT_FALSE(local.is_discarded()) << missing.stderr_text;
  EXPECT_EQ(local["error"]["command"], "upload");
  EXPECT_EQ(local["error"]["exit_code"], 2);
  EXPECT_NE(local["error"]["message"].get<std::string>().find("missing.pt' does not exist"), std::string::npos);
  const ProcessResult bad_state = Client({"--json", "list", "--state", "sleeping"});
  EXPECT_EQ(bad_state.exit_code, 2);
  EXPECT_FALSE(json::parse(bad_state.stderr_text, nullptr, false).is_discarded()) << bad_state.stderr_text;
}

// A plain folder of images, no labels: the client streams every image file below it (nested
// folders too, other files skipped) in path order, and the job calibrates on them.
TEST_F(ClientIntegrationTest, ClientSourceCalibratesOnAFolderOfUnlabelledImages) {
  const fs::path folder = root_.path() / "my-images";
  fs::create_directories(folder / "nested");
  for (int i = 0; i < 40; ++i) {
    fs::copy_file(testing::TestDataDir() / "texture_120x90.jpg",
                  folder / (i % 2 == 0 ? fs::path("nested") : fs::path(".")) / ("image" + std::to_string(i) + ".JPG"));
  }
  std::ofstream(folder / "notes.txt") << "not an image";
  json config = Config("client", 2, 0);
  config["calibration"]["path"] = folder.string();
  const ProcessResult run = Client({"submit", "--config", WriteConfig(config), "--wait", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  const std::string job_id = json::parse(run.stdout_text)["job_id"];
  const json report =
      json::parse(testing::ReadFileBytes(root_.path() / "state" / "results" / job_id / "report.json"));
  EXPECT_EQ(report["provenance"]["calibration_images"], 32);

  // A folder with neither val_list.txt nor images is a config error naming it.
  fs::create_directories(root_.path() / "empty");
  config["calibration"]["path"] = (root_.path() / "empty").string();
  const ProcessResult empty = Client({"submit", "--config", WriteConfig(config)});
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_NE(empty.stderr_text.find("empty' has no val_list.txt and no image files (.jpg"), std::string::npos)
      << empty.stderr_text;
}

// Sensitivity and an accuracy budget on streamed, labelled images: `report` prints the held-out
// score, the budget, the weights / activations split and the per-layer table; report.json and sensitivity.svg are in the result.
TEST_F(ClientIntegrationTest, ReportShowsTheBudgetAndTheLayerSensitivityOfAStreamedJob) {
  json config = Config("client", 6, 0);
  config["ptq"]["sensitivity"] = true;
  config["ptq"]["min_agreement"] = 100;
  config["ptq"]["max_top1_drop"] = 0;
  config["ptq"]["holdout_batches"] = 2;
  const ProcessResult run = Client({"submit", "--config", WriteConfig(config), "--wait", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  const std::string job_id = json::parse(run.stdout_text)["job_id"];

  const ProcessResult text = Client({"report", job_id});
  ASSERT_EQ(text.exit_code, 0) << text.stderr_text;
  EXPECT_NE(text.stdout_text.find("held-out calibration images: agreement with fp32 "), std::string::npos)
      << text.stdout_text;
  EXPECT_NE(text.stdout_text.find("of 32 images, top-1 drop "), std::string::npos) << text.stdout_text;
  EXPECT_NE(text.stdout_text.find("accuracy budget (agreement >= 100.00%, top-1 drop <= 0.00 points): met"),
            std::string::npos)
      << text.stdout_text;
  EXPECT_NE(text.stdout_text.find("features.0.0                     conv2d"), std::string::npos) << text.stdout_text;
  EXPECT_NE(text.stdout_text.find("  only activations int8: agreement with fp32 "), std::string::npos) << text.stdout_text;

  const ProcessResult document = Client({"report", job_id, "--json"});
  ASSERT_EQ(document.exit_code, 0) << document.stderr_text;
  const json report = json::parse(document.stdout_text);
  EXPECT_EQ(report["held_out"]["images"], 32);
  EXPECT_EQ(report["held_out"]["labelled"], 32);
  EXPECT_EQ(report["held_out"]["agreement_top1"], 100.0);
  EXPECT_GT(report["sensitivity"].size(), 40u);  // MobileNetV3-small's convs and linears
  EXPECT_EQ(report["error_sources"]["weights_only"]["images"], 32);
  EXPECT_TRUE(report["accuracy_budget"]["met"].get<bool>());
  EXPECT_EQ(report["config"]["ptq"]["holdout_batches"], 2);

  const ProcessResult download = Client({"download", job_id, "--out", (root_.path() / "result").string()});
  ASSERT_EQ(download.exit_code, 0) << download.stderr_text;
  const std::string svg = testing::ReadFileBytes(root_.path() / "result" / "sensitivity.svg");
  EXPECT_NE(svg.find("Layer sensitivity on held-out calibration images"), std::string::npos);
  EXPECT_NE(svg.find(">features.0.0"), std::string::npos);

  // An unknown job is the server's NOT_FOUND (exit 3).
  EXPECT_EQ(Client({"report", std::string(32, 'f')}).exit_code, 3);
}

TEST_F(ClientIntegrationTest, ProgressIsPlainLinesInAPipeAndOneRedrawnLineOnATerminal) {
  const std::string config = WriteConfig(Config("server", 3, 200));
  const ProcessResult piped = Client({"submit", "--config", config, "--wait"});
  ASSERT_EQ(piped.exit_code, 0) << piped.stderr_text;
  EXPECT_EQ(piped.stderr_text.find('\r'), std::string::npos);
  EXPECT_NE(piped.stderr_text.find(" CALIBRATING "), std::string::npos) << piped.stderr_text;
  EXPECT_NE(piped.stderr_text.find(" SUCCEEDED "), std::string::npos) << piped.stderr_text;

  // util-linux `script` gives the client a pseudo-terminal and copies what it draws.
  const std::string command = testing::ClientBinary() + " --server " + server_->address() + " submit --config " +
                              config + " --wait";
  const ProcessResult terminal = testing::RunProcess({"/usr/bin/script", "-qec", command, "/dev/null"}, std::chrono::seconds(120));
  ASSERT_EQ(terminal.exit_code, 0) << terminal.stdout_text;
  EXPECT_NE(terminal.stdout_text.find("\r\033[K"), std::string::npos) << "redrawn in place";
  EXPECT_NE(terminal.stdout_text.find("#]"), std::string::npos) << "a full bar at the end";
  EXPECT_NE(terminal.stdout_text.find("| fashion-server |"), std::string::npos);
}

TEST_F(ClientIntegrationTest, CancelAndWatchReportACancelledJob) {
  const ProcessResult submitted = Client({"submit", "--config", WriteConfig(Config("server", 500, 0)), "--json"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.stderr_text;
  const std::string job_id = json::parse(submitted.stdout_text)["job_id"];
  // Wait until it calibrates, then cancel.
  for (int i = 0; i < 200; ++i) {
    const ProcessResult status = Client({"status", job_id, "--json"});
    if (json::parse(status.stdout_text)["state"] == "JOB_STATE_CALIBRATING") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const ProcessResult cancel = Client({"cancel", job_id});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.stderr_text;
  const ProcessResult watch = Client({"watch", job_id, "--json"});
  EXPECT_EQ(watch.exit_code, 4) << watch.stderr_text;
  EXPECT_EQ(json::parse(watch.stdout_text)["state"], "JOB_STATE_CANCELLED");
  const ProcessResult again = Client({"cancel", job_id});
  EXPECT_EQ(again.exit_code, 3);
  EXPECT_NE(again.stderr_text.find("FAILED_PRECONDITION"), std::string::npos) << again.stderr_text;
  const ProcessResult cancelled = Client({"list", "--state", "cancelled", "--json"});
  ASSERT_EQ(cancelled.exit_code, 0);
  EXPECT_EQ(json::parse(cancelled.stdout_text)["jobs"].size(), 1u);
}

TEST_F(ClientIntegrationTest, ExitCodesSayWhoSaidNo) {
  // 2: config errors, caught before anything is uploaded, naming the key.
  json config = Config("server", 2, 0);
  config["ptq"]["hist_percnt"] = 0.9;
  ProcessResult run = Client({"submit", "--config", WriteConfig(config)});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.stderr_text.find("ptq.hist_percnt: unknown key"), std::string::npos) << run.stderr_text;
  config = Config("server", 2, 0);
  config["ptq"]["hist_percent"] = 7;  // a value only the server's checks know is wrong
  run = Client({"submit", "--config", WriteConfig(config)});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.stderr_text.find("ptq.hist_percent must be in (0, 1]"), std::string::npos) << run.stderr_text;
  config = Config("server", 2, 0);
  config["calibration"]["path"] = "../../etc";
  run = Client({"submit", "--config", WriteConfig(config)});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.stderr_text.find("PERMISSION_DENIED"), std::string::npos) << run.stderr_text;
  EXPECT_TRUE(testing::ListFiles(server_->state_dir() / "models").empty()) << "nothing was uploaded";
  EXPECT_EQ(Client({"submit"}).exit_code, 2);  // --config missing
  EXPECT_EQ(Client({"submit", "--config", (root_.path() / "missing.json").string()}).exit_code, 2);

  // 3: the server said no.
  run = Client({"status", "job-0000000000000000"});
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_NE(run.stderr_text.find("NOT_FOUND"), std::string::npos) << run.stderr_text;

  // 4: the job failed (the model uses an op the engine does not support); the reason is shown.
  config = Config("server", 2, 0);
  config["model"]["path"] = (testing::TestModelsDir() / "unsupported_op.pt").string();
  run = Client({"submit", "--config", WriteConfig(config), "--wait"});
  EXPECT_EQ(run.exit_code, 4) << run.stderr_text;
  EXPECT_NE(run.stdout_text.find("FAILED"), std::string::npos) << run.stdout_text;
  EXPECT_NE(run.stdout_text.find("sin"), std::string::npos) << run.stdout_text;

  // 1: nobody answered.
  const ProcessResult unreachable = testing::RunProcess({testing::ClientBinary(), "--server", "127.0.0.1:1",
                                                         "--timeout", "2", "status", "job-x"});
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_NE(unreachable.stderr_text.find("cannot reach server"), std::string::npos) << unreachable.stderr_text;
}

// Deleting: a job that has not ended and a model such a job uses are refused; ended ones go
// with everything they had on disk.
TEST_F(ClientIntegrationTest, DeleteRemovesEndedJobsAndUnusedModelsAndRefusesRunningOnes) {
  const fs::path model = testing::ReferenceModelsDir() / "mobilenet_v3_small.pt";
  const ProcessResult uploaded = Client({"upload", model.string(), "--json"});
  ASSERT_EQ(uploaded.exit_code, 0) << uploaded.stderr_text;
  const std::string model_id = json::parse(uploaded.stdout_text)["model_id"];
  const ProcessResult listed = Client({"models", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.stderr_text;
  ASSERT_EQ(json::parse(listed.stdout_text)["models"].size(), 1u) << listed.stdout_text;
  EXPECT_EQ(json::parse(listed.stdout_text)["models"][0]["model_id"], model_id);

  const ProcessResult submitted = Client({"submit", "--config", WriteConfig(Config("server", 400, 0)), "--json"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.stderr_text;
  const std::string long_job = json::parse(submitted.stdout_text)["job_id"];
  ProcessResult refused = Client({"delete", long_job});
  EXPECT_EQ(refused.exit_code, 3);
  EXPECT_NE(refused.stderr_text.find("FAILED_PRECONDITION"), std::string::npos) << refused.stderr_text;
  EXPECT_NE(refused.stderr_text.find("cancel it before deleting it"), std::string::npos) << refused.stderr_text;
  refused = Client({"delete-model", model_id});
  EXPECT_EQ(refused.exit_code, 3);
  EXPECT_NE(refused.stderr_text.find("job " + long_job + " uses model"), std::string::npos) << refused.stderr_text;

  ASSERT_EQ(Client({"cancel", long_job}).exit_code, 0);
  EXPECT_EQ(WaitForEnd(*server_, long_job)["state"], "JOB_STATE_CANCELLED");
  const ProcessResult done = Client({"submit", "--config", WriteConfig(Config("server", 2, 0)), "--wait", "--json"});
  ASSERT_EQ(done.exit_code, 0) << done.stderr_text;
  const std::string job = json::parse(done.stdout_text)["job_id"];
  const fs::path state = root_.path() / "state";
  ASSERT_TRUE(fs::exists(state / "results" / job));
  ASSERT_TRUE(fs::exists(state / "logs" / (job + ".log")));

  for (const std::string& id : {long_job, job}) {
    const ProcessResult deleted = Client({"delete", id});
    EXPECT_EQ(deleted.exit_code, 0) << deleted.stderr_text;
    EXPECT_TRUE(GoneWithin(*server_, id, 1)) << id;
    EXPECT_EQ(Client({"delete", id}).exit_code, 3) << "deleted already";
  }
  EXPECT_FALSE(fs::exists(state / "results" / job));
  EXPECT_FALSE(fs::exists(state / "logs" / (job + ".log")));
  EXPECT_EQ(testing::ListFiles(state / "results").size(), 0u) << "nothing left behind";
  const ProcessResult listed_jobs = Client({"list", "--json"});
  EXPECT_EQ(listed_jobs.stdout_text.find(job), std::string::npos) << listed_jobs.stdout_text;

  // No job uses the model any more.
  const ProcessResult deleted_model = Client({"delete-model", model_id});
  EXPECT_EQ(deleted_model.exit_code, 0) << deleted_model.stderr_text;
  EXPECT_EQ(deleted_model.stdout_text, model_id + " deleted\n");
  EXPECT_FALSE(fs::exists(state / "models" / model_id));
  EXPECT_EQ(json::parse(Client({"models", "--json"}).stdout_text).value("models", json::array()).size(), 0u);
  // Still works after a restart: nothing deleted comes back.
  server_->Restart();
  EXPECT_TRUE(GoneWithin(*server_, job, 1));
}

// Retention: by age, and by size (the job that finished first goes first).
TEST_F(ClientIntegrationTest, RetentionDeletesJobsPastTheirAgeOrBeyondTheSizeLimitOldestFirst) {
  const ProcessResult first = Client({"submit", "--config", WriteConfig(Config("server", 2, 0)), "--wait", "--json"});
  ASSERT_EQ(first.exit_code, 0) << first.stderr_text;
  const int64_t result_bytes =
      FolderBytes(root_.path() / "state" / "results" / std::string(json::parse(first.stdout_text)["job_id"]));
  ASSERT_GT(result_bytes, 0);

  // Room for one result directory and a half: the second job's pushes the first one out.
  const std::string limit_gb = std::to_string(1.5 * static_cast<double>(result_bytes) / (1 << 30));
  ServerProcess sized(root_.path() / "sized", {"--data-root", (root_.path() / "data").string(), "--threads", "2",
                                               "--max-state-gb", limit_gb});
  ASSERT_FALSE(sized.address().empty());
  std::vector<std::string> jobs;
  for (int i = 0; i < 2; ++i) {
    const ProcessResult run = sized.Client({"submit", "--config", WriteConfig(Config("server", 2, 0)), "--wait", "--json"});
    ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
    jobs.push_back(json::parse(run.stdout_text)["job_id"]);
  }
  EXPECT_TRUE(GoneWithin(sized, jobs[0], 15)) << sized.log();
  EXPECT_EQ(sized.Client({"status", jobs[1]}).exit_code, 0);
  // The record goes first (no client sees a half-deleted directory), then the files and the line.
  EXPECT_TRUE(Within(10, [&] {
    return sized.log().find("deleted " + jobs[0] + " (SUCCEEDED, default; results over --max-state-gb)") !=
           std::string::npos;
  })) << sized.log();

  // Three seconds' worth of days.
  ServerProcess aged(root_.path() / "aged", {"--data-root", (root_.path() / "data").string(), "--threads", "2",
                                             "--retention-days", std::to_string(3.0 / 86400)});
  ASSERT_FALSE(aged.address().empty());
  const ProcessResult run = aged.Client({"submit", "--config", WriteConfig(Config("server", 2, 0)), "--wait", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  const std::string job = json::parse(run.stdout_text)["job_id"];
  EXPECT_EQ(aged.Client({"status", job}).exit_code, 0) << "kept while young";
  EXPECT_TRUE(GoneWithin(aged, job, 20)) << aged.log();
  EXPECT_TRUE(Within(10, [&] { return !fs::exists(root_.path() / "aged" / "results" / job); }));
}

// `ptq-client logs` prints the job's own lines: its submission, state changes and failure.
TEST_F(ClientIntegrationTest, LogsShowAJobsSubmissionStateChangesAndFailure) {
  json config = Config("server", 2, 0);
  config["model"]["path"] = (testing::TestModelsDir() / "mismatched_head.pt").string();
  const ProcessResult run = Client({"submit", "--config", WriteConfig(config), "--wait", "--json"});
  ASSERT_EQ(run.exit_code, 4) << run.stderr_text;
  const std::string job_id = json::parse(run.stdout_text)["job_id"];
  const ProcessResult logs = Client({"logs", job_id});
  ASSERT_EQ(logs.exit_code, 0) << logs.stderr_text;
  const std::vector<std::string> expected = {
      "job " + job_id + " submitted ('fashion-server'",
      "job " + job_id + " QUEUED -> CALIBRATING",
      "job " + job_id + " CALIBRATING -> FAILED on cpu: calibration",
      "the model's forward failed at linear 'head.1'"};
  size_t at = 0;
  for (const std::string& line : expected) {
    at = logs.stdout_text.find(line, at);
    ASSERT_NE(at, std::string::npos) << "missing, or out of order: " << line << "\n" << logs.stdout_text;
  }
  // Only this job's lines: another job's and the audit lines stay out.
  EXPECT_EQ(logs.stdout_text.find("audit "), std::string::npos) << logs.stdout_text;
  const ProcessResult other = Client({"submit", "--config", WriteConfig(Config("server", 2, 0)), "--wait", "--json"});
  ASSERT_EQ(other.exit_code, 0) << other.stderr_text;
  EXPECT_EQ(Client({"logs", job_id}).stdout_text, logs.stdout_text);

  const ProcessResult unknown = Client({"logs", "job-0000000000000000"});
  EXPECT_EQ(unknown.exit_code, 3);
  EXPECT_NE(unknown.stderr_text.find("NOT_FOUND"), std::string::npos) << unknown.stderr_text;
}

// Uploaded models are untrusted: one whose forward raises on its inputs, one whose forward
// throws (shapes that do not fit), one that returns a feature map instead of logits and one
// whose weights yield NaN each fail their own job, saying which, and the server serves on.
TEST_F(ClientIntegrationTest, ModelsThatRaiseReturnTheWrongShapeOrYieldNanFailTheirJobsSayingWhich) {
  const std::vector<std::pair<std::string, std::string>> bad_models = {
      {"raises_on_values.pt", "a raise that depends on tensor values"},
      {"mismatched_head.pt",
       "the model's forward failed at linear 'head.1': mat1 and mat2 shapes cannot be multiplied (16x4 and 8x2)"},
      {"returns_feature_map.pt", "the model's output has shape [16, 4, 30, 30] for 16 images"},
      {"nan_weights.pt", "conv2d 'stem' produced NaN or Inf values"},
  };
  for (const auto& [model, reason] : bad_models) {
    json config = Config("server", 2, 0);
    config["model"]["path"] = (testing::TestModelsDir() / model).string();
    const ProcessResult run = Client({"submit", "--config", WriteConfig(config), "--wait", "--json"});
    EXPECT_EQ(run.exit_code, 4) << model << ": " << run.stderr_text;
    const json job = json::parse(run.stdout_text, nullptr, false);
    EXPECT_EQ(job.value("state", ""), "JOB_STATE_FAILED") << model << ": " << run.stdout_text;
    EXPECT_NE(job.value("error", "").find(reason), std::string::npos) << model << ": " << job.value("error", "");
  }
  EXPECT_EQ(Client({"health"}).exit_code, 0);
  const ProcessResult good = Client({"submit", "--config", WriteConfig(Config("server", 2, 0)), "--wait"});
  EXPECT_EQ(good.exit_code, 0) << good.stderr_text;
}

TEST_F(ClientIntegrationTest, CtrlCDuringWaitLeavesTheJobRunning) {
  const std::string log = (root_.path() / "client.log").string();
  testing::ChildProcess client({testing::ClientBinary(), "--server", server_->address(), "submit", "--config",
                                WriteConfig(Config("server", 400, 0)), "--wait"},
                               log);
  // Interrupt once the job is being followed (its progress lines have started).
  for (int i = 0; i < 200 && testing::ReadFileBytes(log).find("CALIBRATING") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  client.Signal(SIGINT);
  EXPECT_EQ(client.WaitFor(std::chrono::seconds(10)), 130);
  const std::string output = testing::ReadFileBytes(log);
  const size_t at = output.find("keeps running on the server. Follow it again with: ptq-client watch job-");
  ASSERT_NE(at, std::string::npos) << output;
  const std::string job_id = output.substr(output.find("job-", at + 60), 20);
  const ProcessResult status = Client({"status", job_id, "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.stderr_text;
  const std::string state = json::parse(status.stdout_text)["state"];
  EXPECT_TRUE(state == "JOB_STATE_CALIBRATING" || state == "JOB_STATE_EXPORTING" || state == "JOB_STATE_SUCCEEDED")
      << state;
}

// The same on the server's side: a folder of images under the data root calibrates; it cannot
// be evaluated on, having no labels.
TEST_F(ClientIntegrationTest, ServerSourceCalibratesOnAFolderOfUnlabelledImagesButNeedsLabelsToEvaluate) {
  const fs::path folder = root_.path() / "data" / "my-images";
  fs::create_directories(folder / "nested");
  for (int i = 0; i < 32; ++i) {
    fs::copy_file(testing::TestDataDir() / "texture_120x90.jpg",
                  folder / (i % 2 == 0 ? fs::path("nested") : fs::path(".")) / ("image" + std::to_string(i) + ".jpg"));
  }
  json config = Config("server", 2, 0);
  config["calibration"]["path"] = "my-images";
  const ProcessResult run = Client({"submit", "--config", WriteConfig(config), "--wait", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  const std::string job_id = json::parse(run.stdout_text)["job_id"];
  const ProcessResult report = Client({"report", job_id, "--json"});
  ASSERT_EQ(report.exit_code, 0) << report.stderr_text;
  EXPECT_EQ(json::parse(report.stdout_text)["provenance"]["calibration_images"], 32);

  config["evaluate"] = {{"path", "my-images"}};
  const ProcessResult evaluate = Client({"submit", "--config", WriteConfig(config, "evaluate.json")});
  EXPECT_EQ(evaluate.exit_code, 2);
  EXPECT_NE(evaluate.stderr_text.find("evaluate.path"), std::string::npos) << evaluate.stderr_text;
  EXPECT_NE(evaluate.stderr_text.find("has no val_list.txt"), std::string::npos) << evaluate.stderr_text;
}

// calibration.from_job: a second job takes the first one's calibration to keep a layer in float
// and run on qnnpack, reading no calibration data; what set the ranges cannot change.
TEST_F(ClientIntegrationTest, FromJobReusesACalibrationToChangeFloatLayersAndBackendWithoutData) {
  const ProcessResult first = Client({"submit", "--config", WriteConfig(Config("server", 3, 200)), "--wait", "--json"});
  ASSERT_EQ(first.exit_code, 0) << first.stderr_text;
  const std::string calibrated = json::parse(first.stdout_text)["job_id"];
  const ProcessResult first_report = Client({"report", calibrated, "--json"});
  ASSERT_EQ(first_report.exit_code, 0) << first_report.stderr_text;
  const std::string layer = json::parse(first_report.stdout_text)["layer_sqnr"][2]["module_path"];
  EXPECT_EQ(json::parse(first_report.stdout_text)["provenance"]["model_sha256"],
            *Sha256OfFile((testing::ReferenceModelsDir() / "mobilenet_v3_small.pt").string()));

  const json reuse = {
      {"name", "reuse"},
      {"model", {{"path", (testing::ReferenceModelsDir() / "mobilenet_v3_small.pt").string()}}},
      {"calibration", {{"from_job", calibrated}}},
      {"ptq", {{"skip_layers", {layer}}, {"backend", "qnnpack"}}},
      {"evaluate", {{"path", "fashion-mnist/t10k"}, {"limit", 200}}}};
  const ProcessResult second = Client({"submit", "--config", WriteConfig(reuse, "reuse.json"), "--wait", "--json"});
  ASSERT_EQ(second.exit_code, 0) << second.stderr_text;
  const json job = json::parse(second.stdout_text);
  EXPECT_EQ(job["state"], "JOB_STATE_SUCCEEDED");
  EXPECT_EQ(job["config"]["ptq"]["activation_quantizer"], "HistQuantizer") << "taken from the first job";
  EXPECT_EQ(job["config"]["ptq"]["backend"], "qnnpack");
  for (const json& variant : job["metrics"]["variants"]) {
    EXPECT_GT(variant["top1"].get<double>(), 80) << variant;
  }
  const ProcessResult report = Client({"report", job["job_id"], "--json"});
  ASSERT_EQ(report.exit_code, 0) << report.stderr_text;
  const json made = json::parse(report.stdout_text);
  EXPECT_EQ(made["provenance"]["calibration_from_job"], calibrated);
  EXPECT_EQ(made["provenance"]["calibration_images"], 0) << "no calibration data was read";
  for (const json& row : made["layer_sqnr"]) EXPECT_NE(row["module_path"], layer) << "kept in float";
  EXPECT_NE(Client({"report", job["job_id"]}).stdout_text.find("calibration reused from job " + calibrated),
            std::string::npos);

  json refit = reuse;
  refit["ptq"]["fuse"] = false;
  const ProcessResult refused = Client({"submit", "--config", WriteConfig(refit, "refit.json")});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.stderr_text.find("ptq.fuse differs from job " + calibrated), std::string::npos)
      << refused.stderr_text;
  json unknown = reuse;
  unknown["calibration"]["from_job"] = "job-0000000000000000";
  const ProcessResult missing = Client({"submit", "--config", WriteConfig(unknown, "unknown.json")});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.stderr_text.find("calibration.from_job: "), std::string::npos) << missing.stderr_text;
  EXPECT_NE(missing.stderr_text.find("NOT_FOUND"), std::string::npos) << missing.stderr_text;
  const ProcessResult long_job = Client({"submit", "--config", WriteConfig(Config("server", 400, 0), "long.json"),
                                         "--json"});
  ASSERT_EQ(long_job.exit_code, 0) << long_job.stderr_text;
  const std::string cancelled = json::parse(long_job.stdout_text)["job_id"];
  ASSERT_EQ(Client({"cancel", cancelled}).exit_code, 0);
  WaitForEnd(*server_, cancelled);
  unknown["calibration"]["from_job"] = cancelled;
  const ProcessResult unfinished = Client({"submit", "--config", WriteConfig(unknown, "unfinished.json")});
  EXPECT_EQ(unfinished.exit_code, 2);
  EXPECT_NE(unfinished.stderr_text.find("is CANCELLED; only a SUCCEEDED job's calibration can be reused"),
            std::string::npos)
      << unfinished.stderr_text;
}

// Ctrl-C while client-side data streams: the stream stops, the job (whose data can no longer
// be complete) is cancelled rather than left waiting, and the client says so and exits 130.
TEST_F(ClientIntegrationTest, CtrlCWhileStreamingCancelsTheStreamAndTheJobAndSaysSo) {
  // 200 batches of one 2000 x 2000 PPM image (12 MB each, hard links to one file): the stream
  // lasts seconds, so the interrupt comes while it is on.
  const fs::path folder = root_.path() / "large-images";
  fs::create_directories(folder);
  {
    std::ofstream image(folder / "image000.ppm", std::ios::binary);
    image << "P6\n2000 2000\n255\n" << std::string(size_t{2000} * 2000 * 3, '\x7f');
  }
  for (int i = 1; i < 200; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "image%03d.ppm", i);
    fs::create_hard_link(folder / "image000.ppm", folder / name);
  }
  json config = Config("client", 200, 0);
  config["calibration"]["path"] = folder.string();
  config["calibration"]["quant_batch_size"] = 1;
  const std::string log = (root_.path() / "client.log").string();
  testing::ChildProcess client(
      {testing::ClientBinary(), "--server", server_->address(), "submit", "--config", WriteConfig(config)}, log);
  for (int i = 0; i < 400 && testing::ReadFileBytes(log).find("submitted job-") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  client.Signal(SIGINT);
  EXPECT_EQ(client.WaitFor(std::chrono::seconds(30)), 130);
  const std::string output = testing::ReadFileBytes(log);
  const size_t at = output.find("ptq-client: submit: interrupted while streaming calibration data (");
  ASSERT_NE(at, std::string::npos) << output;
  EXPECT_NE(output.find(" of 200 batches sent); job job-", at), std::string::npos) << output;
  EXPECT_NE(output.find("is CANCELLED, since its calibration data is incomplete", at), std::string::npos) << output;
  const std::string job_id = output.substr(output.find("job-", at), 20);
  const ProcessResult status = Client({"status", job_id, "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.stderr_text;
  EXPECT_EQ(json::parse(status.stdout_text)["state"], "JOB_STATE_CANCELLED");
  EXPECT_EQ(Client({"health"}).exit_code, 0);
}

}  // namespace
}  // namespace ptq
