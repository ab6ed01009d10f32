#include "grpc/transport_security.h"

#include <grpcpp/security/server_credentials.h>

#include "ptq/common/pem_file.h"

namespace ptq::server {

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(const TransportSecurity& security) {
  const bool tls = !security.cert_file.empty() || !security.key_file.empty();
  if (security.insecure && (tls || !security.client_ca_file.empty())) {
    return absl::InvalidArgumentError(
        "--insecure (plaintext) and --tls-cert/--tls-key/--tls-client-ca exclude each other");
  }
  if (security.insecure) return grpc::InsecureServerCredentials();
  if (!tls) {
    return absl::InvalidArgumentError(
        "no transport security configured: give --tls-cert and --tls-key (TLS), or --insecure for plaintext");
  }
  if (security.cert_file.empty() || security.key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  absl::StatusOr<std::string> cert = ReadPemFile(security.cert_file, "--tls-cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPemFile(security.key_file, "--tls-key");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions options(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  if (!security.client_ca_file.empty()) {
    absl::StatusOr<std::string> client_ca = ReadPemFile(security.client_ca_file, "--tls-client-ca");
    if (!client_ca.ok()) return client_ca.status();
    options = grpc::SslServerCredentialsOptions(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = *client_ca;
  }
  options.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(options);
}

}  // namespace ptq::server
