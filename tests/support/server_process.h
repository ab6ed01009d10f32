#ifndef PTQ_TESTS_SUPPORT_SERVER_PROCESS_H_
#define PTQ_TESTS_SUPPORT_SERVER_PROCESS_H_

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "subprocess.h"

namespace ptq::testing {

// A real ptq-server process on a free loopback port, with its own state directory (kept across
// Restart so durability can be tested).
class ServerProcess {
 public:
  // Starts the server with `extra_flags` and waits until it serves. Fails the current test
  // (ADD_FAILURE) and leaves address() empty when it does not come up. Its log and ready file
  // are named after `name` (the state directory's name when empty) beside the state directory,
  // so that servers sharing one need names of their own.
  ServerProcess(const std::filesystem::path& state_dir, std::vector<std::string> extra_flags = {},
                const std::string& name = "");
  ~ServerProcess();  // SIGKILLs the server if it still runs

  const std::string& address() const { return address_; }
  // host:port of the metrics endpoint when the flags asked for one (--metrics-listen), else "".
  const std::string& metrics_address() const { return metrics_address_; }
  const std::filesystem::path& state_dir() const { return state_dir_; }
  std::string log() const;  // everything the server printed so far
  bool running() { return child_ != nullptr && child_->running(); }
  pid_t pid() const { return child_ != nullptr ? child_->pid() : -1; }

  // SIGTERM, then the exit code (nullopt if it did not exit within `timeout`).
  std::optional<int> Stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // SIGKILL, as a crash would, and wait for the process to go.
  void Kill();
  // Stop and start again on a new port with the same state directory and flags.
  void Restart();
  // SIGKILL, as a crash would, and start again on the same address (clients reconnect).
  void CrashAndRestartOnTheSamePort();

  // Runs ptq-client against this server: `--server ADDRESS` followed by `args`.
  ProcessResult Client(const std::vector<std::string>& args) const;

 private:
  void Start(const std::string& listen_address = "127.0.0.1:0");

  std::filesystem::path state_dir_;
  std::vector<std::string> extra_flags_;
  std::filesystem::path log_path_;
  std::filesystem::path ready_file_;
  std::unique_ptr<ChildProcess> child_;
  std::string address_;
  std::string metrics_address_;
};

}  // namespace ptq::testing

#endif  // PTQ_TESTS_SUPPORT_SERVER_PROCESS_H_
