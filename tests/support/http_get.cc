#include "http_get.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

namespace ptq::testing {

HttpResponse HttpExchange(const std::string& address, const std::string& request) {
  HttpResponse response;
  const size_t colon = address.rfind(':');
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (colon == std::string::npos ||
      getaddrinfo(address.substr(0, colon).c_str(), address.substr(colon + 1).c_str(), &hints, &found) != 0) {
    return response;
  }
  const int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
  const bool connected = fd >= 0 && connect(fd, found->ai_addr, found->ai_addrlen) == 0;
  freeaddrinfo(found);
  std::string raw;
  if (connected && send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    shutdown(fd, SHUT_WR);  // all of the request: a server waiting for more sees the end
    char buffer[4096];
    for (ssize_t received; (received = recv(fd, buffer, sizeof(buffer), 0)) > 0;) raw.append(buffer, received);
  }
  if (fd >= 0) close(fd);
  // "HTTP/1.1 200 OK\r\n...\r\n\r\nBODY"
  const size_t space = raw.find(' ');
  const size_t body = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/", 0) != 0 || space == std::string::npos || body == std::string::npos) return response;
  response.status = std::atoi(raw.c_str() + space + 1);
  response.body = raw.substr(body + 4);
  return response;
}

HttpResponse HttpGet(const std::string& address, const std::string& path) {
  return HttpExchange(address, "GET " + path + " HTTP/1.1\r\nHost: " + address + "\r\n\r\n");
}

}  // namespace ptq::testing
