// The PostgreSQL backend of the store (docs/postgresql.md): the policy store of store.h and the
// fleet store of fleet.h on a database that several server nodes share. Selected by `[database] url =
// "postgresql://..."`.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "appban/common/status.h"
#include "appban/store/fleet.h"
#include "appban/store/store.h"

namespace appban::store {

// Connects to `url` (a libpq URI; TLS and every other libpq option pass through it) and applies
// pending schema migrations, once per cluster: concurrent openers wait on an advisory lock.
// `password` overrides the URL's (read from the configured password file); without it libpq's own
// sources apply (PGPASSWORD, ~/.pgpass or `passfile`, a `service` in pg_service.conf).
// kUnsupported when the database's schema is newer than this appban.
Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url,
                                                 const std::optional<std::string>& password = std::nullopt);

// The fleet store on the same database (the same migrations; either opener applies them). Each
// call opens its own connection: one per thread, as on SQLite.
Result<std::unique_ptr<FleetStore>> OpenPostgresFleetStore(const std::string& url,
                                                           const std::optional<std::string>& password = std::nullopt);

// The schema version a database is at, for readiness checks: current == expected means a node
// of this version may serve.
struct PostgresSchemaState {
  int64_t current = 0;  // 0: appban never migrated this database
  int64_t expected = 0;
};
Result<PostgresSchemaState> ReadPostgresSchemaState(const std::string& url,
                                                    const std::optional<std::string>& password = std::nullopt);

}  // namespace appban::store
