// Anomalies: things in a package that Android tolerates but that are not normal — tricks used to
// break analysers (bogus encryption flags, tampered chunk headers, duplicate ZIP entries) or signs
// of an unusual build. Parsers collect them instead of failing, because Android would still
// install the package; reports list every one.
#pragma once

#include <string>
#include <vector>

namespace appban::apk {

struct Anomaly {
  std::string code;    // stable machine id, "<part>.<what>", e.g. "zip.encryption_flag_ignored"
  std::string where;   // entry name, chunk offset or manifest path the anomaly was seen at
  std::string detail;  // one human sentence: what was found and how it was read
};

using Anomalies = std::vector<Anomaly>;

inline void AddAnomaly(Anomalies* out, std::string code, std::string where, std::string detail) {
  if (out != nullptr) out->push_back({std::move(code), std::move(where), std::move(detail)});
}

}  // namespace appban::apk
