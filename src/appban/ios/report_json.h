// The JSON document `appban inspect --json` prints for an iOS input: schema "appban.inspect.ios/1",
// a sibling of the APK schema "appban.inspect/1" with the same top-level shape (schema, platform,
// file, app, anomalies); docs/formats/inspect-ios-json.md describes every field. Pure; thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include "appban/ios/app.h"

namespace appban::ios {

inline constexpr const char* kInspectIosSchema = "appban.inspect.ios/1";

nlohmann::ordered_json InspectDocument(const IosApp& app);
// The pieces, for the assessment report (which embeds `file`, `app` and `anomalies`).
nlohmann::ordered_json FileJson(const IosApp& app);
nlohmann::ordered_json AppJson(const IosApp& app);
nlohmann::ordered_json AnomaliesJson(const IosApp& app);
nlohmann::ordered_json PlistJson(const plist::Value& value);

}  // namespace appban::ios
