// Validation of JSON request bodies against the schemas of a Google API discovery document
// (https://developers.google.com/discovery/v1/reference/apis), the way Google's front end checks
// them: an unknown field, a value of the wrong JSON type, or a string outside a field's enum is
// refused with a message naming the field ("Invalid JSON payload received. Unknown name \"foo\"
// at 'applications[0]': Cannot find field."). Used by the MDM emulators in the tests; test-only.
// Immutable after Load; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "appban/common/json.h"
#include "appban/common/status.h"

namespace appban::testing {

class DiscoverySchemas {
 public:
  // Reads the discovery document (bounded) and keeps its "schemas".
  static Result<DiscoverySchemas> Load(const std::string& path);

  // nullopt when `value` conforms to schema `schema_name`; otherwise the error message.
  std::optional<std::string> Validate(std::string_view schema_name, const Json& value) const;

  bool Has(std::string_view schema_name) const { return schemas_.contains(std::string(schema_name)); }

 private:
  std::optional<std::string> ValidateNode(const Json& schema, const Json& value, const std::string& path,
                                          int depth) const;

  Json schemas_;
};

}  // namespace appban::testing
