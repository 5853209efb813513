#include "csdl_schema.h"

#include <expat.h>

#include <cstring>
#include <memory>

#include "appban/common/file.h"

namespace appban::testing {
namespace {

constexpr uint64_t kMaxSchemaBytes = 16 << 20;
constexpr int kMaxDepth = 32;

// "graph.x", "microsoft.graph.x", "#microsoft.graph.x" → "x".
std::string ShortName(std::string_view name) {
  if (!name.empty() && name.front() == '#') name.remove_prefix(1);
  for (std::string_view prefix : {"microsoft.graph.", "graph."}) {
    if (name.substr(0, prefix.size()) == prefix) return std::string(name.substr(prefix.size()));
  }
  return std::string(name);
}

const char* Attribute(const XML_Char** attributes, const char* name) {
  for (int i = 0; attributes[i]; i += 2) {
    if (std::strcmp(attributes[i], name) == 0) return attributes[i + 1];
  }
  return nullptr;
}

}  // namespace

struct CsdlParser {
  CsdlSchemas* out;
  std::string type;  // the EntityType/ComplexType being read
  std::string enumeration;

  static void Start(void* data, const XML_Char* element, const XML_Char** attributes) {
    auto* self = static_cast<CsdlParser*>(data);
    std::string_view name = element;
    if (size_t colon = name.rfind(':'); colon != std::string_view::npos) name.remove_prefix(colon + 1);
    const char* n = Attribute(attributes, "Name");
    if ((name == "EntityType" || name == "ComplexType") && n) {
      self->type = n;
      CsdlSchemas::Type& type = self->out->types_[n];
      if (const char* base = Attribute(attributes, "BaseType")) type.base = ShortName(base);
      if (const char* abstract = Attribute(attributes, "Abstract")) type.abstract = std::strcmp(abstract, "true") == 0;
    } else if (name == "EnumType" && n) {
      self->enumeration = n;
      self->out->enums_[n];
    } else if (name == "Member" && n && !self->enumeration.empty()) {
      self->out->enums_[self->enumeration].insert(n);
    } else if (name == "Property" && n && !self->type.empty()) {
      const char* t = Attribute(attributes, "Type");
      const char* nullable = Attribute(attributes, "Nullable");
      self->out->types_[self->type].properties[n] = t ? t : "";
      self->out->types_[self->type].nullable[n] = !(nullable && std::strcmp(nullable, "false") == 0);
    } else if (name == "NavigationProperty" && n && !self->type.empty()) {
      self->out->types_[self->type].navigation.insert(n);
    }
  }
  static void End(void* data, const XML_Char* element) {
    auto* self = static_cast<CsdlParser*>(data);
    std::string_view name = element;
    if (name == "EntityType" || name == "ComplexType") self->type.clear();
    if (name == "EnumType") self->enumeration.clear();
  }
};

Result<CsdlSchemas> CsdlSchemas::Load(const std::string& csdl_path) {
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(csdl_path, kMaxSchemaBytes));
  CsdlSchemas schemas;
  CsdlParser parser{&schemas, {}, {}};
  std::unique_ptr<std::remove_pointer_t<XML_Parser>, decltype(&XML_ParserFree)> xml(XML_ParserCreate(nullptr),
                                                                                    &XML_ParserFree);
  XML_SetUserData(xml.get(), &parser);
  XML_SetElementHandler(xml.get(), &CsdlParser::Start, &CsdlParser::End);
  if (XML_Parse(xml.get(), text.data(), static_cast<int>(text.size()), 1) != XML_STATUS_OK) {
    return Status::Corruption(csdl_path + ": " + XML_ErrorString(XML_GetErrorCode(xml.get())) + " at line " +
                              std::to_string(XML_GetCurrentLineNumber(xml.get())));
  }
  // graph.entity, the root of every entity type, lies outside the fragments: {id: Edm.String}, as
  // the OpenAPI fragments' microsoft.graph.entity declares it.
  if (!schemas.types_.count("entity")) {
    schemas.types_["entity"].properties["id"] = "Edm.String";
    schemas.types_["entity"].nullable["id"] = false;
  }
  if (schemas.types_.size() < 2) return Status::Corruption(csdl_path + ": no types");
  return schemas;
}

