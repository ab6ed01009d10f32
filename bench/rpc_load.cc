#include "rpc_load.h"

#include <algorithm>
#include <fstream>
#include <random>
#include <thread>

namespace ptq::bench {

LoadClient::LoadClient(const std::string& address) {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(64 << 20);
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), arguments);
  service = v1::QuantService::NewStub(channel);
  health = grpc::health::v1::Health::NewStub(channel);
}

void CallTimer::Time(const std::string& rpc, const std::function<grpc::Status()>& rpc_call) {
  const Clock::time_point start = samples_.empty() ? start_ : Clock::now();
  grpc::Status status = rpc_call();
  samples_.push_back({rpc, std::chrono::duration<double, std::milli>(Clock::now() - start).count(), std::move(status)});
}

std::map<std::string, RpcLatency> RunLoad(const std::string& address, const std::vector<ClientRole>& roles,
                                          std::chrono::milliseconds duration) {
  struct ClientRun {
    const ClientRole* role;
    std::unique_ptr<LoadClient> client;
    std::vector<CallTimer::Sample> samples;
  };
  std::vector<ClientRun> runs;
  for (const ClientRole& role : roles) {
    for (int i = 0; i < role.clients; ++i) runs.push_back({&role, std::make_unique<LoadClient>(address), {}});
  }
  // Connect every client before the clock starts, so connection setup is not timed.
  for (ClientRun& run : runs) run.client->channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10));

  std::mt19937 random(11);
  const Clock::time_point begin = Clock::now() + std::chrono::milliseconds(200);
  const Clock::time_point end = begin + duration;
  std::vector<std::thread> threads;
  for (ClientRun& run : runs) {
    const auto period = run.role->period;
    std::uniform_int_distribution<int64_t> phase(0, std::max<int64_t>(0, period.count() - 1));
    const Clock::time_point first = begin + std::chrono::milliseconds(phase(random));
    threads.emplace_back([&run, first, period, end] {
      Clock::time_point due = first;
      while (due < end) {
        std::this_thread::sleep_until(due);
        CallTimer timer(period.count() > 0 ? due : Clock::now());
        run.role->call(*run.client, timer);
        for (CallTimer::Sample& sample : timer.samples()) run.samples.push_back(std::move(sample));
        due = period.count() > 0 ? due + period : Clock::now();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  std::map<std::string, std::vector<double>> latencies;
  std::map<std::string, RpcLatency> result;
  for (const ClientRun& run : runs) {
    for (const CallTimer::Sample& sample : run.samples) {
      RpcLatency& rpc = result[sample.rpc];
      ++rpc.calls;
      latencies[sample.rpc].push_back(sample.ms);
      if (!sample.status.ok()) {
        if (rpc.errors++ == 0) rpc.first_error = sample.status.error_message();
      }
    }
  }
  for (auto& [rpc, samples] : latencies) {
    std::sort(samples.begin(), samples.end());
    RpcLatency& summary = result[rpc];
    summary.p50_ms = samples[samples.size() / 2];
    summary.p99_ms = samples[std::min(samples.size() - 1, samples.size() * 99 / 100)];
    summary.max_ms = samples.back();
  }
  return result;
}

ProcessFootprint Footprint(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  ProcessFootprint footprint;
  std::string key;
  while (status >> key) {
    if (key == "VmRSS:") {
      double kib = 0;
      status >> kib;
      footprint.rss_mib = kib / 1024;
    } else if (key == "Threads:") {
      status >> footprint.threads;
    }
  }
  return footprint;
}

}  // namespace ptq::bench
