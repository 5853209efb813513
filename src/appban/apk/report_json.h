// JSON rendering of an Apk's facts: the `appban inspect --json` document (schema
// "appban.inspect/1", documented in docs/formats/inspect-json.md) and the `app` object that the
// assessment report embeds unchanged.
#pragma once

#include <nlohmann/json.hpp>

#include "appban/apk/apk.h"

namespace appban::apk {

inline constexpr const char* kInspectSchema = "appban.inspect/1";

nlohmann::ordered_json AppFactsJson(const Apk& apk);
nlohmann::ordered_json AnomaliesJson(const Anomalies& anomalies);
nlohmann::ordered_json FileJson(const Apk& apk);
// {"schema", "file", "app", "anomalies"}
nlohmann::ordered_json InspectDocument(const Apk& apk);

}  // namespace appban::apk
