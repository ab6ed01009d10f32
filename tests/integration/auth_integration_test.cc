// Identities, roles and tenants end to end: the real ptq-server with --auth-token-file (and
// mutual TLS) and the real ptq-client with --token / PTQ_TOKEN or a client certificate.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"
#include "ptq/common/sha256.h"
#include "server_process.h"
#include "subprocess.h"
#include "test_certificates.h"
#include "test_env.h"

namespace ptq::testing {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kTeamASubmitter[] = "team-a-submitter-0000000001";
constexpr char kTeamAReader[] = "team-a-reader-00000000000001";
constexpr char kTeamBSubmitter[] = "team-b-submitter-0000000001";
constexpr char kAdmin[] = "ops-admin-00000000000000001";

// The log's name for a token: the start of its digest.
std::string LoggedName(const std::string& token) { return "token sha256:" + Sha256Hex(token).substr(0, 8); }

class AuthIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CopyFashionMnistTestSet(dir_.path() / "data" / "fashion-mnist");
    std::ofstream(TokenFile()) << "# token tenant role\n"
                               << kTeamASubmitter << " team-a submitter\n"
                               << kTeamAReader << " team-a reader\n"
                               << kTeamBSubmitter << " team-b submitter\n"
                               << kAdmin << " ops admin\n"
                               << "subject=CN=team-b-bot team-b reader\n";
    fs::permissions(TokenFile(), fs::perms::owner_read | fs::perms::owner_write);
  }

  std::string TokenFile() const { return (dir_.path() / "tokens").string(); }

  // A stream job on the bundled MobileNetV3-small: the client uploads the model, streams two
  // batches of local Fashion-MNIST images, and the job evaluates 100 server-side images.
  std::string StreamJobConfig() const {
    const json config = {
        {"name", "fashion-stream"},
        {"model", {{"path", (ReferenceModelsDir() / "mobilenet_v3_small.pt").string()}}},
        {"input", {{"size", 32}, {"resize_short", 0}, {"mean", {72.94, 72.94, 72.94}}, {"std", {90.02, 90.02, 90.02}}}},
        {"calibration",
         {{"source", "client"}, {"path", (FashionMnistDir() / "t10k").string()}, {"quant_batch_num", 2},
          {"quant_batch_size", 16}}},
        {"evaluate", {{"path", "fashion-mnist/t10k"}, {"limit", 100}}},
    };
    const fs::path path = dir_.path() / "stream.json";
    std::ofstream(path) << config.dump(2);
    return path.string();
  }

  // A server-source job long enough to cancel while it runs.
  std::string LongJobConfig() const {
    const json config = {
        {"name", "fashion-long"},
        {"model", {{"path", (ReferenceModelsDir() / "mobilenet_v3_small.pt").string()}}},
        {"input", {{"size", 32}, {"resize_short", 0}}},
        {"calibration",
         {{"source", "server"}, {"path", "fashion-mnist/t10k"}, {"quant_batch_num", 500}, {"quant_batch_size", 16}}},
    };
    const fs::path path = dir_.path() / "long.json";
    std::ofstream(path) << config.dump(2);
    return path.string();
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

// The whole path for two tenants under mutual TLS with tokens: each uploads, submits, streams,
// watches, downloads, evaluates and cancels its own jobs, and sees nothing of the other's.
class TwoTenantsTest : public AuthIntegrationTest {
 protected:
  void SetUp() override {
    AuthIntegrationTest::SetUp();
    certificates_.MakeCa("ca");
    certificates_.MakeCertificate("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost");
    for (const char* client : {"team-a-laptop", "team-b-laptop", "team-b-bot", "stranger"}) {
      certificates_.MakeCertificate(client, "ca", "extendedKeyUsage=clientAuth");
    }
    server_ = std::make_unique<ServerProcess>(
        dir_.path() / "state",
        std::vector<std::string>{"--tls-cert", certificates_.File("server.crt"), "--tls-key",
                                 certificates_.File("server.key"), "--tls-client-ca", certificates_.File("ca.crt"),
                                 "--auth-token-file", TokenFile(), "--data-root", (dir_.path() / "data").string(),
                                 "--threads", "2"});
    ASSERT_FALSE(server_->address().empty());
  }

  // ptq-client with the certificate `certificate` and, when not empty, `token`.
  ProcessResult As(const std::string& certificate, const std::string& token, std::vector<std::string> args,
                   const std::vector<std::string>& environment = {}) const {
    std::vector<std::string> argv = {ClientBinary(),  "--server",   server_->address(),
                                     "--timeout",     "60",         "--tls-ca",
                                     certificates_.File("ca.crt"), "--tls-cert", certificates_.File(certificate + ".crt"),
                                     "--tls-key",     certificates_.File(certificate + ".key")};
    if (!token.empty()) argv.insert(argv.end(), {"--token", token});
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv, std::chrono::seconds(120), environment);
  }
  ProcessResult AsTeamA(const std::vector<std::string>& args) const { return As("team-a-laptop", kTeamASubmitter, args); }
  ProcessResult AsTeamB(const std::vector<std::string>& args) const { return As("team-b-laptop", kTeamBSubmitter, args); }

  // Submits the stream job with --wait as one tenant; returns its id.
  std::string RunStreamJob(const std::string& certificate, const std::string& token) {
    const ProcessResult run =
        As(certificate, token, {"submit", "--config", StreamJobConfig(), "--wait", "--json", "--idempotency-key", "deploy-1"});
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    const json job = json::parse(run.stdout_text, nullptr, false);
    EXPECT_EQ(job.value("state", ""), "JOB_STATE_SUCCEEDED") << run.stdout_text;
    return job.value("job_id", "");
  }

  static void ExpectRefused(const ProcessResult& run, const std::string& code, const std::string& what) {
    EXPECT_EQ(run.exit_code, 3) << what << ": " << run.stdout_text << run.stderr_text;
    EXPECT_NE(run.stderr_text.find(code), std::string::npos) << what << ": " << run.stderr_text;
  }

  TestCertificates certificates_{dir_.path()};
};

