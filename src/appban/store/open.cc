#include "appban/store/open.h"

#include "appban/store/audit_checkpoint.h"
#include "appban/store/postgres.h"
#include "appban/store/postgres_store.h"

namespace appban::store {

bool DatabaseTarget::IsPostgres() const { return postgres::IsPostgresUrl(location); }

std::string DatabaseTarget::Describe() const {
  if (!IsPostgres()) return location;
  // postgresql://user:secret@host/db -> postgresql://user@host/db
  size_t scheme_end = location.find("://") + 3;
  size_t authority_end = location.find_first_of("/?", scheme_end);
  if (authority_end == std::string::npos) authority_end = location.size();
  size_t at = location.rfind('@', authority_end);
  if (at == std::string::npos || at < scheme_end) return location;
  size_t colon = location.find(':', scheme_end);
  if (colon == std::string::npos || colon > at) return location;
  return location.substr(0, colon) + location.substr(at);
}

Result<std::string> ReadDatabasePassword(const std::string& path) { return postgres::ReadPasswordFile(path); }

Result<std::unique_ptr<Store>> OpenStore(const DatabaseTarget& target) {
  if (target.IsPostgres()) return OpenPostgresStore(target.location, target.password, target.audit_checkpoint_dir);
  return OpenSqliteStore(target.location);
}

Result<std::unique_ptr<FleetStore>> OpenFleetStore(const DatabaseTarget& target, FleetConnection use) {
  // The batch writer's setting (cache_spill) is SQLite's; PostgreSQL's server does its own caching.
  if (target.IsPostgres()) return OpenPostgresFleetStore(target.location, target.password, target.audit_checkpoint_dir);
  return OpenSqliteFleetStore(target.location, use);
}

Result<std::optional<std::string>> PrepareAuditCheckpointKey(const DatabaseTarget& target) {
  const std::string& dir = target.audit_checkpoint_dir;
  if (!target.IsPostgres() || dir.empty()) return std::optional<std::string>();
  if (LoadAuditCheckpointKey(dir, false).ok()) return std::optional<std::string>();
  APPBAN_ASSIGN_OR_RETURN(policy::SigningKey key, LoadAuditCheckpointKey(dir, true));
  // The chain as it stands now is what this node vouches for from here on.
  APPBAN_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, OpenStore(target));
  APPBAN_ASSIGN_OR_RETURN(std::vector<AuditEntry> last, store->ReadAuditBefore(INT64_MAX, 1));
  if (!last.empty())
    APPBAN_RETURN_IF_ERROR(WriteAuditCheckpoint(dir, key, AuditHead{last.back().seq, last.back().hash}));
  return std::optional<std::string>(key.key_id());
}

}  // namespace appban::store
