#include "server_process.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include "test_env.h"

namespace ptq::testing {
namespace fs = std::filesystem;

ServerProcess::ServerProcess(const fs::path& state_dir, std::vector<std::string> extra_flags, const std::string& name)
    : state_dir_(state_dir),
      extra_flags_(std::move(extra_flags)),
      log_path_(state_dir.parent_path() / ((name.empty() ? state_dir.filename().string() : name) + "-server.log")),
      ready_file_(state_dir.parent_path() / ((name.empty() ? state_dir.filename().string() : name) + "-ready")) {
  Start();
}

ServerProcess::~ServerProcess() = default;

void ServerProcess::Start(const std::string& listen_address) {
  fs::remove(ready_file_);
  std::vector<std::string> argv = {ServerBinary(),  "--listen",     listen_address,
                                   "--state-dir",   state_dir_.string(), "--ready-file",
                                   ready_file_.string()};
  // Plaintext on loopback unless the test brings its own TLS flags.
  if (std::find(extra_flags_.begin(), extra_flags_.end(), "--tls-cert") == extra_flags_.end()) {
    argv.push_back("--insecure");
  }
  argv.insert(argv.end(), extra_flags_.begin(), extra_flags_.end());
  child_ = std::make_unique<ChildProcess>(argv, log_path_.string());
  address_.clear();
  metrics_address_.clear();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline && child_->running()) {
    std::ifstream ready(ready_file_);
    if (ready >> address_) {
      // The optional second line: "metrics HOST:PORT".
      std::string key;
      if (ready >> key >> metrics_address_ && key != "metrics") metrics_address_.clear();
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "ptq-server did not become ready; its log:\n" << log();
}

std::string ServerProcess::log() const {
  std::ifstream in(log_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::optional<int> ServerProcess::Stop(std::chrono::milliseconds timeout) {
  child_->Signal(SIGTERM);
  return child_->WaitFor(timeout);
}

void ServerProcess::Kill() {
  child_->Signal(SIGKILL);
  child_->WaitFor(std::chrono::seconds(10));
}

void ServerProcess::Restart() {
  Stop();
  Start();
}

void ServerProcess::CrashAndRestartOnTheSamePort() {
  const std::string address = address_;
  Kill();
  Start(address);
}

ProcessResult ServerProcess::Client(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {ClientBinary(), "--server", address_};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv);
}

}  // namespace ptq::testing
