// Test helpers for the Intune connector tests: a throw-away app registration (client secret file,
// or a self-signed certificate and its key), the Intune emulator started against the specs
// adopted in tests/specs/intune/, and a connector configured against it. Test-only.
#pragma once

#include <openssl/x509.h>

#include "appban/mdm/intune_connector.h"
#include "appban/mdm/mdm_test_support.h"
#include "intune_emulator.h"

namespace appban::mdm::testing {

inline constexpr char kTenant[] = "0b5e3c1a-1111-4222-8333-444455556666";
inline constexpr char kClientId[] = "7d1c0f2e-aaaa-4bbb-8ccc-ddddeeeeffff";
inline constexpr char kSecret[] = "Qx8~emulator.client-secret_value";
inline constexpr char kStaffGroup[] = "5f0c1d2e-0000-4000-8000-00000000000a";
inline constexpr char kOtherGroup[] = "5f0c1d2e-0000-4000-8000-00000000000b";

// A self-signed certificate for TestKey(), as an app registration's certificate credential.
// Made once per process: its validity is relative to the clock, so two certificates made a second
// apart differ, and the one the emulator registers must be the one the connector signs with.
inline std::string MakeTestCertificatePem() {
  BIO* bio = BIO_new_mem_buf(TestKey().private_pem.data(), static_cast<int>(TestKey().private_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  X509* certificate = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(certificate), 1);
  X509_gmtime_adj(X509_getm_notBefore(certificate), -3600);
  X509_gmtime_adj(X509_getm_notAfter(certificate), 86400);
  X509_set_pubkey(certificate, key);
  X509_NAME* name = X509_get_subject_name(certificate);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("appban-intune"), -1, -1,
                             0);
  X509_set_issuer_name(certificate, name);
  X509_sign(certificate, key, EVP_sha256());
  BIO* out = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(out, certificate);
  char* data = nullptr;
  long length = BIO_get_mem_data(out, &data);
  std::string pem(data, static_cast<size_t>(length));
  BIO_free(out);
  X509_free(certificate);
  EVP_PKEY_free(key);
  return pem;
}
inline const std::string& TestCertificatePem() {
  static const std::string pem = MakeTestCertificatePem();
  return pem;
}

inline std::string IntuneSpecsDir() { return std::string(APPBAN_SOURCE_DIR) + "/tests/specs/intune"; }

inline Json IosStoreApp(const std::string& name, const std::string& bundle) {
  return Json{{"@odata.type", "#microsoft.graph.iosStoreApp"},
              {"displayName", name},
              {"publisher", "vendor"},
              {"bundleId", bundle},
              {"appStoreUrl", "https://apps.apple.com/app/id1"}};
}

inline Json AndroidStoreApp(const std::string& name, const std::string& package) {
  return Json{{"@odata.type", "#microsoft.graph.androidStoreApp"},
              {"displayName", name},
              {"packageId", package},
              {"appStoreUrl", "https://play.google.com/store/apps/details?id=" + package}};
}

inline Json ManagedDevice(const std::string& id, const std::string& os, bool supervised) {
  return Json{{"id", id},
              {"deviceName", "phone-" + id},
              {"operatingSystem", os},
              {"osVersion", "17.5"},
              {"complianceState", "compliant"},
              {"lastSyncDateTime", "2026-12-05T04:00:00.1234567Z"},
              {"userPrincipalName", "user-" + id + "@ministry.example"},
              {"serialNumber", "SN" + id},
              {"isSupervised", supervised},
              {"managedDeviceOwnerType", "company"}};
}

struct IntuneFixture {
  TempDir dir;
  std::unique_ptr<appban::testing::IntuneEmulator> emulator;
  IntuneConnectorConfig config;
  std::vector<std::chrono::milliseconds> sleeps;

  explicit IntuneFixture(appban::testing::IntuneEmulatorOptions options = {}) {
    options.specs_dir = IntuneSpecsDir();
    options.tenant_id = kTenant;
    options.client_id = kClientId;
    if (options.client_secret.empty()) options.client_secret = kSecret;
    options.certificate_pem = TestCertificatePem();
    auto started = appban::testing::IntuneEmulator::Start(options);
    EXPECT_TRUE(started.ok()) << started.status().ToString();
    emulator = std::move(*started);
    const std::string secret_path = dir.path() + "/intune.secret";
    EXPECT_TRUE(WriteFileAtomically(secret_path, std::string(kSecret) + "\n", 0600).ok());
    config.name = "ministry";
    config.tenant_id = kTenant;
    config.client_id = kClientId;
    config.client_secret_file = secret_path;
    config.graph_base_url = emulator->base_url();
    config.login_base_url = emulator->base_url();
    config.device_groups = {"staff"};
    config.targets = {{kStaffGroup, {"staff"}, "c0mp1", "c0nf1"}};
  }

  void UseCertificate() {
    config.client_secret_file.clear();
    config.certificate_file = dir.path() + "/intune.crt";
    config.private_key_file = dir.path() + "/intune.key";
    EXPECT_TRUE(WriteFileAtomically(config.certificate_file, TestCertificatePem(), 0644).ok());
    EXPECT_TRUE(WriteFileAtomically(config.private_key_file, TestKey().private_pem, 0600).ok());
  }

  IntuneConnectorOptions Options() {
    IntuneConnectorOptions options;
    options.state_dir = dir.path() + "/mdm";
    options.retry.max_attempts = 4;
    options.retry.initial_delay = std::chrono::milliseconds(1);
    options.retry.sleep = [this](std::chrono::milliseconds delay) { sleeps.push_back(delay); };
    return options;
  }

  std::unique_ptr<IntuneConnector> Connector() {
    auto connector = IntuneConnector::Create(config, Options());
    EXPECT_TRUE(connector.ok()) << connector.status().ToString();
    return connector.ok() ? std::move(*connector) : nullptr;
  }
};

}  // namespace appban::mdm::testing
