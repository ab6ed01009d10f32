#ifndef PTQ_TESTS_SUPPORT_SUBPROCESS_H_
#define PTQ_TESTS_SUPPORT_SUBPROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace ptq::testing {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  bool timed_out = false;
  std::string stdout_text;
  std::string stderr_text;
};

// Runs `argv` to completion (killing it after `timeout`) and captures its output.
// `environment` entries ("NAME=value") are added to this process's environment.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60),
                         const std::vector<std::string>& environment = {});

// A child process running in the background, its stdout and stderr appended to `log_path`.
// The destructor SIGKILLs it if it is still running.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::string& log_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int signal_number);
  // The exit code once the child exits within `timeout`; nullopt if it is still running.
  // A child killed by a signal reports 128 + the signal number, like a shell.
  std::optional<int> WaitFor(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

}  // namespace ptq::testing

#endif  // PTQ_TESTS_SUPPORT_SUBPROCESS_H_
