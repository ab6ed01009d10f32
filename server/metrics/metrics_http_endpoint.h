#ifndef PTQ_SERVER_METRICS_METRICS_HTTP_ENDPOINT_H_
#define PTQ_SERVER_METRICS_METRICS_HTTP_ENDPOINT_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace ptq::server {

// A plain-HTTP endpoint that answers `GET /metrics` with what `render` returns (the Prometheus
// text format) and every other request with 404 or 405, one connection at a time on its own
// thread. Requests are read up to 8 KiB and 5 s, so a slow or hostile client holds the
// endpoint for at most that long.
//
// Not prometheus-cpp's Exposer: its HTTP server (civetweb) starts threads with 100 KiB stacks,
// which glibc refuses in a process that loads LibTorch (its static TLS is larger than that).
class MetricsHttpEndpoint {
 public:
  // Listens on `address` ("host:port", "[v6]:port"; port 0: any free port). UNAVAILABLE when it
  // cannot, INVALID_ARGUMENT for an address that is not host:port.
  static absl::StatusOr<std::unique_ptr<MetricsHttpEndpoint>> Start(const std::string& address,
                                                                    std::function<std::string()> render);
  ~MetricsHttpEndpoint();  // stops serving and joins the thread

  int port() const { return port_; }

 private:
  MetricsHttpEndpoint(int listen_fd, int port, std::function<std::string()> render);
  void Serve();
  void Answer(int connection_fd) const;

  const int listen_fd_;
  const int port_;
  const std::function<std::string()> render_;
  int wake_pipe_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_METRICS_METRICS_HTTP_ENDPOINT_H_
