// ptq-client's config file parser (JSON -> checked JobConfig) on arbitrary text.
#include <cstddef>
#include <cstdint>

#include "job_config_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  (void)ptq::client::ParseJobConfig(text, "/nonexistent/fuzz.json");
  return 0;
}