TEST_F(TwoTenantsTest, EachTenantSeesUsesAndCancelsOnlyItsOwnJobs) {
  // The same model bytes, config and idempotency key from both tenants: two jobs, one each
  // (a key replayed by another tenant used to return the first tenant's job).
  const std::string job_a = RunStreamJob("team-a-laptop", kTeamASubmitter);
  const std::string job_b = RunStreamJob("team-b-laptop", kTeamBSubmitter);
  ASSERT_FALSE(job_a.empty());
  ASSERT_FALSE(job_b.empty());
  EXPECT_NE(job_a, job_b);

  // Reads: own job yes; the other's is NOT_FOUND in the words used for an unknown id.
  EXPECT_EQ(AsTeamA({"status", job_a}).exit_code, 0);
  const ProcessResult foreign = AsTeamA({"status", job_b});
  ExpectRefused(foreign, "NOT_FOUND", "status of the other tenant's job");
  EXPECT_NE(foreign.stderr_text.find("job '" + job_b + "' does not exist"), std::string::npos) << foreign.stderr_text;
  ExpectRefused(AsTeamA({"watch", job_b}), "NOT_FOUND", "watch");
  ExpectRefused(AsTeamA({"report", job_b}), "NOT_FOUND", "report");
  ExpectRefused(AsTeamA({"logs", job_b}), "NOT_FOUND", "logs");
  EXPECT_EQ(AsTeamB({"logs", job_b}).exit_code, 0);
  const ProcessResult listed = AsTeamA({"list", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.stderr_text;
  const json jobs_a = json::parse(listed.stdout_text)["jobs"];
  ASSERT_EQ(jobs_a.size(), 1u) << listed.stdout_text;
  EXPECT_EQ(jobs_a[0]["job_id"], job_a);
  EXPECT_EQ(jobs_a[0]["tenant"], "team-a");

  // Download and evaluate: own results only.
  const ProcessResult download = AsTeamA({"download", job_a, "--out", (dir_.path() / "a").string()});
  EXPECT_EQ(download.exit_code, 0) << download.stderr_text;
  EXPECT_TRUE(fs::exists(dir_.path() / "a" / "int8_infer" / "model.pt"));
  ExpectRefused(AsTeamA({"download", job_b, "--out", (dir_.path() / "b").string()}), "NOT_FOUND", "download");
  EXPECT_FALSE(fs::exists(dir_.path() / "b" / "int8_infer" / "model.pt"));
  const ProcessResult evaluated = AsTeamB({"evaluate", job_b, "--data", "fashion-mnist/t10k", "--limit", "50"});
  EXPECT_EQ(evaluated.exit_code, 0) << evaluated.stderr_text;
  ExpectRefused(AsTeamB({"evaluate", job_a, "--data", "fashion-mnist/t10k", "--limit", "50"}), "NOT_FOUND",
                "evaluate");

  // Cancel: the other tenant gets NOT_FOUND, a reader PERMISSION_DENIED, the owner cancels.
  const ProcessResult submitted = AsTeamA({"submit", "--config", LongJobConfig(), "--json"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.stderr_text;
  const std::string long_job = json::parse(submitted.stdout_text)["job_id"];
  ExpectRefused(AsTeamB({"cancel", long_job}), "NOT_FOUND", "cancel by the other tenant");
  ExpectRefused(As("team-a-laptop", kTeamAReader, {"cancel", long_job}), "PERMISSION_DENIED", "cancel by a reader");
  EXPECT_EQ(AsTeamA({"cancel", long_job}).exit_code, 0);
  EXPECT_EQ(json::parse(AsTeamA({"watch", long_job, "--json"}).stdout_text)["state"], "JOB_STATE_CANCELLED");
  EXPECT_EQ(json::parse(AsTeamB({"status", job_b, "--json"}).stdout_text)["state"], "JOB_STATE_SUCCEEDED");
  // Deleting and the model list: the other tenant's job and model do not exist for it.
  ExpectRefused(AsTeamB({"delete", long_job}), "NOT_FOUND", "delete by the other tenant");
  ExpectRefused(As("team-a-laptop", kTeamAReader, {"delete", long_job}), "PERMISSION_DENIED", "delete by a reader");
  const ProcessResult models_b = AsTeamB({"models", "--json"});
  ASSERT_EQ(models_b.exit_code, 0) << models_b.stderr_text;
  ASSERT_FALSE(json::parse(models_b.stdout_text)["models"].empty());
  for (const json& model : json::parse(models_b.stdout_text)["models"]) {
    ExpectRefused(AsTeamA({"delete-model", model["model_id"]}), "NOT_FOUND", "delete-model by the other tenant");
  }

  // A reader reads and cannot upload; PTQ_TOKEN works as --token does.
  const ProcessResult reader = As("team-a-laptop", "", {"list", "--json"}, {std::string("PTQ_TOKEN=") + kTeamAReader});
  ASSERT_EQ(reader.exit_code, 0) << reader.stderr_text;
  EXPECT_EQ(json::parse(reader.stdout_text)["jobs"].size(), 2u);
  ExpectRefused(As("team-a-laptop", kTeamAReader, {"upload", (ReferenceModelsDir() / "mobilenet_v1.pt").string()}),
                "PERMISSION_DENIED", "upload by a reader");

  // A certificate subject the token file names is an identity of its own (team-b, reader).
  const ProcessResult bot = As("team-b-bot", "", {"list", "--json"});
  ASSERT_EQ(bot.exit_code, 0) << bot.stderr_text;
  const json jobs_b = json::parse(bot.stdout_text)["jobs"];
  ASSERT_EQ(jobs_b.size(), 1u);
  EXPECT_EQ(jobs_b[0]["job_id"], job_b);
  ExpectRefused(As("team-b-bot", "", {"cancel", job_b}), "PERMISSION_DENIED", "cancel by the reader bot");

  // The admin sees every tenant's jobs.
  const ProcessResult admin = As("team-a-laptop", kAdmin, {"list", "--json"});
  ASSERT_EQ(admin.exit_code, 0) << admin.stderr_text;
  EXPECT_EQ(json::parse(admin.stdout_text)["jobs"].size(), 3u);

  // No identity, or a wrong token: UNAUTHENTICATED. Health stays open to all.
  ExpectRefused(As("stranger", "", {"list"}), "UNAUTHENTICATED", "a certificate without an identity");
  ExpectRefused(As("team-a-laptop", "team-a-submitter-0000000002", {"list"}), "UNAUTHENTICATED", "a wrong token");
  EXPECT_EQ(As("stranger", "", {"health"}).exit_code, 0);

  // Audit: one line per mutating call and per refused call, naming the token by its digest only.
  const std::string log = server_->log();
  EXPECT_NE(log.find("audit method=SubmitQuantJob who=\"" + LoggedName(kTeamASubmitter) +
                     "\" tenant=team-a role=submitter job=" + job_a),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("audit method=CancelJob who=\"" + LoggedName(kTeamBSubmitter) +
                     "\" tenant=team-b role=submitter job=" + long_job),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("audit method=UploadModel who=\"" + LoggedName(kTeamAReader) + "\" tenant=team-a role=reader"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("audit method=ListJobs who=unauthenticated"), std::string::npos) << log;
  EXPECT_NE(log.find("audit method=StreamCalibrationBatch who=\"" + LoggedName(kTeamBSubmitter) +
                     "\" tenant=team-b role=submitter job=" + job_b),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("audit method=ListJobs who=\"" + LoggedName(kAdmin)), std::string::npos)
      << "reads the caller may make are not audited";
  for (const char* token : {kTeamASubmitter, kTeamAReader, kTeamBSubmitter, kAdmin}) {
    EXPECT_EQ(log.find(token), std::string::npos) << "the log holds a token";
  }
}

TEST_F(AuthIntegrationTest, SighupReloadsTheTokenFileAndKeepsTheOldOneWhenTheNewOneIsBroken) {
  server_ = std::make_unique<ServerProcess>(dir_.path() / "state",
                                            std::vector<std::string>{"--auth-token-file", TokenFile()});
  ASSERT_FALSE(server_->address().empty());
  const auto list_with = [&](const std::string& token) { return server_->Client({"--token", token, "list"}); };
  ASSERT_EQ(list_with(kTeamASubmitter).exit_code, 0);

  // Rotation: the new token in, the old one out.
  const std::string rotated = "team-a-submitter-0000000002";
  std::ofstream(TokenFile()) << rotated << " team-a submitter\n";
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  bool reloaded = false;
  for (int i = 0; i < 100 && !reloaded; ++i) {
    reloaded = list_with(rotated).exit_code == 0;
    if (!reloaded) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(reloaded) << server_->log();
  const ProcessResult old_token = list_with(kTeamASubmitter);
  EXPECT_EQ(old_token.exit_code, 3);
  EXPECT_NE(old_token.stderr_text.find("UNAUTHENTICATED"), std::string::npos) << old_token.stderr_text;

  // A broken file: the server keeps serving with the identities it had, and says why.
  std::ofstream(TokenFile()) << rotated << " team-a owner\n";
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  bool logged = false;
  for (int i = 0; i < 100 && !logged; ++i) {
    logged = server_->log().find("SIGHUP: kept the identities already loaded") != std::string::npos;
    if (!logged) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(logged) << server_->log();
  EXPECT_NE(server_->log().find("line 1: role 'owner' is not reader, submitter or admin"), std::string::npos);
  EXPECT_EQ(list_with(rotated).exit_code, 0);
  EXPECT_TRUE(server_->running());

  // At start a broken file stops the server, naming the line.
  const ProcessResult refused = RunProcess({ServerBinary(), "--insecure", "--listen", "127.0.0.1:0", "--state-dir",
                                            (dir_.path() / "other-state").string(), "--auth-token-file", TokenFile()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE((refused.stdout_text + refused.stderr_text).find("line 1: role 'owner'"), std::string::npos)
      << refused.stdout_text << refused.stderr_text;
}

}  // namespace
}  // namespace ptq::testing
