// An opened APK: the ZIP container, manifest, resources, every classes*.dex, signers and native
// libraries, read from the bytes alone (no external tool is ever run). This is the single entry
// point the CLI, the assessment and the server use. An Apk owns its mapped file and parsed DEX
// files; it is immutable after Open and safe to query from several threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "appban/apk/anomaly.h"
#include "appban/apk/arsc.h"
#include "appban/apk/dex.h"
#include "appban/apk/limits.h"
#include "appban/apk/manifest.h"
#include "appban/apk/network_security_config.h"
#include "appban/apk/signing.h"
#include "appban/apk/zip.h"
#include "appban/common/bytes.h"
#include "appban/common/file.h"
#include "appban/common/status.h"

namespace appban::apk {

struct NativeLibraries {
  // ABI ("arm64-v8a") -> library file names under lib/<abi>/, sorted.
  std::map<std::string, std::vector<std::string>> by_abi;
};

class Apk {
 public:
  // Opens and reads the file at `path`. Fails only when the file cannot be read as an APK at all
  // (not a ZIP, no manifest, manifest unreadable, a limit hit); everything Android would tolerate
  // is read and reported as anomalies. The DEX files are inflated and parsed on up to all cores.
  static Result<Apk> Open(const std::string& path, const Limits& limits = {});
  // The same over bytes already in memory (tests, fuzzing, server uploads). `bytes` must
  // outlive the Apk.
  static Result<Apk> FromBytes(Bytes bytes, std::string display_name, const Limits& limits = {});

  Apk(Apk&&) noexcept;
  Apk& operator=(Apk&&) noexcept;
  ~Apk();

  const std::string& path() const { return path_; }
  uint64_t file_size() const { return bytes_.size(); }
  const std::string& sha256() const { return sha256_; }
  const ZipArchive& zip() const { return *zip_; }
  const Manifest& manifest() const { return manifest_; }
  const std::vector<DexFile>& dex_files() const { return dex_files_; }
  const SigningInfo& signing() const { return signing_; }
  const NativeLibraries& native_libraries() const { return native_; }
  // Every anomaly from every part, in the order found.
  const Anomalies& anomalies() const { return anomalies_; }
  const ResourceTable* resources() const { return resources_.get(); }
  // The network security config the manifest names, when it could be read.
  const std::optional<NetworkSecurityConfig>& network_security_config() const { return network_security_config_; }

  uint64_t total_dex_classes() const;
  uint64_t total_dex_methods() const;
  uint64_t total_dex_strings() const;

 private:
  Apk() = default;
  Status Load(const Limits& limits);
  void LoadNetworkSecurityConfig(const Limits& limits, uint64_t* budget);
  // Reads every DEX file and hashes the file, running `alongside` on the same threads.
  Status LoadDexFiles(const Limits& limits, uint64_t* budget, const std::function<void()>& alongside);

  std::string path_;
  std::unique_ptr<MappedFile> mapped_;  // null when built FromBytes
  Bytes bytes_;
  std::string sha256_;
  std::unique_ptr<ZipArchive> zip_;
  std::unique_ptr<ResourceTable> resources_;
  Manifest manifest_;
  std::vector<DexFile> dex_files_;
  SigningInfo signing_;
  NativeLibraries native_;
  std::optional<NetworkSecurityConfig> network_security_config_;
  Anomalies anomalies_;
};

}  // namespace appban::apk
