#include "appban/server/config.h"

#include <gtest/gtest.h>

#include <toml++/toml.h>
#include <fstream>
#include <sstream>
#include <string>

namespace appban::server {
namespace {

std::string ReadSourceFile(const std::string& relative) {
  std::ifstream in(std::string(APPBAN_SOURCE_DIR) + "/" + relative, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string ParseError(std::string_view text) {
  auto config = ParseServerConfig(text, "server.toml");
  EXPECT_FALSE(config.ok()) << text;
  return config.ok() ? "" : config.status().message();
}

ServerConfig Parsed(std::string_view text) {
  auto config = ParseServerConfig(text, "server.toml");
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  return config.ok() ? *config : ServerConfig{};
}

TEST(ServerConfig, DefaultsAreTheDocumentedOnes) {
  ServerConfig config = Parsed("");
  EXPECT_EQ(config.data_dir, "/var/lib/appban");
  EXPECT_EQ(config.DatabasePath(), "/var/lib/appban/appban.db");
  EXPECT_EQ(config.listen.address, "0.0.0.0");
  EXPECT_EQ(config.listen.port, 8443);
  EXPECT_TRUE(config.listen.tls);
  EXPECT_FALSE(config.listen.insecure_plain_http);
  EXPECT_TRUE(config.UsesGeneratedCertificate());
  EXPECT_EQ(config.workers, 0u);
  EXPECT_EQ(config.devices.checkin_interval_seconds, 300u);
  EXPECT_EQ(config.devices.longpoll_timeout_seconds, 60u);
  EXPECT_EQ(config.StaleAfterSeconds(), 3u * 300u);
  EXPECT_EQ(config.limits.json_max_bytes, 1024u * 1024u);
  EXPECT_EQ(config.limits.inventory_max_bytes, 8u * 1024u * 1024u);
  EXPECT_EQ(config.limits.apk_max_bytes, 256u * 1024u * 1024u);
  EXPECT_EQ(config.policy.bundle_validity_days, 30u);
  EXPECT_EQ(config.log.level, LogLevel::kInfo);
  EXPECT_EQ(config.log.format, LogFormat::kText);
  EXPECT_TRUE(ValidateConfig(config).ok()) << ValidateConfig(config).ToString();
}

TEST(ServerConfig, ExampleFileLoadsValidatesAndHoldsEveryKey) {
  const std::string path = std::string(APPBAN_SOURCE_DIR) + "/data/server.example.toml";
  auto config = LoadServerConfigFile(path);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_TRUE(ValidateConfig(*config).ok()) << ValidateConfig(*config).ToString();
  // The example promises the defaults: it must load to exactly what no file gives.
  ServerConfig defaults = Parsed("");
  EXPECT_EQ(config->data_dir, defaults.data_dir);
  EXPECT_EQ(config->listen.port, defaults.listen.port);
  EXPECT_EQ(config->StaleAfterSeconds(), defaults.StaleAfterSeconds());
  EXPECT_EQ(config->limits.apk_max_bytes, defaults.limits.apk_max_bytes);
  EXPECT_EQ(config->listen.max_connections, defaults.listen.max_connections);
  EXPECT_EQ(config->timeouts.idle_seconds, defaults.timeouts.idle_seconds);

  toml::table table = toml::parse_file(path);
  for (const std::string& key : KnownConfigKeys()) {
    EXPECT_TRUE(table.at_path(key)) << "data/server.example.toml lacks " << key;
  }
}

TEST(ServerConfig, DocsDescribeEveryKey) {
  const std::string docs = ReadSourceFile("docs/server-config.md");
  ASSERT_FALSE(docs.empty());
  for (const std::string& key : KnownConfigKeys()) {
    EXPECT_NE(docs.find("`" + key + "`"), std::string::npos) << "docs/server-config.md does not document " << key;
  }
}

TEST(ServerConfig, UnknownKeysAreErrorsNamingFileLineAndKey) {
  EXPECT_EQ(ParseError("[listen]\nport = 9000\ninsecure_plain_htp = true\n"),
            "server.toml:3: listen.insecure_plain_htp: unknown key");
  EXPECT_EQ(ParseError("datadir = \"/tmp/x\"\n"), "server.toml:1: datadir: unknown key");
  EXPECT_EQ(ParseError("\n[lisen]\nport = 1\n"), "server.toml:2: lisen: unknown key");
  // A dotted key reaches into a section the same way a [section] header does.
  EXPECT_EQ(ParseError("listen.prot = 1\n"), "server.toml:1: listen.prot: unknown key");
  // Sections hold no sub-tables.
  EXPECT_EQ(ParseError("[listen.extra]\nport = 1\n"), "server.toml:1: listen.extra: unknown key");
}

TEST(ServerConfig, WrongTypesAreErrorsNamingTheKey) {
  EXPECT_EQ(ParseError("[listen]\nport = \"8443\"\n"), "server.toml:2: listen.port: must be an integer");
  EXPECT_EQ(ParseError("[listen]\ntls = \"yes\"\n"), "server.toml:2: listen.tls: must be true or false");
  EXPECT_EQ(ParseError("workers = 1.5\n"), "server.toml:1: workers: must be an integer");
  EXPECT_EQ(ParseError("listen = 5\n"), "server.toml:1: listen: must be a table ([listen])");
  EXPECT_EQ(ParseError("[listen]\nserver_names = \"a.example\"\n"),
            "server.toml:2: listen.server_names: must be an array of strings");
  EXPECT_EQ(ParseError("[log]\nformat = \"xml\"\n"), "server.toml:2: log.format: \"xml\" is not one of text, json");
  EXPECT_EQ(ParseError("[log]\nlevel = \"verbose\"\n"),
            "server.toml:2: log.level: \"verbose\" is not one of trace, debug, info, warn, error");
}

TEST(ServerConfig, OutOfRangeValuesAreErrors) {
  EXPECT_EQ(ParseError("[listen]\nport = 70000\n"), "server.toml:2: listen.port: 70000 is outside 0..65535");
  EXPECT_EQ(ParseError("[listen]\nport = -1\n"), "server.toml:2: listen.port: -1 is outside 0..65535");
  EXPECT_NE(ParseError("[limits]\njson_max_bytes = 0\n").find("limits.json_max_bytes: 0 is outside"),
            std::string::npos);
  EXPECT_NE(ParseError("[devices]\ncheckin_interval_seconds = 1\n").find("devices.checkin_interval_seconds"),
            std::string::npos);
  EXPECT_NE(ParseError("data_dir = \"\"\n").find("server.toml:1: data_dir: must not be empty"), std::string::npos);
  EXPECT_NE(
      ParseError("[listen]\naddress = \"localhost\"\n").find("listen.address: \"localhost\" is not an IP address"),
      std::string::npos);
  EXPECT_NE(ParseError("[listen]\nserver_names = [\"bad name\"]\n").find("\"bad name\" is neither"), std::string::npos);
}

TEST(ServerConfig, SyntaxErrorsNameFileAndLine) {
  EXPECT_EQ(ParseError("[listen]\nport = \n").rfind("server.toml:2: ", 0), 0u);
  EXPECT_EQ(ParseError("port = 1\nport = 2\n").rfind("server.toml:2: ", 0), 0u);  // duplicate key
}

TEST(ServerConfig, OversizedAndDeeplyDottedFilesAreRefusedWithoutCrashing) {
  std::string big(ConfigLimits::kMaxFileBytes + 1, '#');
  EXPECT_NE(ParseError(big).find("larger than"), std::string::npos);
  // The longest dotted key the size limit admits: must come back as an error, not a stack overflow.
  std::string dotted = "a";
  while (dotted.size() + 2 + 4 < ConfigLimits::kMaxFileBytes) dotted += ".a";
  dotted += " = 1";
  EXPECT_NE(ParseError(dotted).find("server.toml:1: a: unknown key"), std::string::npos);
}

TEST(ServerConfig, MissingFileIsNamed) {
  auto config = LoadServerConfigFile("/nonexistent/server.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("/nonexistent/server.toml"), std::string::npos);
}

TEST(ServerConfig, PlainHttpNeedsLoopbackAndExplicitConsent) {
  ServerConfig config = Parsed("[listen]\ntls = false\naddress = \"127.0.0.1\"\n");
  Status status = ValidateConfig(config);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("listen.insecure_plain_http"), std::string::npos) << status.message();
  EXPECT_NE(status.message().rfind("server.toml (with flags): listen.tls:", 0), std::string::npos) << status.message();

  config.listen.insecure_plain_http = true;
  for (const char* loopback : {"127.0.0.1", "127.1.2.3", "::1"}) {
    config.listen.address = loopback;
    EXPECT_TRUE(ValidateConfig(config).ok()) << loopback << ": " << ValidateConfig(config).ToString();
  }
  for (const char* exposed : {"0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "192.168.1.10"}) {
    config.listen.address = exposed;
    status = ValidateConfig(config);
    ASSERT_FALSE(status.ok()) << exposed;
    EXPECT_NE(status.message().find("loopback"), std::string::npos) << status.message();
    EXPECT_NE(status.message().find(exposed), std::string::npos) << status.message();
  }
  // insecure_plain_http alone never turns TLS off.
  config.listen.tls = true;
  config.listen.address = "0.0.0.0";
  EXPECT_TRUE(ValidateConfig(config).ok());
}

TEST(ServerConfig, FlagsOverrideTheFileAndDerivedValuesFollow) {
  ServerConfig config = Parsed("data_dir = \"/srv/appban\"\n[devices]\ncheckin_interval_seconds = 600\n");
  EXPECT_EQ(config.DatabasePath(), "/srv/appban/appban.db");
  EXPECT_EQ(config.StaleAfterSeconds(), 1800u);
  config.data_dir = std::string(kLocalDataDir);  // what a --data-dir flag does
  EXPECT_EQ(config.DatabasePath(), "./appban-data/appban.db");
  config.database = "/other/fleet.db";
  EXPECT_EQ(config.DatabasePath(), "/other/fleet.db");
  EXPECT_TRUE(ValidateConfig(config).ok());

  config.listen.port = 0;  // any free port (tests)
  EXPECT_TRUE(ValidateConfig(config).ok());
  config.timeouts.body_seconds = 0;  // a flag may break a range the file respected
  Status status = ValidateConfig(config);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("timeouts.body_seconds: 0 is outside 1..3600"), std::string::npos)
      << status.message();
}

TEST(ServerConfig, APostgresqlDatabaseTakesAPasswordFileASqliteFileDoesNot) {
  ServerConfig config = Parsed(
      "database = \"postgresql://appban@db.example.org/appban?sslmode=verify-full\"\n"
      "database_password_file = \"/etc/appban/db-password\"\n");
  EXPECT_TRUE(config.UsesPostgres());
  EXPECT_EQ(config.DatabasePath(), "postgresql://appban@db.example.org/appban?sslmode=verify-full");
  EXPECT_TRUE(ValidateConfig(config).ok());
  // The password file is read when the stores are opened: a missing one is named.
  auto target = config.Database();
  ASSERT_FALSE(target.ok());
  EXPECT_NE(target.status().message().find("/etc/appban/db-password"), std::string::npos);

  config.database = "/var/lib/appban/appban.db";
  EXPECT_FALSE(config.UsesPostgres());
  Status refused = ValidateConfig(config);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("database_password_file: applies to a PostgreSQL database only"), std::string::npos)
      << refused.message();
  // A password written into the URI never reaches a message.
  EXPECT_EQ((store::DatabaseTarget{"postgresql://appban:s3cret@db.example.org:5432/appban?sslmode=require"}.Describe()),
            "postgresql://appban@db.example.org:5432/appban?sslmode=require");
}

TEST(ServerConfig, CrossFieldRules) {
  ServerConfig config = Parsed("[listen]\ncert_file = \"/etc/appban/server.pem\"\n");
  Status status = ValidateConfig(config);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("listen.key_file: listen.cert_file and listen.key_file must be given together"),
            std::string::npos)
      << status.message();
  config.listen.key_file = "/etc/appban/server.key";
  EXPECT_TRUE(ValidateConfig(config).ok());
  EXPECT_FALSE(config.UsesGeneratedCertificate());

  config = Parsed("[devices]\ncheckin_interval_seconds = 600\nstale_after_seconds = 300\n");
  status = ValidateConfig(config);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("devices.stale_after_seconds: 300 is shorter"), std::string::npos)
      << status.message();