Status CsdlSchemas::AddDerivedFromExcerpt(const std::string& excerpt_path, const std::string& type,
                                          const std::string& new_name,
                                          const std::map<std::string, std::string>& types) {
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(excerpt_path, kMaxSchemaBytes));
  APPBAN_ASSIGN_OR_RETURN(Json excerpt, ParseJsonBounded(text, kMaxSchemaBytes, 16, excerpt_path));
  const Json* names = nullptr;
  if (excerpt.contains("microsoft.graph") && excerpt["microsoft.graph"].contains(type) &&
      excerpt["microsoft.graph"][type].contains("properties")) {
    names = &excerpt["microsoft.graph"][type]["properties"];
  }
  if (names == nullptr || !names->is_array()) return Status::NotFound(excerpt_path + ": no properties for " + type);
  const Type* original = Find(type);
  if (original == nullptr) return Status::NotFound("no CSDL type " + type);
  Type derived = *original;
  for (const Json& name : *names) {
    const std::string property = name.get<std::string>();
    if (derived.properties.count(property)) continue;
    auto given = types.find(property);
    derived.properties[property] = given == types.end() ? "" : given->second;  // "" accepts any value
    derived.nullable[property] = true;
  }
  types_[new_name] = std::move(derived);
  return Status::Ok();
}

const CsdlSchemas::Type* CsdlSchemas::Find(std::string_view name) const {
  auto it = types_.find(ShortName(name));
  return it == types_.end() ? nullptr : &it->second;
}

bool CsdlSchemas::Has(std::string_view type_name) const { return Find(type_name) != nullptr; }

bool CsdlSchemas::Derives(std::string type, std::string ancestor) const {
  type = ShortName(type);
  ancestor = ShortName(ancestor);
  for (int i = 0; i < kMaxDepth && !type.empty(); ++i) {
    if (type == ancestor) return true;
    const Type* t = Find(type);
    if (t == nullptr) return false;
    type = t->base;
  }
  return false;
}

const std::string* CsdlSchemas::PropertyType(const std::string& type, const std::string& property, bool* nullable,
                                             bool* navigation) const {
  std::string current = type;
  for (int i = 0; i < kMaxDepth && !current.empty(); ++i) {
    const Type* t = Find(current);
    if (t == nullptr) return nullptr;
    if (auto it = t->properties.find(property); it != t->properties.end()) {
      *nullable = t->nullable.at(property);
      return &it->second;
    }
    if (t->navigation.count(property)) {
      *navigation = true;
      return nullptr;
    }
    current = t->base;
  }
  return nullptr;
}

std::optional<std::string> CsdlSchemas::Validate(std::string_view type_name, const Json& value) const {
  if (!Has(type_name)) return "Unknown type '" + std::string(type_name) + "'";
  return ValidateObject(ShortName(type_name), value, 0);
}

