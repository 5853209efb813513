// Test helpers for the MDM connector tests: a throw-away service account (an RSA key written to a
// 0600 key file), the AMAPI emulator started against the spec adopted in tests/specs/amapi/, and
// bundles compiled from rules. Test-only (included by *_test.cc).
#pragma once

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "amapi_emulator.h"
#include "appban/common/file.h"
#include "appban/mdm/amapi_connector.h"
#include "appban/policy/bundle.h"

namespace appban::mdm::testing {

inline constexpr char kEnterprise[] = "enterprises/LC00emu";
inline constexpr char kClientEmail[] = "appban-connector@gov-mdm.iam.gserviceaccount.com";

inline UnixSeconds Now() { return static_cast<UnixSeconds>(std::time(nullptr)); }

struct RsaKeyPair {
  std::string private_pem;  // PKCS#8
  std::string public_pem;   // SubjectPublicKeyInfo
};

inline RsaKeyPair MakeRsaKey() {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  RsaKeyPair pair;
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  pair.private_pem.assign(data, static_cast<size_t>(length));
  BIO_free(bio);
  bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key);
  length = BIO_get_mem_data(bio, &data);
  pair.public_pem.assign(data, static_cast<size_t>(length));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pair;
}

// One RSA key per test binary: generating 2048-bit keys costs ~50 ms each.
inline const RsaKeyPair& TestKey() {
  static const RsaKeyPair key = MakeRsaKey();
  return key;
}

inline std::string ServiceAccountJson(const std::string& token_uri,
                                      const std::string& private_pem = TestKey().private_pem) {
  return Json{{"type", "service_account"},  {"project_id", "gov-mdm"},      {"private_key_id", "0123456789abcdef"},
              {"private_key", private_pem}, {"client_email", kClientEmail}, {"client_id", "1234567890"},
              {"token_uri", token_uri}}
      .dump(2);
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "appban-mdm-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline policy::Rule MakeRule(const std::string& id, std::vector<policy::Target> targets,
                             policy::Action action = policy::Action::kRemove, std::vector<std::string> scope = {}) {
  policy::Rule rule;
  rule.id = id;
  rule.title = "ban " + id;
  rule.action = action;
  rule.targets = std::move(targets);
  rule.scope_groups = std::move(scope);
  rule.state = policy::RuleState::kPublished;
  return rule;
}

inline policy::Target Android(const std::string& package) {
  return *policy::MakeTarget(policy::TargetKind::kAndroidPackage, package);
}

inline policy::Target Ios(const std::string& bundle_id) {
  return *policy::MakeTarget(policy::TargetKind::kIosBundle, bundle_id);
}

inline policy::Waiver GroupWaiver(const std::string& id, const std::string& rule, const std::string& group) {
  policy::Waiver waiver;
  waiver.id = id;
  waiver.rule_id = rule;
  waiver.subject_kind = policy::WaiverSubject::kGroup;
  waiver.subject = group;
  waiver.justification = "liaison office must keep contact with the vendor";
  waiver.approved_by = "ciso";
  waiver.created_at = Now() - 1000;
  waiver.expires_at = Now() + 86400;
  return waiver;
}

inline policy::Bundle MakeBundle(std::vector<policy::Rule> rules, int64_t version = 1,
                                 std::vector<policy::Waiver> waivers = {}, std::vector<policy::Vendor> vendors = {}) {
  policy::BundleInputs inputs{std::move(rules), std::move(waivers), std::move(vendors),
                              version,          Now() - 100,        Now() + 86400};
  auto bundle = policy::CompileBundle(inputs);
  EXPECT_TRUE(bundle.ok()) << bundle.status().ToString();
  return bundle.ok() ? *bundle : policy::Bundle{};
}

inline std::string SpecPath() {
  return std::string(APPBAN_SOURCE_DIR) + "/tests/specs/amapi/androidmanagement-v1.json";
}

// An emulator, a key file pointing at it, and a connector configuration managing `policies`.
struct Fixture {
  TempDir dir;
  std::unique_ptr<appban::testing::AmapiEmulator> emulator;
  AmapiConnectorConfig config;
  std::vector<std::chrono::milliseconds> sleeps;  // back-off the connector asked for

  explicit Fixture(std::vector<ManagedPolicy> policies, appban::testing::AmapiEmulatorOptions options = {}) {
    options.spec_path = SpecPath();
    options.service_account_public_key_pem = TestKey().public_pem;
    options.client_email = kClientEmail;
    auto started = appban::testing::AmapiEmulator::Start(options);
    EXPECT_TRUE(started.ok()) << started.status().ToString();
    emulator = std::move(*started);
    const std::string key_path = dir.path() + "/sa.json";
    EXPECT_TRUE(WriteFileAtomically(key_path, ServiceAccountJson(emulator->token_uri()), 0600).ok());
    config.name = "health";
    config.enterprise = kEnterprise;
    config.service_account_key_file = key_path;
    config.base_url = emulator->base_url();
    config.policies = std::move(policies);
  }

  ConnectorOptions Options() {
    ConnectorOptions options;
    options.state_dir = dir.path() + "/mdm";
    options.retry.max_attempts = 4;
    options.retry.initial_delay = std::chrono::milliseconds(1);
    options.retry.sleep = [this](std::chrono::milliseconds delay) { sleeps.push_back(delay); };
    return options;
  }

  std::unique_ptr<AmapiConnector> Connector() {
    auto connector = AmapiConnector::Create(config, Options());
    EXPECT_TRUE(connector.ok()) << connector.status().ToString();
    return connector.ok() ? std::move(*connector) : nullptr;
  }
};

inline std::string PolicyName(const std::string& id) { return std::string(kEnterprise) + "/policies/" + id; }

inline Json AppReport(const std::string& package, const std::string& state = "INSTALLED") {
  return Json{{"packageName", package},
              {"versionName", "8.0.40"},
              {"state", state},
              {"applicationSource", "INSTALLED_FROM_PLAY_STORE"}};
}

inline Json Device(const std::string& id, const std::string& policy, std::vector<Json> reports) {
  return Json{{"name", std::string(kEnterprise) + "/devices/" + id},
              {"policyName", policy},
              {"appliedPolicyName", policy},
              {"appliedPolicyVersion", "1"},
              {"policyCompliant", true},
              {"state", "ACTIVE"},
              {"managementMode", "DEVICE_OWNER"},
              {"applicationReports", std::move(reports)}};
}

}  // namespace appban::mdm::testing
