#ifndef PTQ_CLIENT_EXIT_CODES_H_
#define PTQ_CLIENT_EXIT_CODES_H_

namespace ptq::client {

// ptq-client's exit codes, a contract with the scripts that call it.
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,          // anything else: server unreachable, local I/O failure, ...
  kExitUsage = 2,          // bad command line or config; the message names the key or file
  kExitServerRefused = 3,  // the server answered with an error status (code and message shown)
  kExitJobFailed = 4,      // the job failed or was cancelled
  kExitInterrupted = 130,  // Ctrl-C while following a job (128 + SIGINT, as shells report it)
};

}  // namespace ptq::client

#endif  // PTQ_CLIENT_EXIT_CODES_H_
