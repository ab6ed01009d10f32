#include "json_log_format.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <regex>

#include "spdlog/pattern_formatter.h"
#include "spdlog/spdlog.h"

namespace ptq::server {
namespace {

// The whole line: spdlog's pattern flags cannot escape a message for JSON.
class JsonLineFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& message, spdlog::memory_buf_t& out) override {
    const std::string text(message.payload.data(), message.payload.size());
    nlohmann::json line = {{"time", Timestamp(message.time)},
                           {"level", spdlog::level::to_string_view(message.level).data()},
                           {"message", text}};
    static const std::regex job_id(R"(\bjob (job-[0-9a-f]{16})\b)");
    std::smatch match;
    if (std::regex_search(text, match, job_id)) line["job_id"] = match[1].str();
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

void UseJsonLogLines() { spdlog::set_formatter(std::make_unique<JsonLineFormatter>()); }

}  // namespace ptq::server
