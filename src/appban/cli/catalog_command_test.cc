// `appban catalog list|show|diff|adopt` in-process, over the catalog shipped in data/catalog and
// over a catalog file given with --catalog.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "appban/cli/cli_test_support.h"

namespace appban::cli {
namespace {

using Json = nlohmann::json;

using CatalogCommandTest = CliTest;

TEST_F(CatalogCommandTest, ListShowsEveryDecisionWithItsApps) {
  auto listed = RunCli({"catalog", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_TRUE(Contains(listed.out, "ca-wechat-kaspersky-2023  Canada (federal)  2023-10-30  WeChat, Kaspersky suite\n"))
      << listed.out;
  auto json = RunCli({"catalog", "list", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  Json entries = Json::parse(json.out);
  ASSERT_FALSE(entries.empty());
  size_t lines = 0;
  for (char c : listed.out) lines += c == '\n' ? 1 : 0;
  EXPECT_EQ(entries.size(), lines) << "one text line per entry";
  EXPECT_EQ(entries[0]["id"], "ca-tiktok-2023");
  EXPECT_EQ(entries[0]["apps"][0]["name"], "TikTok");
}

TEST_F(CatalogCommandTest, ShowPrintsOneDecisionAndMarksUnverifiedIdentifiers) {
  auto shown = RunCli({"catalog", "show", "ca-wechat-kaspersky-2023"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_TRUE(Contains(shown.out, "ca-wechat-kaspersky-2023\n  jurisdiction  Canada (federal)\n")) << shown.out;
  EXPECT_TRUE(Contains(shown.out, "  app           WeChat")) << shown.out;
  EXPECT_TRUE(Contains(shown.out, "    android:com.tencent.mm")) << shown.out;
  EXPECT_TRUE(Contains(shown.out, "(unverified)")) << shown.out;

  auto json = RunCli({"catalog", "show", "ca-wechat-kaspersky-2023", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(Json::parse(json.out)["jurisdiction"], "Canada (federal)");
}

TEST_F(CatalogCommandTest, AnUnknownEntryIsNotFound) {
  auto shown = RunCli({"catalog", "show", "xx-nothing-1999"});
  EXPECT_EQ(shown.exit_code, 1);
  EXPECT_EQ(shown.err, "appban: not found: no catalog entry xx-nothing-1999\n");
  auto adopted = RunCli({"catalog", "adopt", "xx-nothing-1999", "--data", data(), "--user", "alice", "--break-glass"});
  EXPECT_EQ(adopted.exit_code, 1);
  EXPECT_EQ(adopted.err, "appban: not found: no catalog entry xx-nothing-1999\n");
  auto missing_id = RunCli({"catalog", "show"});
  EXPECT_NE(missing_id.exit_code, 0);
  EXPECT_TRUE(Contains(missing_id.err, "id")) << missing_id.err;
}

TEST_F(CatalogCommandTest, DiffComparesTwoJurisdictionsByApp) {
  auto diff = RunCli({"catalog", "diff", "--ours", "CA", "--theirs", "AU"});
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  EXPECT_TRUE(Contains(diff.out, "AU bans, CA does not:\n  (none)\n")) << diff.out;
  EXPECT_TRUE(Contains(diff.out, "CA bans, AU does not:\n  WeChat  [ca-wechat-kaspersky-2023]\n")) << diff.out;
  EXPECT_TRUE(Contains(diff.out, "Both ban:\n")) << diff.out;

  auto missing = RunCli({"catalog", "diff", "--ours", "CA"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_TRUE(Contains(missing.err, "--theirs")) << missing.err;
}

TEST_F(CatalogCommandTest, AdoptProposesADraftRuleAsTheActingUser) {
  auto bad_action = RunCli(
      {"catalog", "adopt", "ca-tiktok-2023", "--action", "nuke", "--data", data(), "--user", "alice", "--break-glass"});
  EXPECT_EQ(bad_action.exit_code, 1);
  EXPECT_TRUE(Contains(bad_action.err, "\"nuke\"")) << bad_action.err;
  auto anonymous = RunCli({"catalog", "adopt", "ca-tiktok-2023", "--data", data(), "--break-glass"});
  EXPECT_EQ(anonymous.exit_code, 1);
  EXPECT_TRUE(Contains(anonymous.err, "--user")) << anonymous.err;
  auto local = RunCli({"catalog", "adopt", "ca-tiktok-2023", "--data", data(), "--user", "alice"});
  EXPECT_EQ(local.exit_code, 1) << "a proposal on the host needs a server, or --break-glass";
  EXPECT_TRUE(Contains(local.err, "appban login")) << local.err;

  auto adopted = RunCli({"catalog", "adopt", "ca-tiktok-2023", "--action", "block", "--data", data(), "--user", "alice",
                         "--break-glass"});
  ASSERT_EQ(adopted.exit_code, 0) << adopted.err;
  EXPECT_TRUE(Contains(adopted.out, "proposed rule ca-tiktok-2023 (draft, block) from catalog entry ca-tiktok-2023"))
      << adopted.out;
  EXPECT_TRUE(Contains(adopted.out, "  target android:com.zhiliaoapp.musically")) << adopted.out;

  auto rule = Policy("bob", {"rules", "show", "ca-tiktok-2023", "--json"});
  ASSERT_EQ(rule.exit_code, 0) << rule.err;
  Json json = Json::parse(rule.out);
  EXPECT_EQ(json["state"], "draft");
  EXPECT_EQ(json["proposed_by"], "break-glass:alice");
  EXPECT_EQ(json["action"], "block");
}

TEST_F(CatalogCommandTest, ACatalogFileCanBeGiven) {
  auto missing = RunCli({"catalog", "list", "--catalog", Path("nope.json")});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(Contains(missing.err, "nope.json")) << missing.err;
  Write("broken.json", "{not json");
  auto broken = RunCli({"catalog", "list", "--catalog", Path("broken.json")});
  EXPECT_EQ(broken.exit_code, 1);
  EXPECT_TRUE(Contains(broken.err, "appban: ")) << broken.err;
}

}  // namespace
}  // namespace appban::cli
