#include "listen_address.h"

#include <arpa/inet.h>

#include <string>

#include "absl/strings/match.h"

namespace ptq::server {

bool IsLoopbackOnly(absl::string_view address) {
  if (absl::StartsWith(address, "unix:") || absl::StartsWith(address, "unix-abstract:")) return true;
  const size_t colon = address.rfind(':');
  absl::string_view host = colon == absl::string_view::npos ? address : address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost" || host == "::1") return true;
  in_addr ipv4{};
  if (inet_pton(AF_INET, std::string(host).c_str(), &ipv4) != 1) return false;
  return (ntohl(ipv4.s_addr) >> 24) == 127;
}

}  // namespace ptq::server