  config = Parsed("[devices]\ncheckin_interval_seconds = 86400\n[policy]\nbundle_validity_days = 2\n");
  status = ValidateConfig(config);
  ASSERT_FALSE(status.ok());  // stale after 3 days, bundles expire after 2
  EXPECT_NE(status.message().find("policy.bundle_validity_days"), std::string::npos) << status.message();

  // Hardening item 12: the longest validity a publish may ask for is a named, bounded setting.
  EXPECT_EQ(Parsed("").policy.max_bundle_validity_days, 90u);
  config = Parsed("[policy]\nbundle_validity_days = 120\n");
  status = ValidateConfig(config);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("above policy.max_bundle_validity_days"), std::string::npos) << status.message();
  EXPECT_TRUE(ValidateConfig(Parsed("[policy]\nbundle_validity_days = 120\nmax_bundle_validity_days = 180\n")).ok());
}

TEST(ServerConfig, LoopbackAndAddressClassification) {
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackAddress("127.255.255.254"));
  EXPECT_TRUE(IsLoopbackAddress("::1"));
  EXPECT_TRUE(IsLoopbackAddress("::ffff:127.0.0.1"));
  EXPECT_FALSE(IsLoopbackAddress("localhost"));
  EXPECT_FALSE(IsLoopbackAddress("126.255.255.255"));
  EXPECT_FALSE(IsLoopbackAddress("::"));
  EXPECT_FALSE(IsLoopbackAddress("::2"));
  EXPECT_FALSE(IsLoopbackAddress("127.0.0.1 "));
  EXPECT_FALSE(IsLoopbackAddress(""));
  EXPECT_TRUE(IsIpAddress("fe80::1"));
  EXPECT_FALSE(IsIpAddress("appban.example"));
}

