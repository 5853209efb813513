// Admin API: GET /v1/admin/mdm — each configured MDM connector's last sync (written by the MDM
// sync process, mdm_sync.h) and the fleet's devices by source and platform.
#include "appban/server/admin_handlers.h"
#include "appban/server/config.h"
#include "appban/server/mdm_sync.h"

namespace appban::server::admin {

HttpResponse MdmStatusView(Call& call) {
  auto statuses = ReadMdmStatuses(*call.context.fleet, call.config());
  if (!statuses.ok()) return ErrorFrom(statuses.status());
  auto counts = call.context.fleet->CountDevicesBySource();
  if (!counts.ok()) return ErrorFrom(counts.status());
  Json connectors = Json::array();
  for (const MdmSyncStatus& status : *statuses) connectors.push_back(status.ToJson());
  Json sources = Json::array();
  for (const store::SourceCount& count : *counts) {
    sources.push_back(Json{{"source", count.source},
                           {"platform", count.platform},
                           {"devices", count.devices},
                           {"cannot_enforce", count.cannot_enforce}});
  }
  return JsonResponse(200, Json{{"sync_enabled", call.config().mdm.sync.enabled},
                                {"interval_seconds", call.config().mdm.sync.interval_seconds},
                                {"connectors", std::move(connectors)},
                                {"devices_by_source", std::move(sources)}});
}

}  // namespace appban::server::admin
