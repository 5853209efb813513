// appban server: run the policy server (device protocol + admin API) on a data directory.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <optional>

#include "appban/cli/commands.h"
#include "appban/decide/admin.h"
#include "appban/server/backup.h"
#include "appban/server/config.h"
#include "appban/server/instance_guard.h"
#include "appban/server/supervisor.h"
#include "appban/store/fleet.h"
#include "appban/store/migrate.h"
#include "appban/store/open.h"

namespace appban::cli {
namespace {

struct ServerFlags {
  std::string config_file;
  std::string data_dir;
  std::string address;
  int port = -1;
  bool insecure_plain_http = false;
  int workers = -1;
  std::vector<std::string> server_names;  // added to the configured (or default) certificate names
  std::string log_format;
  std::string log_level;
};

int RunServerCommand(const ServerFlags& flags) {
  server::ServerConfig config;
  if (!flags.config_file.empty()) {
    auto loaded = server::LoadServerConfigFile(flags.config_file);
    if (!loaded.ok()) {
      std::cerr << "appban server: " << loaded.status().message() << "\n";
      return 2;
    }
    config = std::move(*loaded);
  } else {
    // Without a config file: a local data directory, so a first try needs no root.
    config.data_dir = std::string(server::kLocalDataDir);
  }
  if (!flags.data_dir.empty()) config.data_dir = flags.data_dir;
  if (!flags.address.empty()) config.listen.address = flags.address;
  if (flags.port >= 0) config.listen.port = static_cast<uint16_t>(flags.port);
  if (flags.insecure_plain_http) {
    config.listen.insecure_plain_http = true;
    config.listen.tls = false;
  }
  if (flags.workers >= 0) config.workers = static_cast<uint32_t>(flags.workers);
  if (!flags.server_names.empty()) {
    std::vector<std::string> names = config.ServerNames();
    for (const std::string& name : flags.server_names) {
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
    config.listen.server_names = std::move(names);
  }
  if (!flags.log_format.empty()) {
    auto format = server::ParseLogFormat(flags.log_format);
    if (!format.ok()) {
      std::cerr << "appban server: --log-format: " << format.status().message() << "\n";
      return 2;
    }
    config.log.format = *format;
  }
  if (!flags.log_level.empty()) {
    auto level = server::ParseLogLevel(flags.log_level);
    if (!level.ok()) {
      std::cerr << "appban server: --log-level: " << level.status().message() << "\n";
      return 2;
    }
    config.log.level = *level;
  }
  if (auto valid = server::ValidateConfig(config); !valid.ok()) {
    std::cerr << "appban server: " << valid.message() << "\n";
    return 2;
  }
  return server::RunServer(config, std::cout);
}

// The flags of the host-side subcommands (recover-admin, backup, restore).
struct HostFlags {
  std::string config_file;
  std::string data_dir;
};

// The configuration a host-side subcommand works on: --config, else ./appban-data; --data-dir wins.
Result<server::ServerConfig> HostConfig(const HostFlags& flags) {
  server::ServerConfig config;
  config.data_dir = std::string(server::kLocalDataDir);
  if (!flags.config_file.empty()) {
    APPBAN_ASSIGN_OR_RETURN(config, server::LoadServerConfigFile(flags.config_file));
  }
  if (!flags.data_dir.empty()) config.data_dir = flags.data_dir;
  return config;
}

void AddHostFlags(CLI::App& command, HostFlags& flags) {
  command.add_option("--config", flags.config_file, "TOML configuration file")->check(CLI::ExistingFile);
  command.add_option("--data-dir", flags.data_dir, "Data directory (default ./appban-data)");
}

// An audit record of a command run on the server host (the actor is the server itself; who ran it
// is known only as whoever could read the data directory).
store::AuditRecord HostAudit(const std::string& method, const std::string& actor_name) {
  store::AuditRecord audit;
  audit.actor = "server";
  audit.at = decide::SystemClockNow();
  store::AuditIdentity who;
  who.method = method;
  who.channel = "cli";
  who.source = "local";
  who.actor_name = actor_name;
  audit.identity = store::AuditIdentityJson(who);
  return audit;
}

// `appban server recover-admin`: on the host, server running or stopped (SQLite serialises the
// write with the workers'). Revokes the bootstrap admin's tokens and prints a new one, audited.
int RunRecoverAdmin(const HostFlags& flags) {
  auto loaded = HostConfig(flags);
  if (!loaded.ok()) {
    std::cerr << "appban server recover-admin: " << loaded.status().message() << "\n";
    return 2;
  }
  const server::ServerConfig& config = *loaded;
  auto database = config.Database();
  auto fleet = database.ok() ? store::OpenFleetStore(*database) : database.status();
  if (!fleet.ok()) {
    std::cerr << "appban server recover-admin: " << fleet.status().message() << "\n";
    return 1;
  }
  store::AuditRecord audit = HostAudit("break-glass", "recover-admin on the server host");
  auto recovered = (*fleet)->RecoverAdmin(audit);
  if (!recovered.ok()) {
    std::cerr << "appban server recover-admin: " << recovered.status().message() << "\n";
    return 1;
  }
  std::cout << "Admin API token: " << recovered->presented << "\n"
            << "WARNING: this token is shown ONCE. Every earlier token of the bootstrap admin is revoked.\n";
  return 0;
}

struct BackupFlags {
  HostFlags host;
  std::string to;
};

int RunBackup(const BackupFlags& flags) {
  auto config = HostConfig(flags.host);
  if (!config.ok()) {
    std::cerr << "appban server backup: " << config.status().message() << "\n";
    return 2;
  }
  auto report = server::BackupServer(*config, flags.to, decide::SystemClockNow());
  if (!report.ok()) {
    std::cerr << "appban server backup: " << report.status().message() << "\n";
    return 1;
  }
  if (report->postgres) {
    const store::AuditVerification& head = report->database.audit;
    std::cout << "Backed up the files of " << config->data_dir << " (keys, TLS, MDM state) to " << report->location
              << "\n"
              << server::DescribeBackup(*report)
              << "The database itself is NOT in this backup: PostgreSQL backs it up. Dump it now, after this command "
                 "(or keep continuous archiving for point-in-time recovery):\n"
              << "  " << server::PgDumpCommand(*config, report->location) << "\n"
              << "The backup restores only beside a database holding audit entry " << head.entries << " (head "
              << head.head_hash
              << "): a dump taken after this command holds it; one taken before does not.\n"
                 "The backup holds the policy signing key and the TLS CA key: keep it, and the dump, as safe as the "
                 "server.\n"
                 "Record the audit head elsewhere; it is what shows that a later restore used this backup.\n";
    return 0;
  }
  std::cout << "Backed up " << config->data_dir << " to " << report->location << "\n"
            << server::DescribeBackup(*report)
            << "The backup holds the policy signing key and the TLS CA key: keep it as safe as the server.\n"
               "Record the audit head elsewhere; it is what shows that a later restore used this backup.\n";
  return 0;
}

struct RestoreFlags {
  HostFlags host;
  std::string from;
  bool check_only = false;
};

int RunRestore(const RestoreFlags& flags) {
  auto config = HostConfig(flags.host);
  if (!config.ok()) {
    std::cerr << "appban server restore: " << config.status().message() << "\n";
    return 2;
  }
  auto restored = server::RestoreServer(*config, flags.from, decide::SystemClockNow(), flags.check_only);
  if (!restored.ok()) {
    std::cerr << "appban server restore: " << restored.status().message() << "\n";
    return 1;
  }
  // PostgreSQL: the chain found in the database the configuration names, beside the backup's head.
  auto database_line = [&] {
    const store::AuditVerification& found = restored->database_audit;
    return "  database now    audit chain of " + restored->database_path + ": " + std::to_string(found.entries) +
           " entries, head " + found.head_hash + " (verified; holds the backup's head, entry " +
           std::to_string(restored->backup.database.audit.entries) + ")\n";
  };
  if (restored->check_only) {
    std::cout << "Backup " << flags.from << " is complete and verifies"
              << (restored->backup.postgres ? ", and the configured database holds its audit head" : "")
              << "; nothing was written.\n"
              << server::DescribeBackup(restored->backup) << (restored->backup.postgres ? database_line() : "");
    return 0;
  }
  if (restored->backup.postgres) {
    std::cout << "Restored the files of " << flags.from << " (keys, TLS, MDM state) into " << restored->data_dir << "\n"
              << server::DescribeBackup(restored->backup) << database_line() << "  this restore    audit entry "
              << restored->restore_audit_seq << " (server.restore)\n"
              << "Start the server on it; devices keep their credentials and trust the same CA and policy key.\n";
    return 0;
  }
  std::cout << "Restored " << flags.from << " into " << restored->data_dir << "\n"
            << server::DescribeBackup(restored->backup) << "  this restore    audit entry "
            << restored->restore_audit_seq << " (server.restore)\n"
            << "Start the server on it; devices keep their credentials and trust the same CA.\n";
  return 0;
}

struct MigrateFlags {
  HostFlags host;
  std::string from;
  std::string to;
  std::string password_file;
};

int RunMigrate(const MigrateFlags& flags) {
  store::DatabaseTarget target{flags.to};
  if (!target.IsPostgres()) {
    std::cerr << "appban server migrate: --to must be a PostgreSQL URI (postgresql://...)\n";
    return 2;
  }
  // `--from sqlite:PATH`: PATH is a data directory (its appban.db) or the database file itself.
  std::string source;
  std::string data_dir;  // locked while the copy runs, when known
  if (!flags.from.empty()) {
    source = flags.from.starts_with("sqlite:") ? flags.from.substr(7) : flags.from;
    if (std::filesystem::is_directory(source)) {
      data_dir = source;
      source += "/appban.db";
    }
  } else {
    auto config = HostConfig(flags.host);
    if (!config.ok()) {
      std::cerr << "appban server migrate: " << config.status().message() << "\n";
      return 2;
    }
    if (config->UsesPostgres()) {
      std::cerr << "appban server migrate: the configured database is already PostgreSQL\n";
      return 2;
    }
    source = config->DatabasePath();
    data_dir = config->data_dir;
  }
  if (!std::filesystem::is_regular_file(source)) {
    std::cerr << "appban server migrate: no SQLite database at " << source << "\n";
    return 2;
  }
  // A server still writing to the file would lose what it writes after the copy: it must be
  // stopped, and none may start on the data directory while the copy runs.
  std::optional<server::DataDirLock> lock;
  if (!data_dir.empty()) {
    auto locked = server::DataDirLock::Acquire(data_dir);
    if (!locked.ok()) {
      std::cerr << "appban server migrate: " << locked.status().message()
                << "\nStop the server first: what it wrote after the copy would not be moved.\n";
      return 1;
    }
    lock.emplace(std::move(*locked));
  }
  if (!flags.password_file.empty()) {
    auto password = store::ReadDatabasePassword(flags.password_file);
    if (!password.ok()) {
      std::cerr << "appban server migrate: " << password.status().message() << "\n";
      return 2;
    }
    target.password = *password;
  }
  store::AuditRecord audit = HostAudit("local", "migrate on the server host");
  audit.action = "server.migrate";
  audit.object = "database:" + target.Describe();
  audit.after =
      Json{{"from", std::filesystem::absolute(source).lexically_normal().string()}, {"to", target.Describe()}};
  auto report = store::MigrateSqliteToPostgres(source, target, audit);
  if (!report.ok()) {
    std::cerr << "appban server migrate: " << report.status().message() << "\nNothing was written to "
              << target.Describe() << " (the copy is one transaction).\n";
    return 1;
  }
  std::cout << "Moved " << source << " to " << target.Describe() << "\n";
  for (const auto& [table, rows] : report->tables) {
    std::cout << "  " << table << std::string(table.size() < 20 ? 20 - table.size() : 1, ' ') << rows << "\n";
  }
  std::cout << "Audit chain: " << report->source_audit.entries << " entries, head " << report->source_audit.head_hash
            << ", verified in PostgreSQL; entry " << report->migration_audit_seq
            << " records the move (server.migrate).\n"
            << "Set database = \"" << target.Describe()
            << "\" in the server's configuration (the password in database_password_file) and start it; the data "
               "directory keeps the keys and TLS files.\n";
  return 0;
}

}  // namespace

void AddServerCommand(CLI::App& app, CommandAction* action) {
  auto flags = std::make_shared<ServerFlags>();
  CLI::App* command = app.add_subcommand(
      "server",
      "Run the appban server: device enrolment, check-ins and policy push, and the admin API "
      "(docs/protocol.md, docs/openapi.yaml). On first start it creates a CA, a TLS certificate, the "
      "policy signing key and a one-time admin token in the data directory.");
  command->add_option("--config", flags->config_file, "TOML configuration file (docs/server-config.md)")
      ->check(CLI::ExistingFile);
  command->add_option("--data-dir", flags->data_dir, "Data directory (default ./appban-data without --config)");
  command->add_option("--address", flags->address, "IP address to listen on (default 0.0.0.0)");
  command->add_option("--port", flags->port, "TCP port (default 8443; 0 picks a free one)")
      ->check(CLI::Range(0, 65535));
  command->add_flag("--insecure-plain-http", flags->insecure_plain_http,
                    "Serve plain HTTP instead of TLS; refused unless --address is a loopback address");
  command
      ->add_option("--workers", flags->workers, "Worker processes (default: one per core, more for many connections)")
      ->check(CLI::Range(0, 256));
  command->add_option("--server-name", flags->server_names,
                      "A DNS name or IP address the generated TLS certificate must also cover (repeatable; added to "
                      "the host name, localhost, 127.0.0.1 and ::1, or to listen.server_names)");
  command->add_option("--log-format", flags->log_format, "One of text or json");
  command->add_option("--log-level", flags->log_level, "One of trace, debug, info, warn or error");
  auto recover_flags = std::make_shared<HostFlags>();
  CLI::App* recover = command->add_subcommand(
      "recover-admin",
      "Issue a new one-time admin API token for the bootstrap admin and revoke its old ones (run on the server "
      "host; the server may be running or stopped). Recorded in the audit chain.");
  AddHostFlags(*recover, *recover_flags);
  recover->callback([recover_flags, action] { *action = [recover_flags] { return RunRecoverAdmin(*recover_flags); }; });
  auto backup_flags = std::make_shared<BackupFlags>();
  CLI::App* backup = command->add_subcommand(
      "backup",
      "Back up the server's database (a consistent snapshot, taken while it runs), audit checkpoint, policy keys, "
      "TLS material and MDM state into a new directory, with a manifest of SHA-256 hashes (docs/operations.md). "
      "On PostgreSQL, the files only, with the database's audit head; pg_dump backs up the database "
      "(docs/postgresql.md). Recorded in the audit chain.");
  AddHostFlags(*backup, backup_flags->host);
  backup->add_option("--to", backup_flags->to, "The backup directory to create (must not exist)")->required();
  backup->callback([backup_flags, action] { *action = [backup_flags] { return RunBackup(*backup_flags); }; });
  auto restore_flags = std::make_shared<RestoreFlags>();
  CLI::App* restore = command->add_subcommand(
      "restore",
      "Restore a backup into a new data directory, after checking every file against its manifest and the whole "
      "audit chain. Never overwrites: the data directory must be absent or empty. On PostgreSQL, restore the "
      "database first (pg_restore); its chain must hold the backup's head. Recorded in the restored chain.");
  AddHostFlags(*restore, restore_flags->host);
  restore->add_option("--from", restore_flags->from, "The backup directory")->required()->check(CLI::ExistingDirectory);
  restore->add_flag("--check", restore_flags->check_only,
                    "Only check the backup (manifest, hashes, database integrity, audit chain); write nothing");
  restore->callback([restore_flags, action] { *action = [restore_flags] { return RunRestore(*restore_flags); }; });
  auto migrate_flags = std::make_shared<MigrateFlags>();
  CLI::App* migrate = command->add_subcommand(
      "migrate",
      "Move a stopped SQLite installation's database into an empty PostgreSQL database: every table row for row, "
      "the audit chain verified there and ending at the same head, the move recorded in it (docs/postgresql.md).");
  AddHostFlags(*migrate, migrate_flags->host);
  migrate->add_option("--from", migrate_flags->from,
                      "The SQLite database: sqlite:DIR for a data directory (its appban.db) or sqlite:FILE (default: "
                      "the configured database)");
  migrate->add_option("--to", migrate_flags->to, "The PostgreSQL database, a libpq URI (postgresql://...)")->required();
  migrate
      ->add_option("--password-file", migrate_flags->password_file, "A file (mode 0600) holding the database password")
      ->check(CLI::ExistingFile);
  migrate->callback([migrate_flags, action] { *action = [migrate_flags] { return RunMigrate(*migrate_flags); }; });
  command->callback([flags, action, recover, backup, restore, migrate] {
    if (recover->parsed() || backup->parsed() || restore->parsed() || migrate->parsed()) return;
    *action = [flags] { return RunServerCommand(*flags); };
  });
}

}  // namespace appban::cli
