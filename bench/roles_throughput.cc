// The api and worker roles on this machine, in one run: one `--role api` server and first 1,
// then 2, `--role worker` processes on a PostgreSQL store of the benchmark's own (TestPostgres)
// and one state directory.
//  - throughput: `--jobs` identical jobs (the bundled MobileNetV3-small, 4 x 32 Fashion-MNIST
//    calibration images, 500 evaluation images) submitted at once; jobs per minute from the
//    first submission until the last one SUCCEEDED. Each worker runs LibTorch on `--threads`.
//  - while they run: 20 pollers call GetJob on the api server every 100 ms (open loop, each on
//    its own connection) for `--load-seconds`; p50/p99/max, errors.
//
//   build/bench/bench_roles_throughput [--jobs 16] [--threads 1] [--load-seconds 10]
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "rpc_load.h"
#include "server_process.h"
#include "service_client.h"
#include "test_env.h"
#include "test_postgres.h"

namespace {

namespace fs = std::filesystem;
using ptq::bench::CallTimer;
using ptq::bench::ClientRole;
using ptq::bench::Clock;
using ptq::bench::LoadClient;
using ptq::bench::RpcLatency;
using ptq::testing::ServerProcess;
using ptq::testing::ServiceClient;

ptq::v1::JobConfig SmallJob(const std::string& model_id) {
  ptq::v1::JobConfig config;
  config.mutable_model()->set_model_id(model_id);
  ptq::v1::InputSpec* input = config.mutable_input();
  input->set_size(32);
  input->set_resize_short(0);
  for (int c = 0; c < 3; ++c) {
    input->add_mean(72.94f);
    input->add_std(90.02f);
  }
  config.mutable_calibration()->set_source("server");
  config.mutable_calibration()->set_path("fashion-mnist/t10k");
  config.mutable_calibration()->set_quant_batch_num(4);
  config.mutable_calibration()->set_quant_batch_size(32);
  config.mutable_evaluate()->set_path("fashion-mnist/t10k");
  config.mutable_evaluate()->set_limit(500);
  return config;
}

struct RunResult {
  int workers = 0;
  int succeeded = 0;
  double seconds = 0;
  RpcLatency get_job;
};

RunResult Run(int workers, int jobs, int threads, std::chrono::seconds load) {
  ptq::testing::TempDir root;
  ptq::testing::TestPostgres postgres;
  ptq::testing::CopyFashionMnistTestSet(root.path() / "data" / "fashion-mnist");
  const fs::path state = root.path() / "state";
  const std::string store = postgres.NewDatabase();
  auto flags = [&](const std::string& role) {
    return std::vector<std::string>{"--role", role, "--store", store, "--data-root",
                                    (root.path() / "data").string(), "--threads", std::to_string(threads)};
  };
  ServerProcess api(state, flags("api"), "api");
  std::vector<std::unique_ptr<ServerProcess>> worker_processes;
  for (int w = 0; w < workers; ++w) {
    worker_processes.push_back(std::make_unique<ServerProcess>(state, flags("worker"), "worker-" + std::to_string(w)));
  }
  ServiceClient client(api.address());
  const std::string model_id = client.Upload(ptq::testing::ReferenceModelsDir() / "mobilenet_v3_small.pt");

  RunResult result;
  result.workers = workers;
  std::vector<std::string> job_ids;
  const Clock::time_point started = Clock::now();
  for (int j = 0; j < jobs; ++j) {
    ptq::v1::Job job;
    if (client.Submit(SmallJob(model_id), &job).ok()) job_ids.push_back(job.job_id());
  }
  if (job_ids.empty()) return result;
  std::thread pollers([&] {
    ClientRole poller{"GetJob pollers", 20, std::chrono::milliseconds(100), [&](LoadClient& load, CallTimer& timer) {
                        grpc::ClientContext context;
                        ptq::v1::GetJobRequest request;
                        request.set_job_id(job_ids[0]);
                        ptq::v1::Job job;
                        timer.Time("GetJob", [&] { return load.service->GetJob(&context, request, &job); });
                      }};
    result.get_job = ptq::bench::RunLoad(api.address(), {poller}, load)["GetJob"];
  });
  for (const std::string& job_id : job_ids) {
    const ptq::v1::Job job = client.PollUntil(
        job_id, [](const ptq::v1::Job& job) { return ptq::testing::IsFinalState(job.state()); },
        std::chrono::seconds(1800));
    if (job.state() == ptq::v1::JOB_STATE_SUCCEEDED) ++result.succeeded;
  }
  result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  pollers.join();
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"jobs per minute of the api and worker roles with 1 and 2 worker processes, GetJob latency meanwhile"};
  int jobs = 16;
  int threads = 1;
  int load_seconds = 10;
  app.add_option("--jobs", jobs, "jobs submitted at once")->check(CLI::Range(2, 1000));
  app.add_option("--threads", threads, "LibTorch threads of each worker process")->check(CLI::Range(1, 64));
  app.add_option("--load-seconds", load_seconds, "how long the GetJob pollers run")->check(CLI::Range(1, 600));
  CLI11_PARSE(app, argc, argv);

  std::printf("| worker processes | jobs SUCCEEDED | seconds | jobs/min | GetJob p50 / p99 / max ms (calls, errors) |\n");
  std::printf("|---|---|---|---|---|\n");
  double baseline = 0;
  for (int workers : {1, 2}) {
    const RunResult run = Run(workers, jobs, threads, std::chrono::seconds(load_seconds));
    const double per_minute = 60.0 * run.succeeded / run.seconds;
    if (workers == 1) baseline = per_minute;
    std::printf("| %d | %d of %d | %.1f | %.1f (%.2fx) | %.1f / %.1f / %.1f (%zu, %zu) |\n", workers, run.succeeded,
                jobs, run.seconds, per_minute, per_minute / baseline, run.get_job.p50_ms, run.get_job.p99_ms,
                run.get_job.max_ms, run.get_job.calls, run.get_job.errors);
    std::fflush(stdout);
  }
  return 0;
}
