// The PostgreSQL backend of the store (docs/postgresql.md): the policy store of store.h and the
// fleet store of fleet.h on a database that several server nodes share. Selected by `[database] url =
// "postgresql://..."`.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "appban/common/status.h"
#include "appban/store/fleet.h"
#include "appban/store/store.h"

namespace appban::store {

// Connects to `url` (a libpq URI; TLS and every other libpq option pass through it) and applies
// pending schema migrations, once per cluster: concurrent openers wait on an advisory lock.
// `password` overrides the URL's (read from the configured password file); without it libpq's own
// sources apply (PGPASSWORD, ~/.pgpass or `passfile`, a `service` in pg_service.conf).
// kUnsupported when the database's schema is newer than this appban.
// `audit_checkpoint_dir`, when not empty, is this node's signed audit checkpoint
// (audit_checkpoint.h; docs/postgresql.md, "Audit chain"): its key must exist there
// (kFailedPrecondition otherwise); every audit entry this store's connection commits is signed
// into it, and VerifyAudit checks the chain against it.
Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url,
                                                 const std::optional<std::string>& password = std::nullopt,
                                                 const std::string& audit_checkpoint_dir = {});

// The same without migrating, for reads that must change nothing (restore --check): only the audit
// chain (ReadAuditAfter, VerifyAudit), whose tables are the same at every schema version this appban
// knows. kUnsupported when the schema is newer than this appban, kNotFound when appban never
// created its tables there.
// The checkpoint is only read there, by VerifyAudit.
Result<std::unique_ptr<Store>> OpenPostgresStoreAsIs(const std::string& url,
                                                     const std::optional<std::string>& password = std::nullopt,
                                                     const std::string& audit_checkpoint_dir = {});

// The fleet store on the same database (the same migrations; either opener applies them). Each
// call opens its own connection: one per thread, as on SQLite.
// Its audit entries (sign-ins, tokens, enrolments) sign `audit_checkpoint_dir` likewise.
Result<std::unique_ptr<FleetStore>> OpenPostgresFleetStore(const std::string& url,
                                                           const std::optional<std::string>& password = std::nullopt,
                                                           const std::string& audit_checkpoint_dir = {});

// The channel every publish notifies, with the new bundle version as payload, when its
// transaction commits: the nodes LISTEN on it to wake their long-polls at once
// (server/bundle_notifications.h). A notification is a hint only; the bundles table is the truth.
inline constexpr std::string_view kBundleChannel = "appban_bundles";
// The channel a revocation notifies, with the device ids as payload, one per line: every node drops
// its cached copies and answers the devices' waiting long-polls with 403. A payload stays under
// PostgreSQL's 8,000-byte limit.
inline constexpr std::string_view kDeviceChannel = "appban_devices";
// The channel a batch of check-ins that changed devices behind the caches (an inventory, an
// evaluation, events, rule states) notifies, likewise: every node drops its cached copies and
// nothing else; the devices' waiting long-polls stay. (Its own channel, not a mark in the payload,
// so that a node of an older release, which treated every notification as a revocation, hears
// only revocations.)
inline constexpr std::string_view kDeviceChangeChannel = "appban_device_changes";
inline constexpr size_t kMaxDeviceNotificationBytes = 7'000;

// The schema version a database is at, for readiness checks: current == expected means a node
// of this version may serve.
struct PostgresSchemaState {
  int64_t current = 0;  // 0: appban never migrated this database
  int64_t expected = 0;
};
Result<PostgresSchemaState> ReadPostgresSchemaState(const std::string& url,
                                                    const std::optional<std::string>& password = std::nullopt);

}  // namespace appban::store
