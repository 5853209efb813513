// Test helpers for the Apple MDM connector tests: a throw-away profile-signing identity (a
// self-signed certificate and its key, 0600), the Apple emulator started against the schema
// adopted in tests/specs/apple/, a webhook receiver writing the connector's results file, and
// iOS bans. Test-only (included by *_test.cc).
#pragma once

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "appban/common/file.h"
#include "appban/mdm/apple_connector.h"
#include "appban/mdm/apple_webhook.h"
#include "appban/mdm/mdm_test_support.h"
#include "apple_emulator.h"

namespace appban::mdm::testing {

inline constexpr char kWeChat[] = "com.tencent.xin";
inline constexpr char kTikTok[] = "com.zhiliaoapp.musically";
inline constexpr char kApiKey[] = "emu-api-key-7c1d";

struct SigningFiles {
  std::string certificate_pem;
  std::string key_pem;
};

// A self-signed P-256 certificate "CN=appban profile signing (test)" and its key.
inline SigningFiles MakeSigningIdentity() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 4242);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400L * 365);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("appban profile signing (test)"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Test CIO Office"), -1, -1,
                             0);
  X509_set_issuer_name(cert, name);
  X509_sign(cert, key, EVP_sha256());
  SigningFiles files;
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  files.certificate_pem.assign(data, static_cast<size_t>(length));
  BIO_free(bio);
  bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  length = BIO_get_mem_data(bio, &data);
  files.key_pem.assign(data, static_cast<size_t>(length));
  BIO_free(bio);
  X509_free(cert);
  EVP_PKEY_free(key);
  return files;
}

inline const SigningFiles& TestSigning() {
  static const SigningFiles files = MakeSigningIdentity();
  return files;
}

inline std::string AppleSpecDir() { return std::string(APPBAN_SOURCE_DIR) + "/tests/specs/apple/mdm"; }

inline appban::testing::EmulatedAppleDevice Phone(const std::string& udid, const std::string& os, bool supervised,
                                                  std::vector<appban::testing::EmulatedApp> apps) {
  appban::testing::EmulatedAppleDevice device;
  device.udid = udid;
  device.os_version = os;
  device.supervised = supervised;
  device.device_name = "Phone " + udid.substr(0, 4);
  device.apps = std::move(apps);
  return device;
}

inline appban::testing::EmulatedApp App(const std::string& bundle_id, bool managed, const std::string& name = "") {
  return {bundle_id, name.empty() ? bundle_id : name, "8.0.50", managed};
}

// The emulator with `devices`, a webhook receiver, key/identity/devices files, a connector config.
struct AppleFixture {
  TempDir dir;
  std::unique_ptr<appban::testing::AppleEmulator> emulator;
  std::unique_ptr<AppleWebhookReceiver> receiver;
  AppleConnectorConfig config;
  std::vector<std::chrono::milliseconds> sleeps;

  AppleFixture(std::vector<appban::testing::EmulatedAppleDevice> devices, const std::string& devices_file) {
    appban::testing::AppleEmulatorOptions options;
    options.spec_dir = AppleSpecDir();
    options.api_key = kApiKey;
    auto started = appban::testing::AppleEmulator::Start(options);
    EXPECT_TRUE(started.ok()) << started.status().ToString();
    emulator = std::move(*started);
    for (auto& device : devices) emulator->PutDevice(std::move(device));
    EXPECT_TRUE(::mkdir((dir.path() + "/mdm").c_str(), 0700) == 0);
    config.name = "ios";
    config.server_url = emulator->base_url();
    config.api_key_file = dir.path() + "/api-key";
    config.devices_file = dir.path() + "/devices.txt";
    config.signing_certificate_file = dir.path() + "/signing.pem";
    config.signing_key_file = dir.path() + "/signing.key";
    config.profile_identifier = "gov.example.appban.restrictions";
    config.organization = "Example CIO Office";
    EXPECT_TRUE(WriteFileAtomically(config.api_key_file, std::string(kApiKey) + "\n", 0600).ok());
    EXPECT_TRUE(WriteFileAtomically(config.devices_file, devices_file, 0644).ok());
    EXPECT_TRUE(WriteFileAtomically(config.signing_certificate_file, TestSigning().certificate_pem, 0644).ok());
    EXPECT_TRUE(WriteFileAtomically(config.signing_key_file, TestSigning().key_pem, 0600).ok());
    AppleWebhookOptions webhook;
    webhook.results_path = dir.path() + "/mdm/apple-ios-results.json";
    webhook.path_secret = "s3cret";
    auto listening = AppleWebhookReceiver::Start("127.0.0.1", 0, webhook);
    EXPECT_TRUE(listening.ok()) << listening.status().ToString();
    receiver = std::move(*listening);
    emulator->set_webhook_url("http://127.0.0.1:" + std::to_string(receiver->port()) + receiver->path());
  }

  AppleConnectorOptions Options() {
    AppleConnectorOptions options;
    options.state_dir = dir.path() + "/mdm";
    options.retry.max_attempts = 4;
    options.retry.initial_delay = std::chrono::milliseconds(1);
    options.retry.sleep = [this](std::chrono::milliseconds delay) { sleeps.push_back(delay); };
    return options;
  }

  std::unique_ptr<AppleConnector> Connector() {
    auto connector = AppleConnector::Create(config, Options());
    EXPECT_TRUE(connector.ok()) << connector.status().ToString();
    return connector.ok() ? std::move(*connector) : nullptr;
  }
};

}  // namespace appban::mdm::testing
