// Validation of Microsoft Graph request bodies against the types of an OData CSDL document
// ($metadata; tests/specs/intune/graph-v1.0-csdl.fragments.xml), the way Graph's front end checks
// them: a property the type (or its base types) does not declare, a value of the wrong JSON type,
// a string outside an enum, an abstract type without a concrete "@odata.type", or an "@odata.type"
// that is not the declared type or derived from it, are refused with Graph's message ("The
// property 'foo' does not exist on type 'microsoft.graph.iosCompliancePolicy'. …"). Navigation
// properties cannot be written inline. Used by the Intune emulator; test-only.
//
// The beta properties a test needs (beta iosCompliancePolicy.restrictedApps) are added with
// AddProperties from the beta type-mapping excerpt, which lists names only; their types come from
// the caller (the Graph docs), and names without a caller-given type accept any JSON value.
// Immutable after loading; thread-safe.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "appban/common/json.h"
#include "appban/common/status.h"

namespace appban::testing {

class CsdlSchemas {
 public:
  static Result<CsdlSchemas> Load(const std::string& csdl_path);

  // A copy of `base_type` named `new_name` with the properties listed for `type` in a
  // msgraph-metadata type-mapping excerpt (JSON: {"microsoft.graph": {type: {"properties": [...]}}})
  // added; `types` gives the Edm type of names the CSDL type lacks.
  Status AddDerivedFromExcerpt(const std::string& excerpt_path, const std::string& type, const std::string& new_name,
                               const std::map<std::string, std::string>& types);

  // nullopt when `value` is a valid body for `type_name` ("microsoft.graph.iosCompliancePolicy" or
  // "iosCompliancePolicy"); otherwise Graph's error message.
  std::optional<std::string> Validate(std::string_view type_name, const Json& value) const;
  bool Has(std::string_view type_name) const;
  // True when `type` is `ancestor` or derives from it.
  bool Derives(std::string type, std::string ancestor) const;

 private:
  struct Type {
    std::string base;  // short name, "" for none
    bool abstract = false;
    std::map<std::string, std::string> properties;  // name → Edm type ("Edm.String", "Collection(graph.x)")
    std::map<std::string, bool> nullable;
    std::set<std::string> navigation;
  };
  const Type* Find(std::string_view name) const;
  const std::string* PropertyType(const std::string& type, const std::string& property, bool* nullable,
                                  bool* navigation) const;
  std::optional<std::string> ValidateObject(const std::string& type, const Json& value, int depth) const;
  std::optional<std::string> ValidateValue(const std::string& edm_type, const Json& value, bool nullable,
                                           const std::string& where, int depth) const;

  std::map<std::string, Type> types_;                   // short name → type
  std::map<std::string, std::set<std::string>> enums_;  // short name → members
  friend struct CsdlParser;
};

}  // namespace appban::testing
