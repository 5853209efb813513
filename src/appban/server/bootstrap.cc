#include "appban/server/bootstrap.h"
#include "appban/store/open.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <sstream>

#include "appban/common/file.h"
#include "appban/net/tls.h"
#include "appban/policy/keys.h"
#include "appban/store/fleet.h"
#include "appban/store/store.h"

namespace appban::server {
namespace {

std::string OctalMode(mode_t mode) {
  std::ostringstream text;
  text << '0' << std::oct << (mode & 07777);
  return text.str();
}

bool Exists(const std::string& path) {
  struct stat info {};
  return ::lstat(path.c_str(), &info) == 0;
}

// Creates `path` (and missing parents) with mode 0700, or checks an existing one: a directory,
// owned by us or root, and not writable by group or others (who could replace keys in it).
// Returns whether it was created.
Result<bool> PrepareDirectory(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0) {
    if (!S_ISDIR(info.st_mode)) return Status::FailedPrecondition(path + " exists and is not a directory");
    if ((info.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
      return Status::PermissionDenied(path + " is writable by group or others (mode " + OctalMode(info.st_mode) +
                                      "); run `chmod 700 " + path + "` first");
    }
    if (info.st_uid != ::geteuid() && info.st_uid != 0) {
      return Status::PermissionDenied(path + " belongs to another user (uid " + std::to_string(info.st_uid) + ")");
    }
    return false;
  }
  if (errno != ENOENT) return Status::Unavailable(path + ": " + std::strerror(errno));
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code error;
  if (!parent.empty()) std::filesystem::create_directories(parent, error);
  if (error) return Status::Unavailable("cannot create " + parent.string() + ": " + error.message());
  if (::mkdir(path.c_str(), 0700) != 0)
    return Status::Unavailable("cannot create " + path + ": " + std::strerror(errno));
  // mkdir applies the umask, which can only remove bits; set the mode explicitly all the same.
  if (::chmod(path.c_str(), 0700) != 0)
    return Status::Unavailable("cannot chmod " + path + ": " + std::strerror(errno));
  return true;
}

// A private key that group or others can read is as good as published: refuse to use it.
Status CheckPrivateKeyMode(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return Status::NotFound(path + ": " + std::strerror(errno));
  if ((info.st_mode & 077) != 0) {
    return Status::PermissionDenied(path + " is accessible by group or others (mode " + OctalMode(info.st_mode) +
                                    "); run `chmod 600 " + path + "`");
  }
  return Status::Ok();
}

// The generated TLS material: reuse what exists, create what is missing.
Status PrepareGeneratedCertificate(const ServerConfig& config, const DataDirLayout& layout, BootstrapResult& result) {
  APPBAN_RETURN_IF_ERROR(PrepareDirectory(layout.tls_dir).status());
  result.ca_pem_path = layout.ca_certificate;
  result.certificate_path = layout.server_certificate;
  result.key_path = layout.server_key;

  // The certificate file is what marks a pair as present: WriteCertificateAndKey writes the key
  // first, so a crash in between leaves an orphan key that the next start simply replaces.
  if (Exists(layout.server_certificate)) {
    if (!Exists(layout.ca_certificate)) {
      return Status::FailedPrecondition(layout.server_certificate + " exists but " + layout.ca_certificate +
                                        " does not: devices cannot be told which CA to pin. Restore it, or remove "
                                        "the server certificate to issue a new one (devices will need the new CA)");
    }
    APPBAN_RETURN_IF_ERROR(CheckPrivateKeyMode(layout.server_key));
    auto pair = net::ReadCertificateAndKey(layout.server_certificate, layout.server_key);
    if (!pair.ok()) return pair.status();
    // A name added since (--server-name, listen.server_names) gets a new certificate from the same
    // CA: devices pin the CA, not the certificate, so nothing changes for them.
    APPBAN_ASSIGN_OR_RETURN(std::vector<std::string> missing,
                            net::NamesNotInCertificate(pair->certificate_pem, config.ServerNames()));
    if (!missing.empty() && !Exists(layout.ca_key)) {
      // An operator who moved the CA key offline keeps a working server; say what it lacks.
      std::string names;
      for (const std::string& name : missing) names += (names.empty() ? "" : ", ") + name;
      result.warnings.push_back("the server certificate " + layout.server_certificate + " does not cover " + names +
                                ", and it cannot be re-issued without the CA key " + layout.ca_key);
    } else if (!missing.empty()) {
      APPBAN_RETURN_IF_ERROR(CheckPrivateKeyMode(layout.ca_key));
      APPBAN_ASSIGN_OR_RETURN(net::CertificateAndKey ca,
                              net::ReadCertificateAndKey(layout.ca_certificate, layout.ca_key));
      APPBAN_ASSIGN_OR_RETURN(net::CertificateAndKey server,
                              net::IssueServerCertificate(ca, config.ServerNames(), kServerCertificateValidityDays));
      APPBAN_RETURN_IF_ERROR(net::WriteCertificateAndKey(server, layout.server_certificate, layout.server_key));
      result.created_server_certificate = true;
      result.certificate_names = config.ServerNames();
    }
  } else {
    net::CertificateAndKey ca;
    if (Exists(layout.ca_certificate)) {
      APPBAN_RETURN_IF_ERROR(CheckPrivateKeyMode(layout.ca_key));
      APPBAN_ASSIGN_OR_RETURN(ca, net::ReadCertificateAndKey(layout.ca_certificate, layout.ca_key));
    } else {
      APPBAN_ASSIGN_OR_RETURN(ca, net::GenerateSelfSignedCa("appban server CA", kCaValidityDays));
      APPBAN_RETURN_IF_ERROR(net::WriteCertificateAndKey(ca, layout.ca_certificate, layout.ca_key));
      result.created_ca = true;
    }
    APPBAN_ASSIGN_OR_RETURN(net::CertificateAndKey server,
                            net::IssueServerCertificate(ca, config.ServerNames(), kServerCertificateValidityDays));
    APPBAN_RETURN_IF_ERROR(net::WriteCertificateAndKey(server, layout.server_certificate, layout.server_key));
    result.created_server_certificate = true;
    result.certificate_names = config.ServerNames();
  }
  APPBAN_ASSIGN_OR_RETURN(std::string ca_pem, ReadFileToString(layout.ca_certificate, 1 << 20));
  auto fingerprint = net::CertificateSha256Fingerprint(ca_pem);
  if (!fingerprint.ok()) return fingerprint.status().WithContext(layout.ca_certificate);
  result.ca_fingerprint = *fingerprint;
  return Status::Ok();
}

Status PreparePolicyKey(const DataDirLayout& layout, BootstrapResult& result) {
  auto created = policy::CreateActiveKey(layout.policy_key_dir, /*rotate=*/false);
  if (created.ok()) {
    result.created_policy_key = true;
    result.policy_key_id = created->key_id();
    return Status::Ok();
  }
  if (created.status().code() != StatusCode::kAlreadyExists) return created.status();
  APPBAN_ASSIGN_OR_RETURN(policy::SigningKey key, policy::LoadActiveKey(layout.policy_key_dir));
  result.policy_key_id = key.key_id();
  return Status::Ok();
}

// PostgreSQL: this node's signed audit checkpoint (docs/postgresql.md, "Audit chain"). The first
// start of a node makes its key and anchors the chain as it stands; the creation is itself an audit
// entry, so a node whose checkpoint directory was lost and made again shows in the chain.
Status PrepareAuditCheckpoint(const ServerConfig& config, BootstrapResult& result) {
  if (!config.UsesPostgres()) return Status::Ok();
  APPBAN_ASSIGN_OR_RETURN(store::DatabaseTarget database, config.Database());
  APPBAN_ASSIGN_OR_RETURN(std::optional<std::string> created, store::PrepareAuditCheckpointKey(database));
  if (!created) return Status::Ok();
  result.created_audit_checkpoint_key = true;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  store::AuditRecord audit;
  audit.actor = "server";
  audit.action = "server.audit_checkpoint_created";
  audit.object = "audit-checkpoint:" + *created;
  audit.after = {{"key_id", *created}, {"directory", database.audit_checkpoint_dir}, {"host", host}};
  audit.at = static_cast<UnixSeconds>(std::time(nullptr));
  APPBAN_ASSIGN_OR_RETURN(std::unique_ptr<store::Store> store, store::OpenStore(database));
  return store->AppendAudit(audit);
}

Status PrepareAdminToken(const ServerConfig& config, BootstrapResult& result) {
  APPBAN_ASSIGN_OR_RETURN(store::DatabaseTarget database, config.Database());
  APPBAN_ASSIGN_OR_RETURN(std::unique_ptr<store::FleetStore> fleet, store::OpenFleetStore(database));
  store::AuditRecord audit;
  audit.actor = "server";
  audit.at = static_cast<UnixSeconds>(std::time(nullptr));
  // Atomic "create only if there is none": two supervisors racing on one database cannot both
  // hand out an admin token.
  auto created = fleet->CreateFirstApiToken(std::string(kFirstAdminTokenName), store::Role::kAdmin, audit);
  if (created.ok()) {
    result.admin_token = created->presented;
    if (!config.first_admin_token_file.empty()) {
      Status written = WriteFileAtomically(config.first_admin_token_file, created->presented + "\n", 0600);
      if (!written.ok()) {
        return Status::Unavailable("first_admin_token_file " + config.first_admin_token_file +
                                   ": cannot write the admin token (" + written.ToString() +
                                   "); its hash is stored, so issue a new one with `appban server recover-admin`");
      }
      result.admin_token_file = config.first_admin_token_file;
    }
    return Status::Ok();
  }
  if (created.status().code() == StatusCode::kAlreadyExists) return Status::Ok();
  return created.status();
}

}  // namespace

Result<DataDirLock> LockDataDirectory(const ServerConfig& config) {
  APPBAN_RETURN_IF_ERROR(PrepareDirectory(config.data_dir).status());
  return DataDirLock::Acquire(config.data_dir);
}

Result<BootstrapResult> Bootstrap(const ServerConfig& config, const std::string& url) {
  BootstrapResult result;
  result.url = url;
  APPBAN_ASSIGN_OR_RETURN(result.created_data_dir, PrepareDirectory(config.data_dir));
  // Every file the server creates in it is 0600 whatever this mode, but a directory others can
  // enter still shows them its file names and sizes, and lets them read anything an operator
  // copied in by hand: say so on every start.
  struct stat data_dir_info {};
  if (::stat(config.data_dir.c_str(), &data_dir_info) == 0 && (data_dir_info.st_mode & 077) != 0) {
    result.warnings.push_back("data directory " + config.data_dir + " is accessible by group or others (mode " +
                              OctalMode(data_dir_info.st_mode) + "); run `chmod 700 " + config.data_dir + "`");
  }
  const DataDirLayout layout(config.data_dir);

  if (config.listen.tls) {
    if (config.UsesGeneratedCertificate()) {
      APPBAN_RETURN_IF_ERROR(PrepareGeneratedCertificate(config, layout, result));
    } else {
      // The operator's own certificate: check now that it loads and matches its key, so a
      // mistake is reported before any worker starts.
      auto pair = net::ReadCertificateAndKey(config.listen.cert_file, config.listen.key_file);
      if (!pair.ok()) return pair.status();
      result.certificate_path = config.listen.cert_file;
      result.key_path = config.listen.key_file;
    }
  }
  APPBAN_RETURN_IF_ERROR(PreparePolicyKey(layout, result));
  APPBAN_RETURN_IF_ERROR(PrepareAuditCheckpoint(config, result));
  APPBAN_RETURN_IF_ERROR(PrepareAdminToken(config, result));
  return result;
}

Result<std::string> ReadMetricsToken(const ServerConfig& config) {
  const std::string& path = config.metrics.token_file;
  if (path.empty()) return std::string();
  APPBAN_RETURN_IF_ERROR(CheckPrivateKeyMode(path));
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kMaxMetricsTokenBytes));
  const size_t first = text.find_first_not_of(" \t\r\n");
  const size_t last = text.find_last_not_of(" \t\r\n");
  std::string token = first == std::string::npos ? std::string() : text.substr(first, last - first + 1);
  if (token.size() < kMinMetricsTokenBytes) {
    return Status::InvalidArgument("metrics.token_file " + path + ": the token must be at least " +
                                   std::to_string(kMinMetricsTokenBytes) + " characters (e.g. `openssl rand -hex 32`)");
  }
  for (char c : token) {
    if (c <= ' ' || c == 0x7f)
      return Status::InvalidArgument("metrics.token_file " + path +
                                     ": the token must be one line of visible characters");
  }
  return token;
}

