#ifndef PTQ_SERVER_SERVER_OPTIONS_H_
#define PTQ_SERVER_SERVER_OPTIONS_H_

#include <cstdint>
#include <string>

namespace ptq::server {

// How the server's port is secured, as the operator configured it.
struct TransportSecurity {
  // PEM files. With cert and key the port speaks TLS only; with client_ca too it also requires
  // a client certificate that CA signed (mutual TLS).
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;
  // Plaintext, asked for by name: never the result of a missing flag.
  bool insecure = false;
  // Who may call and what each may do (IdentityTable's format); empty: every caller is the
  // anonymous admin of the default tenant.
  std::string auth_token_file;
};

struct ServerOptions {
  // host:port to serve on; port 0 picks a free port (QuantServer::bound_address tells which).
  std::string listen_address = "127.0.0.1:50051";
  TransportSecurity security;
  // gRPC server reflection: lists every service and message to whoever connects; off unless
  // asked for (grpcurl and other tools use it).
  bool reflection = false;
  // host:port of the Prometheus endpoint (/metrics, plain HTTP); empty: not served.
  std::string metrics_listen;
  // Durable state: uploaded models, jobs, results.
  std::string state_dir = "ptq-state";
  // Where jobs are recorded (OpenJobStore): "sqlite:PATH" or a PostgreSQL URL; empty means
  // sqlite:<state_dir>/jobs.sqlite.
  std::string store;
  // "all": one server runs every RPC and the jobs. "api": every RPC, no job runs (evaluations
  // do); "worker": runs the jobs of the store, serves health only. api and worker servers share
  // a PostgreSQL store and a state directory on storage they all mount.
  std::string role = "all";
  // A worker's hold on a job lasts this long unless renewed; a worker that dies or stalls
  // loses the job to another within it.
  int lease_seconds = 30;
  // Server-side datasets are resolved under this folder only; empty means none are offered.
  std::string data_root;
  // Largest model UploadModel accepts.
  int64_t max_upload_bytes = int64_t{2048} << 20;
  // Largest single gRPC message accepted (calibration batches are the big ones).
  int max_message_bytes = 64 << 20;
  // Threads for blocking work off gRPC's callback threads (committing uploads, validating
  // submitted jobs), and, apart, for checking and decoding streamed calibration batches.
  int blocking_threads = 2;
  int stream_decode_threads = 2;
  // "auto": one worker per CUDA device LibTorch sees, else `workers` CPU workers; "cpu"; "cuda".
  std::string device = "auto";
  int workers = 1;  // CPU workers
  // LibTorch intra-op threads, one pool shared by the CPU workers; 0 means one per core.
  int threads = 0;
  int max_queue = 64;  // jobs waiting to run beyond which SubmitQuantJob says RESOURCE_EXHAUSTED
  // A stream job that has no complete calibration stream this long after submission fails.
  int awaiting_data_ttl_seconds = 3600;
  // A calibration stream that sends nothing for this long is cancelled (its job keeps waiting).
  int stream_idle_timeout_seconds = 120;
  // Decoded calibration data all stream jobs together may hold in memory.
  int64_t max_stream_bytes = int64_t{4096} << 20;
  // Nice value of the job workers' threads (0..19), above the RPC threads' 0.
  int worker_nice = 10;
  // Ended jobs are deleted this long after they finished (0: kept) and, oldest first, while
  // their result directories hold more than max_results_gb (0: no limit).
  double retention_days = 0;
  double max_results_gb = 0;
  // A worker whose job or evaluation makes no progress this long turns the health service
  // "liveness" NOT_SERVING (WorkerWatchdog); 0: not watched.
  int stall_timeout_seconds = 1800;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_SERVER_OPTIONS_H_
