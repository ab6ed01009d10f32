#include "log_format.h"

#include <gtest/gtest.h>

namespace ptq::server {
namespace {

TEST(LogFormatTest, ControlCharactersAreEscapedAndTheRestIsKept) {
  EXPECT_EQ(EscapeControlCharacters("job 'a'\n[2030-01-01 00:00:00.000] [error] FAKE"),
            "job 'a'\\n[2030-01-01 00:00:00.000] [error] FAKE");
  EXPECT_EQ(EscapeControlCharacters(std::string("a\rb\tc\x1b[31md\x7f\x01", 13)), "a\\rb\\tc\\x1b[31md\\x7f\\x01");
  EXPECT_EQ(EscapeControlCharacters(std::string("nul\0end", 7)), "nul\\x00end");
  EXPECT_EQ(EscapeControlCharacters("caf\xc3\xa9 \\n is two characters"), "caf\xc3\xa9 \\n is two characters");
}

}  // namespace
}  // namespace ptq::server