std::string FirstStartBanner(const BootstrapResult& result) {
  std::ostringstream out;
  for (const std::string& warning : result.warnings) out << "WARNING: " << warning << "\n";
  const bool https = result.url.rfind("https://", 0) == 0;
  const std::string ca_file = result.ca_pem_path.empty() ? "CA.pem" : result.ca_pem_path;
  if (!result.admin_token) {
    out << "appban server at " << result.url << "\n";
    if (!result.ca_fingerprint.empty()) {
      out << "CA certificate " << result.ca_pem_path << ", SHA-256 fingerprint " << result.ca_fingerprint << "\n";
    }
    if (result.created_server_certificate && !result.certificate_names.empty()) {
      out << "server certificate issued for:";
      for (const std::string& name : result.certificate_names) out << " " << name;
      out << "\n";
    }
    return out.str();
  }

  out << "\n"
      << "appban server: first start\n"
      << "\n"
      << "  URL:             " << result.url << "\n";
  if (!result.ca_fingerprint.empty()) {
    out << "  CA certificate:  " << result.ca_pem_path << "\n"
        << "  CA fingerprint:  SHA256 " << result.ca_fingerprint << "\n"
        << "                   (compare with: openssl x509 -noout -fingerprint -sha256 -in ca.pem)\n";
    if (!result.certificate_names.empty()) {
      out << "  Certificate for: ";
      for (size_t i = 0; i < result.certificate_names.size(); ++i)
        out << (i ? ", " : "") << result.certificate_names[i];
      out << "\n                   (more names: --server-name NAME, repeatable, or listen.server_names)\n";
    }
  } else if (https) {
    out << "  Certificate:     " << result.certificate_path << " (configured; devices need the CA that issued it)\n";
  }
  out << "  Policy key id:   " << result.policy_key_id << "\n"
      << "\n";
  const bool in_file = !result.admin_token_file.empty();
  if (in_file) {
    out << "  Admin API token: in " << result.admin_token_file << " (mode 0600; not printed, so that no log keeps it)\n"
        << "  Move it to a password manager and delete the file; only its hash is stored.\n";
  } else {
    out << "  Admin API token: " << *result.admin_token << "\n"
        << "  WARNING: this token is shown ONCE. Only its hash is stored; it cannot be displayed again.\n"
        << "  Keep it in a password manager; create personal tokens with it and revoke it when done.\n";
  }
  out << "\n"
      << "To enrol a device:\n"
      << "  1. Issue an enrolment token (valid 24 hours, single use):\n"
      << "       export APPBAN_ADMIN_TOKEN="
      << (in_file ? "\"$(cat " + result.admin_token_file + ")\"" : "'" + *result.admin_token + "'") << "\n"
      << "       curl " << (https ? "--cacert " + ca_file + " " : std::string())
      << "-H \"Authorization: Bearer $APPBAN_ADMIN_TOKEN\" -H 'Content-Type: application/json' \\\n"
      << "            -d '{\"ttl_seconds\": 86400}' " << result.url << "/v1/admin/enrollment-tokens\n"
      << "     The answer's \"token\" member (e-…) is the enrolment token.\n"
      << (https ? "  2. Copy " + ca_file + " to the device as ca.pem and run there:\n"
                : std::string("  2. On the device run:\n"))
      << "       appban agent enroll --server " << result.url << (https ? " --ca ca.pem" : "")
      << " --token <enrolment token>\n"
      << "\n";
  return out.str();
}

}  // namespace appban::server