std::optional<std::string> CsdlSchemas::ValidateObject(const std::string& declared, const Json& value,
                                                       int depth) const {
  if (depth > kMaxDepth) return std::string("The request body nests too deeply.");
  if (!value.is_object()) {
    return "Cannot convert the literal '" + value.dump().substr(0, 40) + "' to the expected type 'microsoft.graph." +
           declared + "'.";
  }
  std::string actual = declared;
  if (auto it = value.find("@odata.type"); it != value.end()) {
    if (!it->is_string()) return std::string("The value of '@odata.type' must be a string.");
    const std::string named = ShortName(it->get<std::string>());
    if (!Find(named)) return "A type named '" + it->get<std::string>() + "' could not be resolved by the model.";
    if (!Derives(named, declared)) {
      return "A type named 'microsoft.graph." + named + "' is not compatible with the expected type 'microsoft.graph." +
             declared + "'.";
    }
    actual = named;
  }
  if (Find(actual)->abstract) {
    return "Cannot create an instance of the abstract type 'microsoft.graph." + actual +
           "': set '@odata.type' to a concrete type.";
  }
  for (const auto& [key, item] : value.items()) {
    if (key == "@odata.type") continue;
    if (!key.empty() && key.front() == '@') {
      return "The annotation '" + key + "' is not allowed in a request body.";
    }
    bool nullable = true, navigation = false;
    const std::string* edm = PropertyType(actual, key, &nullable, &navigation);
    if (navigation) {
      return "The navigation property '" + key + "' on type 'microsoft.graph." + actual +
             "' cannot be set in this request.";
    }
    if (edm == nullptr) {
      return "The property '" + key + "' does not exist on type 'microsoft.graph." + actual +
             "'. Make sure to only use property names that are defined by the type or mark the type as open type.";
    }
    if (auto error = ValidateValue(*edm, item, nullable, key, depth)) return error;
  }
  return std::nullopt;
}

std::optional<std::string> CsdlSchemas::ValidateValue(const std::string& edm_type, const Json& value, bool nullable,
                                                      const std::string& where, int depth) const {
  if (edm_type.empty()) return std::nullopt;  // a beta name without a known type
  auto mismatch = [&](std::string_view expected) {
    return "Cannot convert the literal '" + value.dump().substr(0, 60) + "' to the expected type '" +
           std::string(expected) + "' (property '" + where + "').";
  };
  if (edm_type.rfind("Collection(", 0) == 0) {
    if (!value.is_array()) return "A collection was expected for the property '" + where + "'.";
    const std::string element = edm_type.substr(11, edm_type.size() - 12);
    for (const Json& item : value) {
      if (auto error = ValidateValue(element, item, false, where, depth + 1)) return error;
    }
    return std::nullopt;
  }
  if (value.is_null()) {
    if (nullable) return std::nullopt;
    return "A null value was found for the property named '" + where + "', which has the expected type '" + edm_type +
           "[Nullable=False]'. The expected type does not allow null values.";
  }
  if (edm_type == "Edm.String" || edm_type == "Edm.DateTimeOffset" || edm_type == "Edm.Guid" ||
      edm_type == "Edm.Binary" || edm_type == "Edm.Date" || edm_type == "Edm.Duration" || edm_type == "Edm.TimeOfDay") {
    return value.is_string() ? std::nullopt : std::optional<std::string>(mismatch(edm_type));
  }
  if (edm_type == "Edm.Boolean")
    return value.is_boolean() ? std::nullopt : std::optional<std::string>(mismatch(edm_type));
  if (edm_type == "Edm.Int32" || edm_type == "Edm.Int64" || edm_type == "Edm.Int16" || edm_type == "Edm.Byte") {
    if (!value.is_number_integer()) return mismatch(edm_type);
    if (edm_type == "Edm.Int32") {
      const auto v = value.get<int64_t>();
      if (v < INT32_MIN || v > INT32_MAX) return mismatch(edm_type);
    }
    return std::nullopt;
  }
  if (edm_type == "Edm.Double" || edm_type == "Edm.Single" || edm_type == "Edm.Decimal") {
    return value.is_number() ? std::nullopt : std::optional<std::string>(mismatch(edm_type));
  }
  const std::string short_name = ShortName(edm_type);
  if (auto members = enums_.find(short_name); members != enums_.end()) {
    if (!value.is_string()) return mismatch(edm_type);
    if (!members->second.count(value.get<std::string>())) {
      return "The value '" + value.get<std::string>() + "' is not a valid member of the enum type 'microsoft.graph." +
             short_name + "' (property '" + where + "').";
    }
    return std::nullopt;
  }
  if (Find(short_name)) return ValidateObject(short_name, value, depth + 1);
  // A type outside the fragments: Graph would know it; the emulator cannot check it.
  return std::nullopt;
}

}  // namespace appban::testing
