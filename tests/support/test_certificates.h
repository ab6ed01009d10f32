#ifndef PTQ_TESTS_SUPPORT_TEST_CERTIFICATES_H_
#define PTQ_TESTS_SUPPORT_TEST_CERTIFICATES_H_

#include <filesystem>
#include <string>
#include <vector>

namespace ptq::testing {

// PEM certificate authorities and certificates for TLS tests, made in `dir` by the openssl
// command line (P-256 keys, valid two days). NAME.crt and NAME.key for each.
class TestCertificates {
 public:
  explicit TestCertificates(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // A self-signed CA with subject CN=NAME. Fails the current test when openssl does.
  void MakeCa(const std::string& name) const;
  // A certificate with subject CN=NAME that `ca` signed, with `extension` (an openssl
  // extension line, e.g. "subjectAltName=IP:127.0.0.1" or "extendedKeyUsage=clientAuth").
  void MakeCertificate(const std::string& name, const std::string& ca, const std::string& extension) const;
  // The path of a file in the folder, e.g. File("ca.crt").
  std::string File(const std::string& name) const { return (dir_ / name).string(); }

 private:
  void OpenSsl(std::vector<std::string> args) const;

  std::filesystem::path dir_;
};

}  // namespace ptq::testing

#endif  // PTQ_TESTS_SUPPORT_TEST_CERTIFICATES_H_
