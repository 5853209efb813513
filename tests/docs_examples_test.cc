// The examples a new user copies from the documentation run as printed against a fresh server:
// the rule file the README's tour posts (examples/wechat-rule.json) and every request example in
// docs/openapi.yaml that a fresh server can satisfy. The OpenAPI example for proposing a rule once
// cited an assessment no fresh server holds and was refused; this is the test that would have said so.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "appban/common/json.h"
#include "appban/net/client.h"
#include "support/server_process.h"
#include "support/test_support.h"

namespace appban {
namespace {

namespace fs = std::filesystem;
using testing::ServerProcess;
using testing::TempDir;

fs::path SourceDir() { return APPBAN_SOURCE_DIR; }

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A YAML example as the JSON a client sends (scalars that look like numbers or booleans become
// them, as YAML 1.2 core schema reads them; everything else is a string).
Json ToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      Json out = Json::object();
      for (const auto& entry : node) out[entry.first.as<std::string>()] = ToJson(entry.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      for (const auto& item : node) out.push_back(ToJson(item));
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string text = node.Scalar();
      if (node.Tag() == "!") return text;  // quoted in the document
      if (text == "true" || text == "false") return text == "true";
      if (text == "null") return nullptr;
      int64_t number = 0;
      std::istringstream parse(text);
      if (parse >> number && parse.eof()) return number;
      return text;
    }
    default:
      return nullptr;
  }
}

// The node at `keys` below `node`, or an invalid (false) node when any of them is missing:
// yaml-cpp throws when indexing past a missing key.
// (reset, not assignment: assigning a yaml-cpp node writes through to the document it refers to.)
YAML::Node Child(const YAML::Node& start, std::initializer_list<const char*> keys) {
  YAML::Node node;
  node.reset(start);
  for (const char* key : keys) {
    if (!node || !node.IsMap() || !node[key]) return YAML::Node(YAML::NodeType::Undefined);
    YAML::Node next = node[key];
    node.reset(next);
  }
  return node;
}

// Operations whose printed example needs what no fresh server holds, and why. Anything else with
// a request example must be accepted as printed.
const std::map<std::string, std::string> kNeedsMoreThanAFreshServer = {
    {"addWaiver", "names an enrolled device"},
    {"addGroupDevices", "names an enrolled device"},
    {"revokeDevice", "names an enrolled device"},
    {"approveRule", "needs a second person signed in (the two-person rule)"},
    {"revokeRule", "needs a published rule and a second person"},
    {"approveChange", "needs a pending change and a second person"},
    {"grantUserRole", "needs a second user"},
    {"createSession", "exchanges a token the example cannot print"},
};

class DocsExamplesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = ServerProcess::Start(dir_.path(), {"--insecure-plain-http", "--workers", "1"});
    ASSERT_TRUE(started.has_value());
    server_.emplace(std::move(*started));
    client_.emplace(server_->Client());
  }
  net::HttpResponse Send(const std::string& method, const std::string& path, const std::string& body) {
    auto response =
        client_->Request(method, path, body,
                         {{"authorization", "Bearer " + server_->admin_token()}, {"content-type", "application/json"}});
    EXPECT_TRUE(response.ok()) << method << " " << path << ": " << response.status().ToString();
    return response.ok() ? *response : net::HttpResponse{};
  }

  TempDir dir_;
  std::optional<ServerProcess> server_;
  std::optional<net::HttpClient> client_;
};

TEST_F(DocsExamplesTest, TheReadmesRuleFileIsAcceptedAsPrinted) {
  const std::string readme = ReadText(SourceDir() / "README.md");
  const std::string cited = "-d @examples/wechat-rule.json";
  ASSERT_NE(readme.find(cited), std::string::npos) << "the README's tour no longer posts the example file";
  const fs::path file = SourceDir() / "examples" / "wechat-rule.json";
  ASSERT_TRUE(fs::exists(file)) << "the README posts a file the repository does not hold";
  net::HttpResponse stored = Send("POST", "/v1/admin/rules", ReadText(file));
  ASSERT_EQ(stored.status, 201) << stored.body;
  Json rule = Json::parse(stored.body);
  EXPECT_EQ(rule["id"], "gc-wechat-2023");
  EXPECT_EQ(rule["state"], "draft");
  EXPECT_EQ(rule["targets"].size(), 3u);
}

TEST_F(DocsExamplesTest, EveryOpenApiRequestExampleAFreshServerCanHoldIsAccepted) {
  YAML::Node document = YAML::LoadFile((SourceDir() / "docs" / "openapi.yaml").string());
  std::set<std::string> ran;
  std::set<std::string> skipped;
  for (const auto& path_entry : document["paths"]) {
    const std::string path_template = path_entry.first.as<std::string>();
    for (const auto& operation_entry : path_entry.second) {
      const std::string method = operation_entry.first.as<std::string>();
      const YAML::Node operation = operation_entry.second;
      if (!operation.IsMap() || !operation["operationId"]) continue;
      const std::string id = operation["operationId"].as<std::string>();
      YAML::Node example = Child(operation, {"requestBody", "content", "application/json", "example"});
      if (!example) continue;
      if (kNeedsMoreThanAFreshServer.count(id)) {
        skipped.insert(id);
        continue;
      }
      // Path parameters take the example their own schema prints.
      std::string path = path_template;
      const YAML::Node parameters = Child(operation, {"parameters"});
      for (const auto& parameter : parameters ? parameters : YAML::Node(YAML::NodeType::Sequence)) {
        if (Child(parameter, {"in"}).Scalar() != "path") continue;
        const std::string name = Child(parameter, {"name"}).Scalar();
        const YAML::Node printed = Child(parameter, {"schema", "example"});
        ASSERT_TRUE(printed) << id << ": path parameter " << name << " prints no example";
        ASSERT_NE(path.find("{" + name + "}"), std::string::npos) << id << ": " << name;
        path.replace(path.find("{" + name + "}"), name.size() + 2, printed.Scalar());
      }
      std::string upper = method;
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      net::HttpResponse answer = Send(upper, path, ToJson(example).dump());
      EXPECT_GE(answer.status, 200) << id << " " << upper << " " << path << ": " << answer.body;
      EXPECT_LT(answer.status, 300) << id << " " << upper << " " << path << ": " << answer.body;
      ran.insert(id);
    }
  }
  // The examples of the everyday requests ran (document order: the group exists before the
  // enrolment tokens bound to it are issued); the rest are named above with their reason.
  for (const char* expected : {"proposeRule", "createGroup", "publish", "createEnrollmentTokens", "createApiToken"}) {
    EXPECT_TRUE(ran.count(expected)) << expected << " has no request example any more";
  }
  for (const auto& [id, reason] : kNeedsMoreThanAFreshServer) {
    (void)reason;
    EXPECT_FALSE(ran.count(id)) << id;
  }
  std::cout << "[ examples ] " << ran.size() << " request examples accepted as printed, " << skipped.size()
            << " need more than a fresh server\n";
}

}  // namespace
}  // namespace appban
