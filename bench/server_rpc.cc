// ptq-server's RPC costs on loopback, in one run on this machine:
//  1. StreamCalibrationBatch throughput: 32x3x224x224 float batches (19.3 MB each), against
//     UploadModel of the same number of bytes (a client stream that only hashes and writes to
//     disk) as the baseline.
//  2. GetJob and ListJobs latency (p50/p99) with 100 concurrent pollers while a job
//     calibrates, against one poller on an idle server; the server's RSS and thread count
//     before the load and after it.
//
//   build/bench/bench_server_rpc [--batches 10] [--pollers 100] [--seconds 5]
//
// The job quantizes the bundled Fashion-MNIST MobileNetV3-small at 224x224 input, so the
// workers are busy on both cores while the pollers poll.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <tuple>

#include "CLI/CLI.hpp"
#include "ptq/common/sha256.h"
#include "server_process.h"
#include "service_client.h"
#include "test_env.h"

namespace {

namespace fs = std::filesystem;
using ptq::testing::ServiceClient;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

ptq::v1::JobConfig StreamJob(const std::string& model_id, int batches) {
  ptq::v1::JobConfig config;
  config.mutable_model()->set_model_id(model_id);
  config.mutable_calibration()->set_source("stream");
  config.mutable_calibration()->set_quant_batch_num(batches);
  config.mutable_calibration()->set_quant_batch_size(32);
  config.mutable_ptq()->set_activation_quantizer("HistQuantizer");
  return config;
}

struct Latency {
  double p50_ms = 0, p99_ms = 0;
  size_t calls = 0;
};

Latency Percentiles(std::vector<std::vector<double>> per_thread) {
  std::vector<double> all;
  for (const std::vector<double>& samples : per_thread) all.insert(all.end(), samples.begin(), samples.end());
  std::sort(all.begin(), all.end());
  Latency latency;
  latency.calls = all.size();
  if (!all.empty()) {
    latency.p50_ms = all[all.size() / 2];
    latency.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  }
  return latency;
}

struct PollLatency {
  Latency get_job, list_jobs;
};

// `pollers` threads for `seconds`, each calling GetJob and ListJobs (one page of 50) in turn.
PollLatency Poll(ServiceClient& client, const std::string& job_id, int pollers, double seconds) {
  std::vector<std::vector<double>> get_ms(pollers), list_ms(pollers);
  std::vector<std::thread> threads;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  for (int t = 0; t < pollers; ++t) {
    threads.emplace_back([&, t] {
      ptq::v1::Job job;
      ptq::v1::ListJobsRequest request;
      request.set_page_size(50);
      while (Clock::now() < end) {
        auto start = Clock::now();
        if (client.Get(job_id, &job).ok()) get_ms[t].push_back(Seconds(start) * 1000);
        grpc::ClientContext context;
        ptq::v1::ListJobsResponse page;
        start = Clock::now();
        if (client.stub().ListJobs(&context, request, &page).ok()) list_ms[t].push_back(Seconds(start) * 1000);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  return {Percentiles(std::move(get_ms)), Percentiles(std::move(list_ms))};
}

// VmRSS (MiB) and Threads of a process, from /proc/PID/status.
struct ProcessFootprint {
  double rss_mib = 0;
  int threads = 0;
};

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

}  // namespace

int main(int argc, char** argv) {
  int batches = 10;
  int pollers = 100;
  double seconds = 5;
  CLI::App app{"StreamCalibrationBatch throughput and GetJob latency of a real ptq-server on loopback"};
  app.add_option("--batches", batches, "32x3x224x224 batches to stream")->check(CLI::PositiveNumber);
  app.add_option("--pollers", pollers, "concurrent GetJob pollers")->check(CLI::PositiveNumber);
  app.add_option("--seconds", seconds, "how long each polling phase lasts")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  ptq::testing::TempDir root;
  ptq::testing::ServerProcess server(root.path() / "state", {"--threads", "2"});
  if (server.address().empty()) return 1;
  ServiceClient client(server.address());
  const std::string model_id = client.Upload(ptq::testing::ReferenceModelsDir() / "mobilenet_v3_small.pt");
  if (model_id.empty()) return 1;

  // Random images: the transport does not care what the floats are.
  constexpr int64_t kBatchFloats = int64_t{32} * 3 * 224 * 224;
  std::string bytes(kBatchFloats * sizeof(float), '\0');
  std::mt19937 random(7);
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < kBatchFloats; ++i) {
    const float value = normal(random);
    std::memcpy(&bytes[i * sizeof(float)], &value, sizeof(float));
  }
  ptq::v1::Job job;
  if (!client.Submit(StreamJob(model_id, batches), &job).ok()) return 1;
  std::vector<ptq::v1::CalibrationBatch> messages(batches);
  for (ptq::v1::CalibrationBatch& message : messages) {
    message.set_job_id(job.job_id());
    for (int64_t dim : {32, 3, 224, 224}) message.mutable_tensor()->add_shape(dim);
    message.mutable_tensor()->set_data(bytes);
  }
  const double megabytes = batches * bytes.size() / 1e6;

  // Baseline: the same bytes through UploadModel (a model file of that size is refused as
  // TorchScript at the end, after every byte was received, hashed and written).
  const fs::path blob = root.path() / "blob.bin";
  {
    std::ofstream out(blob, std::ios::binary);
    for (int i = 0; i < batches; ++i) out << bytes;
  }
  auto start = Clock::now();
  ptq::v1::Model refused;
  client.TryUpload(blob, &refused);  // refused by design (not TorchScript); the transfer is what is timed
  const double upload_seconds = Seconds(start);

  ptq::v1::CalibrationSummary summary;
  start = Clock::now();
  const grpc::Status streamed = client.Stream(messages, &summary);
  const double stream_seconds = Seconds(start);
  if (!streamed.ok()) {
    std::fprintf(stderr, "stream failed: %s\n", streamed.error_message().c_str());
    return 1;
  }

  // The job now calibrates on both cores; poll it.
  client.PollUntil(job.job_id(), [](const ptq::v1::Job& j) { return j.state() != ptq::v1::JOB_STATE_QUEUED; });
  const ProcessFootprint before = Footprint(server.pid());
  const PollLatency busy = Poll(client, job.job_id(), pollers, seconds);
  const ProcessFootprint after = Footprint(server.pid());
  ptq::v1::Job during;
  client.Get(job.job_id(), &during);
  const ptq::v1::Job done =
      client.PollUntil(job.job_id(), [](const ptq::v1::Job& j) { return ptq::testing::IsFinalState(j.state()); });
  const PollLatency idle = Poll(client, job.job_id(), 1, seconds);

  std::printf("ptq-server RPC benchmark (loopback, %u cores)\n\n", std::thread::hardware_concurrency());
  std::printf("| measurement | value | baseline | ratio |\n|---|---|---|---|\n");
  std::printf("| StreamCalibrationBatch, %d x 32x3x224x224 float32 (%.0f MB) | %.0f MB/s | UploadModel of the same bytes: %.0f MB/s | %.2fx |\n",
              batches, megabytes, megabytes / stream_seconds, megabytes / upload_seconds,
              upload_seconds / stream_seconds);
  const std::string state = ptq::v1::JobState_Name(during.state());
  for (const auto& [rpc, loaded, alone] : {std::tuple{"GetJob", busy.get_job, idle.get_job},
                                          std::tuple{"ListJobs", busy.list_jobs, idle.list_jobs}}) {
    std::printf("| %s p50, %d pollers while the job is %s | %.2f ms | 1 poller, idle server: %.2f ms | %.1fx |\n", rpc,
                pollers, state.c_str(), loaded.p50_ms, alone.p50_ms, loaded.p50_ms / alone.p50_ms);
    std::printf("| %s p99, %d pollers while the job is %s | %.2f ms | 1 poller, idle server: %.2f ms | %.1fx |\n", rpc,
                pollers, state.c_str(), loaded.p99_ms, alone.p99_ms, loaded.p99_ms / alone.p99_ms);
  }
  std::printf("| server RSS after the pollers | %.0f MiB | before them: %.0f MiB | %.2fx |\n", after.rss_mib,
              before.rss_mib, after.rss_mib / before.rss_mib);
  std::printf("| server threads after the pollers | %d | before them: %d | %.2fx |\n", after.threads,
              before.threads, static_cast<double>(after.threads) / before.threads);
  std::printf("\nCalls under load: %zu GetJob, %zu ListJobs; idle: %zu, %zu. Job %s ended %s.\n",
              busy.get_job.calls, busy.list_jobs.calls, idle.get_job.calls, idle.list_jobs.calls,
              job.job_id().c_str(), ptq::v1::JobState_Name(done.state()).c_str());
  return done.state() == ptq::v1::JOB_STATE_SUCCEEDED ? 0 : 1;
}
