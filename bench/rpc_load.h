#ifndef PTQ_BENCH_RPC_LOAD_H_
#define PTQ_BENCH_RPC_LOAD_H_

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "ptq/v1/service.grpc.pb.h"

namespace ptq::bench {

using Clock = std::chrono::steady_clock;

// One simulated client's own connection (channels do not share a TCP connection, as separate
// client processes would not).
struct LoadClient {
  explicit LoadClient(const std::string& address);
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::QuantService::Stub> service;
  std::unique_ptr<grpc::health::v1::Health::Stub> health;
};

// Times the RPCs of one scheduled call. The first RPC timed in a call is measured from the
// moment the call was due, not from when it started: a client held up by a slow server
// counts the wait (open-loop load without coordinated omission). Later RPCs of the same call
// (submit, then stream, then cancel) are measured from their own start.
class CallTimer {
 public:
  explicit CallTimer(Clock::time_point due) : start_(due) {}
  void Time(const std::string& rpc, const std::function<grpc::Status()>& rpc_call);

  struct Sample {
    std::string rpc;
    double ms;
    grpc::Status status;
  };
  std::vector<Sample>& samples() { return samples_; }

 private:
  Clock::time_point start_;
  std::vector<Sample> samples_;
};

// A kind of client: `clients` of them, each making `call` every `period` (from a random phase
// within the first period); a zero period calls back to back (closed loop, for capacity).
struct ClientRole {
  std::string name;
  int clients = 0;
  std::chrono::milliseconds period{0};
  std::function<void(LoadClient&, CallTimer&)> call;
};

struct RpcLatency {
  size_t calls = 0;
  size_t errors = 0;
  std::string first_error;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

// Runs every role's clients at once for `duration` against `address`; per RPC name, its
// latencies and errors.
std::map<std::string, RpcLatency> RunLoad(const std::string& address, const std::vector<ClientRole>& roles,
                                          std::chrono::milliseconds duration);

// VmRSS (MiB) and Threads of a process, from /proc/PID/status.
struct ProcessFootprint {
  double rss_mib = 0;
  int threads = 0;
};
ProcessFootprint Footprint(pid_t pid);

}  // namespace ptq::bench

#endif  // PTQ_BENCH_RPC_LOAD_H_
