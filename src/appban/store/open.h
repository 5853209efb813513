// Opening the server's stores wherever the configuration puts them: the embedded SQLite file (the
// default) or a PostgreSQL database several nodes share (docs/postgresql.md). Everything outside
// store/ that opens the policy or the fleet store for the server goes through here, so no caller
// knows which backend it has.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "appban/common/status.h"
#include "appban/store/fleet.h"
#include "appban/store/store.h"

namespace appban::store {

struct DatabaseTarget {
  // A SQLite file path, or a libpq URI ("postgresql://..." or "postgres://...").
  std::string location;
  // PostgreSQL only: the password read from the configured password file; it overrides one in the
  // URI. Without it libpq's own sources apply (~/.pgpass, a service file, PGPASSWORD).
  std::optional<std::string> password;

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

}  // namespace appban::store
