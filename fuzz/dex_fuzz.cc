// Fuzzes DexFile::Parse and then every accessor and lookup on what it accepted: Parse promises
// that a DexFile it returns can be queried at every valid index without any further checks.
#include <cstddef>
#include <cstdint>

#include "appban/apk/dex.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using appban::apk::DexFile;
  appban::apk::Anomalies anomalies;
  auto dex = DexFile::Parse("classes.dex", appban::Buffer::CopyOf({data, size}), appban::apk::Limits{}, &anomalies);
  if (!dex.ok()) return 0;
  size_t total = 0;
  for (uint32_t i = 0; i < dex->string_count(); ++i) total += dex->String(i).size();
  for (uint32_t i = 0; i < dex->type_count(); ++i) {
    total += dex->TypeDescriptor(i).size();
    // Lookups fall back to linear scans on unsorted (hostile) tables: sample them so one input
    // stays linear in its size.
    if (i < 64) {
      if (dex->FindType(dex->TypeDescriptor(i)).has_value()) ++total;
      total += dex->MethodsOfType(i).size();
    }
  }
  for (uint32_t i = 0; i < dex->method_count(); ++i) {
    auto method = dex->Method(i);
    total += method.class_descriptor.size() + method.name.size() + method.shorty.size();
    total += dex->MethodPrototype(i).size() + dex->MethodClassType(i);
    if (i < 64 && dex->ReferencesMethod(method.class_descriptor, method.name)) ++total;
  }
  for (uint32_t i = 0; i < dex->field_count(); ++i) {
    auto field = dex->Field(i);
    total += field.class_descriptor.size() + field.name.size() + field.type_descriptor.size();
  }
  for (uint32_t i = 0; i < dex->class_count(); ++i) {
    total += dex->ClassDescriptor(i).size() + dex->SuperclassDescriptor(i).size();
  }
  if (dex->string_count() > 0) total += dex->FindString(dex->String(0)).value_or(0);
  total += dex->ClassesWithPrefix("La").size() + dex->StringsContaining("http", 8).size();
  return total == SIZE_MAX ? 1 : 0;
}
