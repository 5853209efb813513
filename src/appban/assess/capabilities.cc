// Data-collection capabilities: what the manifest requests (permissions, services bound to a
// privileged permission) against what the code uses (references to the framework APIs behind
// each capability). "Requested and used" is the strong claim; "requested" alone says the app may
// do it; "used" without the permission is code that cannot run as is (often an unused library path).
#include <algorithm>

#include "appban/assess/detectors.h"

namespace appban::assess {
namespace {

// Splits "Lcls;->name" into class and method ("" for "Lcls;->" any method); `has_arrow` is false
// for a bare type "Lcls;".
struct ApiParts {
  std::string_view class_descriptor;
  std::string_view method;
  bool has_arrow = false;
};

ApiParts SplitApi(std::string_view api) {
  ApiParts parts;
  const size_t arrow = api.find("->");
  if (arrow == std::string_view::npos) {
    parts.class_descriptor = api;
    return parts;
  }
  parts.class_descriptor = api.substr(0, arrow);
  parts.method = api.substr(arrow + 2);
  parts.has_arrow = true;
  return parts;
}

Severity OneLower(Severity severity) {
  return severity == Severity::kInfo ? Severity::kInfo : static_cast<Severity>(static_cast<int>(severity) - 1);
}

std::string ComponentPath(const apk::Component& component) {
  return "/manifest/application/" + std::string(apk::ComponentKindName(component.kind)) + "[@name=" + component.name +
         "]";
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) {
  // Iterative matcher with one backtrack point per '*'; '*' never crosses '/'.
  size_t p = 0, t = 0, star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos && text[resume] != '/') {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::vector<Evidence> PlainCodeView::FindApi(std::string_view api, size_t max) const {
  std::vector<Evidence> out;
  const ApiParts parts = SplitApi(api);
  if (!parts.has_arrow) {
    for (const Located& type : types) {
      if (out.size() >= max) break;
      if (type.value == parts.class_descriptor)
        out.push_back({"class", DottedClassName(type.value), type.location, ""});
    }
    // A type whose methods are referenced is referenced too.
    for (const Located& method : methods) {
      if (out.size() >= max) break;
      if (SplitApi(method.value).class_descriptor == parts.class_descriptor) {
        out.push_back({"method", method.value, method.location, ""});
      }
    }
    return out;
  }
  for (const Located& method : methods) {
    if (out.size() >= max) break;
    const ApiParts candidate = SplitApi(method.value);
    if (candidate.class_descriptor == parts.class_descriptor &&
        (parts.method.empty() || candidate.method == parts.method)) {
      out.push_back({"method", method.value, method.location, ""});
    }
  }
  return out;
}

std::vector<Evidence> PlainCodeView::FindString(std::string_view text, size_t max) const {
  std::vector<Evidence> out;
  for (const Located& s : strings) {
    if (out.size() >= max) break;
    if (s.value == text) out.push_back({"string", s.value, s.location, ""});
  }
  return out;
}

std::vector<Evidence> PlainCodeView::FindFiles(std::string_view pattern, size_t max) const {
  std::vector<Evidence> out;
  for (const std::string& file : files) {
    if (out.size() >= max) break;
    if (GlobMatch(pattern, file)) out.push_back({"file", file, file, ""});
  }
  return out;
}

std::vector<CapabilityResult> DetectCapabilities(const apk::Manifest& manifest, const CodeView& code,
                                                 const std::vector<CapabilitySpec>& specs) {
  std::vector<CapabilityResult> out;
  for (const CapabilitySpec& spec : specs) {
    CapabilityResult result;
    result.id = spec.id;
    result.title = spec.title;
    for (const apk::RequestedPermission& permission : manifest.permissions) {
      if (std::find(spec.permissions.begin(), spec.permissions.end(), permission.name) == spec.permissions.end())
        continue;
      if (std::find(result.permissions.begin(), result.permissions.end(), permission.name) !=
          result.permissions.end()) {
        continue;
      }
      result.requested = true;
      result.permissions.push_back(permission.name);
      result.evidence.push_back({"permission", permission.name, "AndroidManifest.xml", ""});
    }
    // Granted without being requested (split permissions, old target SDKs): the app holds them
    // all the same, so they count as requested, with the platform's reason as the note.
    for (const apk::ImpliedPermission& permission : manifest.implied_permissions) {
      if (std::find(spec.permissions.begin(), spec.permissions.end(), permission.name) == spec.permissions.end() ||
          std::find(result.permissions.begin(), result.permissions.end(), permission.name) !=
              result.permissions.end()) {
        continue;
      }
      result.requested = true;
      result.permissions.push_back(permission.name);
      result.evidence.push_back(
          {"permission", permission.name, "AndroidManifest.xml", "implied, not requested: " + permission.reason});
    }
    for (const apk::Component& component : manifest.components) {
      if (component.permission.empty() || std::find(spec.service_permissions.begin(), spec.service_permissions.end(),
                                                    component.permission) == spec.service_permissions.end()) {
        continue;
      }
      result.requested = true;
      result.evidence.push_back(
          {"manifest", ComponentPath(component), "AndroidManifest.xml", "android:permission=" + component.permission});
    }
    std::vector<Evidence> uses;
    auto room = [&] { return kMaxEvidencePerFinding - std::min(kMaxEvidencePerFinding, uses.size()); };
    for (const std::string& api : spec.apis) {
      for (Evidence& e : code.FindApi(api, room())) uses.push_back(std::move(e));
    }
    for (const std::string& s : spec.strings) {
      for (Evidence& e : code.FindString(s, room())) uses.push_back(std::move(e));
    }
    for (const std::string& pattern : spec.files) {
      for (Evidence& e : code.FindFiles(pattern, room())) uses.push_back(std::move(e));
    }
    result.used = !uses.empty();
    for (Evidence& e : uses) result.evidence.push_back(std::move(e));
    out.push_back(std::move(result));
  }
  return out;
}

std::vector<Finding> CapabilityFindings(const std::vector<CapabilityResult>& capabilities,
                                        const std::vector<CapabilitySpec>& specs) {
  std::vector<Finding> out;
  for (const CapabilityResult& result : capabilities) {
    auto spec = std::find_if(specs.begin(), specs.end(), [&](const CapabilitySpec& s) { return s.id == result.id; });
    if (spec == specs.end() || (!result.requested && !result.used)) continue;
    const bool needs_permission = !spec->permissions.empty() || !spec->service_permissions.empty();
    Finding finding;
    finding.category = "capability";
    finding.evidence = result.evidence;
    const std::string why = spec->description.empty() ? "" : " " + spec->description;
    if (result.used && (result.requested || !needs_permission)) {
      finding.id = "capability." + spec->id + ".used";
      finding.severity = spec->severity;
      finding.title = spec->title + ": " + (needs_permission ? "requested and used" : "used");
      finding.description = (needs_permission ? "The manifest requests it and the code calls the APIs behind it."
                                              : "The code calls the APIs behind it (no permission is needed).") +
                            why;
    } else if (result.requested) {
      finding.id = "capability." + spec->id + ".requested";
      finding.severity = OneLower(spec->severity);
      finding.title = spec->title + ": requested";
      finding.description =
          "The manifest requests it; no reference to the APIs behind it was found in the code (it may be used through "
          "reflection, native code, or a library we do not map)." +
          why;
    } else {
      // Shared APIs (location calls serve both precise and background location) say nothing new
      // when another capability that is requested already shows the same code.
      auto same_code_requested = [&](const CapabilityResult& other) {
        if (&other == &result || !other.requested || !other.used) return false;
        return std::all_of(result.evidence.begin(), result.evidence.end(), [&](const Evidence& e) {
          return std::any_of(other.evidence.begin(), other.evidence.end(),
                             [&](const Evidence& o) { return o.kind == e.kind && o.value == e.value; });
        });
      };
      if (std::any_of(capabilities.begin(), capabilities.end(), same_code_requested)) continue;
      finding.id = "capability." + spec->id + ".code_only";
      finding.severity = Severity::kInfo;
      finding.title = spec->title + ": code present, not requested";
      finding.description =
          "The code refers to the APIs behind it but the manifest does not request the permission they need, so the "
          "calls fail or are never reached as shipped." +
          why;
    }
    out.push_back(std::move(finding));
  }
  return out;
}

}  // namespace appban::assess
