#include "auth/identity_table.h"

#include <gtest/gtest.h>

namespace ptq::server {
namespace {

constexpr char kFile[] = R"(# token                       tenant   role
team-a-submitter-token-01       team-a   submitter

team-a-reader-token-000001      team-a   reader
	root-token-abcdefghijk      ops      admin
subject=CN=ci-bot,O=team-b      team-b   submitter
)";

TEST(IdentityTableTest, TokensAndSubjectsMapToTheirTenantAndRole) {
  absl::StatusOr<IdentityTable> table = IdentityTable::Parse(kFile);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->tokens(), 3);
  EXPECT_EQ(table->subjects(), 1);

  std::optional<Identity> submitter = table->ForToken("team-a-submitter-token-01");
  ASSERT_TRUE(submitter.has_value());
  EXPECT_EQ(submitter->tenant, "team-a");
  EXPECT_EQ(submitter->role, Role::kSubmitter);
  // sha256("team-a-submitter-token-01") starts 73fcb1e1 (sha256sum): logs name the digest only.
  EXPECT_EQ(submitter->who, "token sha256:73fcb1e1");
  EXPECT_EQ(table->ForToken("team-a-reader-token-000001")->role, Role::kReader);
  EXPECT_EQ(table->ForToken("root-token-abcdefghijk")->role, Role::kAdmin);

  EXPECT_FALSE(table->ForToken("team-a-submitter-token-0").has_value());   // a prefix
  EXPECT_FALSE(table->ForToken("team-a-submitter-token-012").has_value()); // longer
  EXPECT_FALSE(table->ForToken("").has_value());

  std::optional<Identity> bot = table->ForSubject("CN=ci-bot,O=team-b");
  ASSERT_TRUE(bot.has_value());
  EXPECT_EQ(bot->tenant, "team-b");
  EXPECT_EQ(bot->who, "subject CN=ci-bot,O=team-b");
  EXPECT_FALSE(table->ForSubject("CN=ci-bot").has_value());
  // A subject line is no token.
  EXPECT_FALSE(table->ForToken("subject=CN=ci-bot,O=team-b").has_value());
}

TEST(IdentityTableTest, RolesIncludeTheOnesBelowThemAndOnlyAdminsSeeEveryTenant) {
  const Identity reader{"r", "team-a", Role::kReader};
  const Identity admin{"a", "ops", Role::kAdmin};
  EXPECT_TRUE(reader.May(Role::kReader));
  EXPECT_FALSE(reader.May(Role::kSubmitter));
  EXPECT_TRUE(admin.May(Role::kSubmitter));
  EXPECT_FALSE(reader.scope().Sees("team-b"));
  EXPECT_TRUE(reader.scope().Sees("team-a"));
  EXPECT_TRUE(admin.scope().Sees("team-b"));
}

TEST(IdentityTableTest, MalformedLinesAreRefusedByLineNumberWithoutEchoingTheToken) {
  const struct {
    const char* text;
    const char* message;
  } cases[] = {
      {"secret-token-0123456789 team-a", "line 1: expected `CREDENTIAL TENANT ROLE`, got 2 fields"},
      {"# comment\nsecret-token-0123456789 Team-A reader", "line 2: tenant 'Team-A' must be"},
      {"secret-token-0123456789 ../etc reader", "line 1: tenant '../etc' must be"},
      {"secret-token-0123456789 team-a owner", "line 1: role 'owner' is not reader, submitter or admin"},
      {"short-secret team-a reader", "line 1: tokens must be at least 16 characters long"},
      {"secret-token-0123456789 team-a reader\nsecret-token-0123456789 team-b admin",
       "line 2: this token is given twice"},
      {"subject= team-a reader", "line 1: empty subject"},
  };
  for (const auto& bad : cases) {
    absl::StatusOr<IdentityTable> table = IdentityTable::Parse(bad.text);
    ASSERT_TRUE(absl::IsInvalidArgument(table.status())) << bad.text;
    EXPECT_NE(table.status().message().find(bad.message), absl::string_view::npos) << table.status();
    EXPECT_EQ(table.status().message().find("secret"), absl::string_view::npos) << table.status();
  }
  EXPECT_TRUE(IsValidTenant("team-a.prod_2"));
  EXPECT_FALSE(IsValidTenant(""));
  EXPECT_FALSE(IsValidTenant(std::string(65, 'a')));
  EXPECT_FALSE(IsValidTenant("-team"));
}

}  // namespace
}  // namespace ptq::server