TEST(ServerConfig, DefaultServerNamesCoverLoopback) {
  ServerConfig config;
  std::vector<std::string> names = config.ServerNames();
  ASSERT_GE(names.size(), 2u);
  EXPECT_EQ(names[names.size() - 2], "127.0.0.1");
  EXPECT_EQ(names.back(), "::1");
  config.listen.server_names = {"appban.example.gov"};
  EXPECT_EQ(config.ServerNames(), std::vector<std::string>{"appban.example.gov"});
}

TEST(ServerConfig, WorkerCountFitsConnectionsUnderTheDescriptorLimit) {
  ServerConfig config;
  config.listen.max_connections = 100'000;
  // 20,000 descriptors per process less 64 reserved = 19,936 connections; 100,000 need 6 workers.
  EXPECT_EQ(WorkerCount(config, 2, 20'000), 6u);
  EXPECT_EQ(WorkerCount(config, 8, 20'000), 8u);  // never fewer than the cores
  config.listen.max_connections = 1000;
  EXPECT_EQ(WorkerCount(config, 2, 20'000), 2u);
  config.workers = 3;
  EXPECT_EQ(WorkerCount(config, 2, 20'000), 3u);  // explicit wins
}

}  // namespace
}  // namespace appban::server

namespace appban::server {
namespace {

// The [mdm] part is read by mdm/config (its own tests cover every key); here: the server's file
// accepts it, strictly, and the docs name every key.
TEST(ServerConfig, MdmConnectorsAreReadFromTheSameFile) {
  ServerConfig config = Parsed(
      "data_dir = \"/srv/appban\"\n"
      "[[mdm.amapi]]\nname = \"health\"\nenterprise = \"enterprises/LC00abc\"\n"
      "service_account_key_file = \"/etc/appban/amapi.json\"\n"
      "[[mdm.amapi.policies]]\nname = \"default\"\n");
  ASSERT_EQ(config.mdm.amapi.size(), 1u);
  EXPECT_EQ(config.mdm.amapi[0].policies[0].name, "enterprises/LC00abc/policies/default");
  EXPECT_TRUE(Parsed("").mdm.amapi.empty());
  EXPECT_EQ(ParseError("[mdm]\nblackberry = true\n"), "server.toml:2: mdm.blackberry: unknown key");
  EXPECT_EQ(Parsed("").mdm.sync.interval_seconds, 300);
  EXPECT_EQ(Parsed("[mdm.sync]\ninterval_seconds = 60\nrequest_attempts = 2\n").mdm.sync.interval_seconds, 60);
  EXPECT_NE(ParseError("[mdm.sync]\ninterval_seconds = 1\n").find("mdm.sync.interval_seconds"), std::string::npos);
  EXPECT_EQ(ParseError("[mdm.sync]\nevery = 1\n"), "server.toml:2: mdm.sync.every: unknown key");
  const std::string docs = ReadSourceFile("docs/server-config.md");
  for (const std::string& key : mdm::KnownMdmKeys()) {
    EXPECT_NE(docs.find("`" + key + "`"), std::string::npos) << "docs/server-config.md does not document " << key;
  }
}

TEST(ServerConfig, IdentityQuorumIsBoundedAndKeyRotationDefaultsToIt) {
  ServerConfig defaults = Parsed("");
  EXPECT_EQ(defaults.identity.quorum, 2);
  EXPECT_EQ(defaults.identity.KeyRotationQuorum(), 2);
  ServerConfig three = Parsed("[identity]\nquorum = 3\n");
  EXPECT_EQ(three.identity.KeyRotationQuorum(), 3);
  ServerConfig keys = Parsed("[identity]\nkey_rotation_quorum = 4\n");
  EXPECT_EQ(keys.identity.quorum, 2);
  EXPECT_EQ(keys.identity.KeyRotationQuorum(), 4);
  EXPECT_NE(ParseError("[identity]\nquorum = 1\n").find("identity.quorum"), std::string::npos);
  EXPECT_NE(ParseError("[identity]\nquorum = 10\n").find("outside"), std::string::npos);
  EXPECT_NE(ParseError("[identity]\nkey_rotation_quorum = \"3\"\n").find("key_rotation_quorum"), std::string::npos);
  EXPECT_NE(ParseError("[identity]\nquorums = 3\n").find("quorums"), std::string::npos);
}

}  // namespace
}  // namespace appban::server
