// TLS and mutual TLS between the real ptq-server and ptq-client, with certificates made by the
// openssl command line for each test.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "server_process.h"
#include "subprocess.h"
#include "test_certificates.h"
#include "test_env.h"

namespace ptq::testing {
namespace {
namespace fs = std::filesystem;

class TlsIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certificates_.MakeCa("ca");
    certificates_.MakeCa("other-ca");
    certificates_.MakeCertificate("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost");
    certificates_.MakeCertificate("client", "ca", "extendedKeyUsage=clientAuth");
    certificates_.MakeCertificate("stranger", "other-ca", "extendedKeyUsage=clientAuth");
  }

  std::string File(const std::string& name) const { return certificates_.File(name); }

  void StartServer(std::vector<std::string> flags) {
    flags.insert(flags.end(), {"--tls-cert", File("server.crt"), "--tls-key", File("server.key")});
    server_ = std::make_unique<ServerProcess>(dir_.path() / "state", flags);
    ASSERT_FALSE(server_->address().empty());
  }

  // ptq-client against the server with `tls_flags`, running `args`.
  ProcessResult Client(const std::vector<std::string>& tls_flags, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {ClientBinary(), "--server", server_->address(), "--timeout", "10"};
    argv.insert(argv.end(), tls_flags.begin(), tls_flags.end());
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv);
  }

  TempDir dir_;
  TestCertificates certificates_{dir_.path()};
  std::unique_ptr<ServerProcess> server_;
};

// Regression: the server spoke plaintext only; a TLS handshake failed ("wrong version number").
TEST_F(TlsIntegrationTest, TlsServerAnswersClientsThatTrustItsCaAndNoPlaintext) {
  StartServer({});
  const ProcessResult trusted = Client({"--tls-ca", File("ca.crt")}, {"health"});
  EXPECT_EQ(trusted.exit_code, 0) << trusted.stderr_text;
  EXPECT_NE(trusted.stdout_text.find("SERVING"), std::string::npos) << trusted.stdout_text;

  const ProcessResult plaintext = Client({}, {"health"});
  EXPECT_EQ(plaintext.exit_code, 1) << plaintext.stdout_text;
  const ProcessResult other_ca = Client({"--tls-ca", File("other-ca.crt")}, {"health"});
  EXPECT_EQ(other_ca.exit_code, 1) << "a server certificate the client's CA did not sign";
}

TEST_F(TlsIntegrationTest, MutualTlsServesOnlyClientCertificatesItsCaSigned) {
  StartServer({"--tls-client-ca", File("ca.crt")});
  const std::vector<std::string> trust = {"--tls-ca", File("ca.crt")};
  EXPECT_EQ(Client(trust, {"health"}).exit_code, 1) << "no client certificate";
  std::vector<std::string> stranger = trust;
  stranger.insert(stranger.end(), {"--tls-cert", File("stranger.crt"), "--tls-key", File("stranger.key")});
  EXPECT_EQ(Client(stranger, {"health"}).exit_code, 1) << "a client certificate another CA signed";

  std::vector<std::string> client = trust;
  client.insert(client.end(), {"--tls-cert", File("client.crt"), "--tls-key", File("client.key")});
  const ProcessResult uploaded = Client(client, {"upload", (ReferenceModelsDir() / "mobilenet_v1.pt").string()});
  EXPECT_EQ(uploaded.exit_code, 0) << uploaded.stderr_text;
  EXPECT_NE(uploaded.stdout_text.find("status:     uploaded"), std::string::npos) << uploaded.stdout_text;
}

TEST_F(TlsIntegrationTest, PlaintextOnlyWhenAskedForAndFlagsThatDoNotFitAreRefused) {
  const std::vector<std::string> start = {ServerBinary(), "--listen", "127.0.0.1:0", "--state-dir",
                                          File("state")};
  const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
      {{}, "give --tls-cert and --tls-key (TLS), or --insecure for plaintext"},
      {{"--insecure", "--tls-cert", File("server.crt"), "--tls-key", File("server.key")}, "exclude each other"},
      {{"--tls-cert", File("server.crt")}, "--tls-cert and --tls-key go together"},
      {{"--tls-cert", File("server.crt"), "--tls-key", File("missing.key")}, "--tls-key: cannot read"},
      {{"--tls-cert", File("server.ext"), "--tls-key", File("server.key")}, "holds no PEM block"}};
  for (const auto& [flags, message] : refused) {
    std::vector<std::string> argv = start;
    argv.insert(argv.end(), flags.begin(), flags.end());
    const ProcessResult run = RunProcess(argv);
    EXPECT_EQ(run.exit_code, 1) << message;
    EXPECT_NE((run.stdout_text + run.stderr_text).find(message), std::string::npos)
        << run.stdout_text << run.stderr_text;
  }
  const ProcessResult client = RunProcess({ClientBinary(), "--tls-cert", File("client.crt"), "health"});
  EXPECT_EQ(client.exit_code, 2) << "a certificate without its key is a usage error";
  EXPECT_NE(client.stderr_text.find("--tls-cert and --tls-key go together"), std::string::npos) << client.stderr_text;
}

}  // namespace
}  // namespace ptq::testing
