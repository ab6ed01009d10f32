#ifndef PTQ_TESTS_SUPPORT_HTTP_GET_H_
#define PTQ_TESTS_SUPPORT_HTTP_GET_H_

#include <string>

namespace ptq::testing {

struct HttpResponse {
  int status = 0;    // 0 when no response came
  std::string body;  // after the headers
};

// Sends `request` (a whole HTTP request, or any bytes) to host:port over plain TCP, closes its
// sending side and reads the response until the server closes the connection.
HttpResponse HttpExchange(const std::string& address, const std::string& request);

// GET http://ADDRESS/PATH.
HttpResponse HttpGet(const std::string& address, const std::string& path);

}  // namespace ptq::testing

#endif  // PTQ_TESTS_SUPPORT_HTTP_GET_H_
