#include "test_certificates.h"

#include <gtest/gtest.h>

#include <fstream>
#include <vector>

#include "subprocess.h"

namespace ptq::testing {

void TestCertificates::OpenSsl(std::vector<std::string> args) const {
  args.insert(args.begin(), "/usr/bin/openssl");
  const ProcessResult made = RunProcess(args);
  ASSERT_EQ(made.exit_code, 0) << made.stderr_text;
}

void TestCertificates::MakeCa(const std::string& name) const {
  OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
           File(name + ".key"), "-out", File(name + ".crt"), "-days", "2", "-subj", "/CN=" + name});
}

void TestCertificates::MakeCertificate(const std::string& name, const std::string& ca,
                                       const std::string& extension) const {
  std::ofstream(File(name + ".ext")) << extension << "\n";
  OpenSsl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
           File(name + ".key"), "-out", File(name + ".csr"), "-subj", "/CN=" + name});
  OpenSsl({"x509", "-req", "-in", File(name + ".csr"), "-CA", File(ca + ".crt"), "-CAkey", File(ca + ".key"),
           "-CAcreateserial", "-out", File(name + ".crt"), "-days", "2", "-extfile", File(name + ".ext")});
}

}  // namespace ptq::testing
