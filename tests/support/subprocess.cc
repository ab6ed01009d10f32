#include "subprocess.h"

#include "test_env.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace ptq::testing {
namespace {

// Forks and execs `argv` with stdout/stderr sent to the given files. Unblocks the signals the
// parent may have blocked, so tests can stop children with SIGTERM.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& stdout_path,
            const std::string& stderr_path, const std::vector<std::string>& environment) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid != 0) return pid;
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  const int out = open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  const int err = stderr_path == stdout_path
                      ? out
                      : open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  const int null_in = open("/dev/null", O_RDONLY);
  dup2(null_in, STDIN_FILENO);
  dup2(out, STDOUT_FILENO);
  dup2(err, STDERR_FILENO);
  for (const std::string& entry : environment) putenv(const_cast<char*>(entry.c_str()));
  execv(args[0], args.data());
  _exit(127);
}

std::optional<int> DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return std::nullopt;
}

}  // namespace

ProcessResult RunProcess(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                         const std::vector<std::string>& environment) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path();
  const std::string stem = "ptq-test-" + std::to_string(getpid()) + "-" +
                           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  const std::string stdout_path = (dir / (stem + ".out")).string();
  const std::string stderr_path = (dir / (stem + ".err")).string();
  const pid_t pid = Spawn(argv, stdout_path, stderr_path, environment);

  ProcessResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!result.timed_out && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.stdout_text = ReadFileBytes(stdout_path);
  result.stderr_text = ReadFileBytes(stderr_path);
  std::filesystem::remove(stdout_path);
  std::filesystem::remove(stderr_path);
  return result;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& log_path)
    : pid_(Spawn(argv, log_path, log_path, {})) {}

ChildProcess::~ChildProcess() {
  if (running()) {
    kill(pid_, SIGKILL);
    WaitFor(std::chrono::seconds(10));
  }
}

bool ChildProcess::running() { return !WaitFor(std::chrono::milliseconds(0)).has_value(); }

void ChildProcess::Signal(int signal_number) {
  if (!exit_code_) kill(pid_, signal_number);
}

std::optional<int> ChildProcess::WaitFor(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!exit_code_) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_code_ = DecodeWaitStatus(status);
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return exit_code_;
}

}  // namespace ptq::testing
