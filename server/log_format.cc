#include "log_format.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <regex>

#include "absl/strings/str_format.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/spdlog.h"

namespace ptq::server {
namespace {

// The %* flag of the text pattern: the message, escaped.
class EscapedMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm&, spdlog::memory_buf_t& out) override {
    const std::string escaped =
        EscapeControlCharacters(absl::string_view(message.payload.data(), message.payload.size()));
    out.append(escaped.data(), escaped.data() + escaped.size());
  }

  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<EscapedMessage>(); }
};

// The whole line: spdlog's pattern flags cannot escape a message for JSON.
class JsonLineFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& message, spdlog::memory_buf_t& out) override {
    const std::string text(message.payload.data(), message.payload.size());
    nlohmann::json line = {{"time", Timestamp(message.time)},
                           {"level", spdlog::level::to_string_view(message.level).data()},
                           {"message", text}};
    if (std::optional<std::string> job_id = JobIdNamedIn(text)) line["job_id"] = *job_id;
    const std::string dumped = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out.append(dumped.data(), dumped.data() + dumped.size());
    out.push_back('\n');
  }

  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonLineFormatter>(); }

 private:
  static std::string Timestamp(spdlog::log_clock::time_point time) {
    const auto since_epoch = time.time_since_epoch();
    const std::time_t seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
    const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count() % 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[32];
    std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
    return std::string(text) + "." + std::to_string(1000 + millis).substr(1) + "Z";
  }
};

}  // namespace

std::string EscapeControlCharacters(absl::string_view text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte != 0x7f) {
      escaped.push_back(c);
    } else if (c == '\n') {
      escaped += "\\n";
    } else if (c == '\r') {
      escaped += "\\r";
    } else if (c == '\t') {
      escaped += "\\t";
    } else {
      escaped += absl::StrFormat("\\x%02x", byte);
    }
  }
  return escaped;
}

std::optional<std::string> JobIdNamedIn(absl::string_view message) {
  static const std::regex job_id(R"(\bjob (job-[0-9a-f]{16})\b)");
  std::match_results<absl::string_view::const_iterator> match;
  if (!std::regex_search(message.begin(), message.end(), match, job_id)) return std::nullopt;
  return match[1].str();
}

std::unique_ptr<spdlog::formatter> TextLineFormatter() {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<EscapedMessage>('*').set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %*");
  return formatter;
}

void UseTextLogLines() { spdlog::set_formatter(TextLineFormatter()); }

void UseJsonLogLines() { spdlog::set_formatter(std::make_unique<JsonLineFormatter>()); }

}  // namespace ptq::server
