#ifndef PTQ_TESTS_SUPPORT_TEST_POSTGRES_H_
#define PTQ_TESTS_SUPPORT_TEST_POSTGRES_H_

#include <string>

#include "test_env.h"

namespace ptq::testing {

// A PostgreSQL server of a test's own: a cluster initdb makes in a temporary folder, serving
// only on a unix socket there (no TCP port), with `trust` authentication for its superuser
// `ptq`; stopped (immediately) and removed by the destructor. initdb refuses to run as root,
// so under root both run as `nobody`. Fails the current test when Debian's postgresql
// (installed by deploy/install-deps.sh) is missing or the server does not start.
class TestPostgres {
 public:
  TestPostgres();
  ~TestPostgres();
  TestPostgres(const TestPostgres&) = delete;
  TestPostgres& operator=(const TestPostgres&) = delete;

  bool running() const { return running_; }
  // Makes a new empty database and returns its URL ("postgresql:///NAME?host=...").
  std::string NewDatabase();
  // The URL of database `name` on this server, as `user` (with `password`, which trust
  // authentication ignores, when given).
  std::string Url(const std::string& name, const std::string& password = "") const;

 private:
  // `args` run with the server's binaries, as the cluster's owner; false (and a test failure
  // with the output) when the command fails.
  bool Run(const std::string& binary, std::vector<std::string> args);

  TempDir dir_;
  std::string bin_dir_;
  bool as_nobody_ = false;
  bool running_ = false;
  int databases_ = 0;
};

}  // namespace ptq::testing

#endif  // PTQ_TESTS_SUPPORT_TEST_POSTGRES_H_
