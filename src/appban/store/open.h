// Opening the server's stores wherever the configuration puts them: the embedded SQLite file (the
// default) or a PostgreSQL database several nodes share (docs/postgresql.md). Everything outside
// store/ that opens the policy or the fleet store for the server goes through here, so no caller
// knows which backend it has.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "appban/common/status.h"
#include "appban/store/fleet.h"
#include "appban/store/store.h"

namespace appban::store {

struct DatabaseTarget {
  DatabaseTarget() = default;
  explicit DatabaseTarget(std::string location, std::optional<std::string> password = std::nullopt)
      : location(std::move(location)), password(std::move(password)) {}

  // A SQLite file path, or a libpq URI ("postgresql://..." or "postgres://...").
  std::string location;
  // PostgreSQL only: the password read from the configured password file; it overrides one in the
  // URI. Without it libpq's own sources apply (~/.pgpass, a service file, PGPASSWORD).
  std::optional<std::string> password;
  // PostgreSQL only: this node's signed audit checkpoint directory (audit_checkpoint.h), which the
  // server sets to <data_dir>/audit-checkpoint; empty keeps none (a SQLite file keeps its own
  // beside it).
  std::string audit_checkpoint_dir;

  bool IsPostgres() const;
  // For messages and logs: the file path, or the URI without any password written into it.
  std::string Describe() const;
};

// Reads a database password file (one line; mode 0600 or 0400, refused when others may read it;
// at most 1,024 bytes): the server's database_password_file.
Result<std::string> ReadDatabasePassword(const std::string& path);

// Each call opens a new connection (one per thread), applying pending migrations first.
Result<std::unique_ptr<Store>> OpenStore(const DatabaseTarget& target);
Result<std::unique_ptr<FleetStore>> OpenFleetStore(const DatabaseTarget& target,
                                                   FleetConnection use = FleetConnection::kGeneral);

// PostgreSQL: makes this node's audit checkpoint key in target.audit_checkpoint_dir when there is
// none, and signs the chain's current head there, so the node anchors the chain from its first
// start (server/bootstrap.cc). The new key's id, or nullopt when the key existed already or the
// target keeps no checkpoint (SQLite makes its own with the database).
Result<std::optional<std::string>> PrepareAuditCheckpointKey(const DatabaseTarget& target);

}  // namespace appban::store
