#include "test_postgres.h"

#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include "subprocess.h"

namespace ptq::testing {
namespace fs = std::filesystem;
namespace {

constexpr char kSuperuser[] = "ptq";
constexpr char kPort[] = "5432";  // names the socket file only: the server opens no TCP port

// Debian's newest installed server binaries (/usr/lib/postgresql/VERSION/bin), or "".
std::string ServerBinDir() {
  std::string newest;
  std::error_code error;
  for (const auto& version : fs::directory_iterator("/usr/lib/postgresql", error)) {
    const fs::path bin = version.path() / "bin";
    if (fs::exists(bin / "initdb") && bin.string() > newest) newest = bin.string();
  }
  return newest;
}

}  // namespace

TestPostgres::TestPostgres() : bin_dir_(ServerBinDir()), as_nobody_(geteuid() == 0) {
  if (bin_dir_.empty()) {
    ADD_FAILURE() << "no PostgreSQL server under /usr/lib/postgresql: deploy/install-deps.sh installs Debian's "
                     "postgresql";
    return;
  }
  if (as_nobody_) {
    const passwd* nobody = getpwnam("nobody");
    if (nobody == nullptr || chown(dir_.path().c_str(), nobody->pw_uid, nobody->pw_gid) != 0) {
      ADD_FAILURE() << "cannot give " << dir_.path() << " to nobody";
      return;
    }
  }
  const std::string data = (dir_.path() / "data").string();
  if (!Run("initdb", {"-D", data, "-U", kSuperuser, "--auth=trust", "-E", "UTF8", "--no-sync"})) return;
  // pg_ctl starts the server through a shell: the empty listen_addresses is quoted for it.
  const std::string options = "-k " + dir_.path().string() + " -p " + kPort +
                              " -c listen_addresses='' -c dynamic_shared_memory_type=mmap -c fsync=off";
  running_ = Run("pg_ctl", {"-D", data, "-l", (dir_.path() / "server.log").string(), "-o", options, "-w", "start"});
}

TestPostgres::~TestPostgres() {
  if (running_) Run("pg_ctl", {"-D", (dir_.path() / "data").string(), "-m", "immediate", "-w", "stop"});
}

bool TestPostgres::Run(const std::string& binary, std::vector<std::string> args) {
  args.insert(args.begin(), bin_dir_ + "/" + binary);
  if (as_nobody_) args.insert(args.begin(), {"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"});
  const ProcessResult run = RunProcess(args);
  if (run.exit_code == 0) return true;
  ADD_FAILURE() << binary << " failed (" << run.exit_code << "): " << run.stdout_text << run.stderr_text
                << ReadFileBytes(dir_.path() / "server.log");
  return false;
}

std::string TestPostgres::Url(const std::string& name, const std::string& password) const {
  const std::string credentials = password.empty() ? kSuperuser : std::string(kSuperuser) + ":" + password;
  return "postgresql://" + credentials + "@/" + name + "?host=" + dir_.path().string() + "&port=" + kPort;
}

std::string TestPostgres::NewDatabase() {
  const std::string name = "test_" + std::to_string(++databases_);
  const ProcessResult made = RunProcess(
      {bin_dir_ + "/createdb", "-h", dir_.path().string(), "-p", kPort, "-U", kSuperuser, name});
  EXPECT_EQ(made.exit_code, 0) << made.stderr_text;
  return Url(name);
}

}  // namespace ptq::testing
