#include "appban/ios/macho.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <string_view>

namespace appban::ios {
namespace {

constexpr uint32_t kMhMagic = 0xfeedface, kMhMagic64 = 0xfeedfacf;
constexpr uint32_t kMhCigam = 0xcefaedfe, kMhCigam64 = 0xcffaedfe;
constexpr uint32_t kFatMagic = 0xcafebabe, kFatMagic64 = 0xcafebabf;
constexpr uint32_t kCpuArch64 = 0x01000000;
constexpr uint32_t kCpuTypeX86 = 7, kCpuTypeArm = 12;
constexpr uint32_t kCpuTypeX86_64 = kCpuTypeX86 | kCpuArch64, kCpuTypeArm64 = kCpuTypeArm | kCpuArch64;
constexpr uint32_t kCpuTypeArm64_32 = kCpuTypeArm | 0x02000000;
constexpr uint32_t kMhPie = 0x200000;

// Load commands read here (mach-o/loader.h).
constexpr uint32_t kLcReqDyld = 0x80000000;
constexpr uint32_t kLcSegment = 0x1, kLcSymtab = 0x2, kLcLoadDylib = 0xc, kLcIdDylib = 0xd, kLcUuid = 0x1b,
                   kLcCodeSignature = 0x1d, kLcSegment64 = 0x19, kLcEncryptionInfo = 0x21, kLcLazyLoadDylib = 0x20,
                   kLcVersionMinMacosx = 0x24, kLcVersionMinIphoneos = 0x25, kLcEncryptionInfo64 = 0x2c,
                   kLcLinkerOption = 0x2d, kLcVersionMinTvos = 0x2f, kLcVersionMinWatchos = 0x30,
                   kLcBuildVersion = 0x32, kLcLoadWeakDylib = 0x18 | kLcReqDyld, kLcRpath = 0x1c | kLcReqDyld,
                   kLcReexportDylib = 0x1f | kLcReqDyld, kLcLoadUpwardDylib = 0x23 | kLcReqDyld;

std::string LoadCommandName(uint32_t cmd) {
  switch (cmd) {
    case 0x1:
      return "LC_SEGMENT";
    case 0x2:
      return "LC_SYMTAB";
    case 0xb:
      return "LC_DYSYMTAB";
    case 0xc:
      return "LC_LOAD_DYLIB";
    case 0xd:
      return "LC_ID_DYLIB";
    case 0xe:
      return "LC_LOAD_DYLINKER";
    case 0x19:
      return "LC_SEGMENT_64";
    case 0x1b:
      return "LC_UUID";
    case 0x1d:
      return "LC_CODE_SIGNATURE";
    case 0x1e:
      return "LC_SEGMENT_SPLIT_INFO";
    case 0x20:
      return "LC_LAZY_LOAD_DYLIB";
    case 0x21:
      return "LC_ENCRYPTION_INFO";
    case 0x22:
      return "LC_DYLD_INFO";
    case 0x22 | kLcReqDyld:
      return "LC_DYLD_INFO_ONLY";
    case 0x24:
      return "LC_VERSION_MIN_MACOSX";
    case 0x25:
      return "LC_VERSION_MIN_IPHONEOS";
    case 0x26:
      return "LC_FUNCTION_STARTS";
    case 0x29:
      return "LC_DATA_IN_CODE";
    case 0x2a:
      return "LC_SOURCE_VERSION";
    case 0x2b:
      return "LC_DYLIB_CODE_SIGN_DRS";
    case 0x2c:
      return "LC_ENCRYPTION_INFO_64";
    case 0x2d:
      return "LC_LINKER_OPTION";
    case 0x2f:
      return "LC_VERSION_MIN_TVOS";
    case 0x30:
      return "LC_VERSION_MIN_WATCHOS";
    case 0x32:
      return "LC_BUILD_VERSION";
    case 0x18 | kLcReqDyld:
      return "LC_LOAD_WEAK_DYLIB";
    case 0x1c | kLcReqDyld:
      return "LC_RPATH";
    case 0x1f | kLcReqDyld:
      return "LC_REEXPORT_DYLIB";
    case 0x23 | kLcReqDyld:
      return "LC_LOAD_UPWARD_DYLIB";
    case 0x28 | kLcReqDyld:
      return "LC_MAIN";
    case 0x33 | kLcReqDyld:
      return "LC_DYLD_EXPORTS_TRIE";
    case 0x34 | kLcReqDyld:
      return "LC_DYLD_CHAINED_FIXUPS";
    default: {
      char text[32];
      std::snprintf(text, sizeof text, "LC_0x%x", cmd);
      return text;
    }
  }
}

std::string FileTypeName(uint32_t type) {
  switch (type) {
    case 1:
      return "object";
    case 2:
      return "execute";
    case 6:
      return "dylib";
    case 7:
      return "dylinker";
    case 8:
      return "bundle";
    case 9:
      return "dylib_stub";
    case 10:
      return "dsym";
    case 11:
      return "kext_bundle";
    default:
      return "type " + std::to_string(type);
  }
}

std::string PlatformName(uint32_t platform) {
  switch (platform) {
    case 1:
      return "macos";
    case 2:
      return "ios";
    case 3:
      return "tvos";
    case 4:
      return "watchos";
    case 5:
      return "bridgeos";
    case 6:
      return "maccatalyst";
    case 7:
      return "iossimulator";
    case 8:
      return "tvossimulator";
    case 9:
      return "watchossimulator";
    case 10:
      return "driverkit";
    case 11:
      return "visionos";
    case 12:
      return "visionossimulator";
    default:
      return "platform " + std::to_string(platform);
  }
}

// xxxx.yy.zz nibbles, as in LC_BUILD_VERSION and LC_VERSION_MIN_*; ".0" patch dropped.
std::string VersionText(uint32_t version) {
  std::string text = std::to_string(version >> 16) + "." + std::to_string((version >> 8) & 0xff);
  if ((version & 0xff) != 0) text += "." + std::to_string(version & 0xff);
  return text;
}

uint32_t LoadBE32(Bytes bytes, size_t offset) {
  return (uint32_t{bytes[offset]} << 24) | (uint32_t{bytes[offset + 1]} << 16) | (uint32_t{bytes[offset + 2]} << 8) |
         bytes[offset + 3];
}
uint64_t LoadBE64(Bytes bytes, size_t offset) {
  return (uint64_t{LoadBE32(bytes, offset)} << 32) | LoadBE32(bytes, offset + 4);
}

std::string FixedName(Bytes bytes) {  // a char[16] that may lack its NUL
  std::string_view text = AsStringView(bytes);
  return std::string(text.substr(0, text.find('\0')));
}

bool Printable(std::string_view text) {
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

// Appends the NUL-terminated strings of a section, keeping those `keep` accepts, up to `cap`.
template <typename Keep>
void SplitStrings(Bytes section, uint32_t cap, std::vector<std::string>* out, Keep keep) {
  std::string_view text = AsStringView(section);
  size_t start = 0;
  while (start < text.size() && out->size() < cap) {
    size_t end = text.find('\0', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view item = text.substr(start, end - start);
    if (keep(item)) out->emplace_back(item);
    start = end + 1;
  }
}

// Module names of a Swift mangled name: "$s10Foundation4DataV…" → Foundation; an Objective-C
// name for a Swift class "_TtC7MyModule7MyClass" → MyModule.
std::optional<std::string> SwiftModuleOf(std::string_view name) {
  size_t pos;
  if (name.starts_with("_$s")) {
    pos = 3;
  } else if (name.starts_with("$s")) {
    pos = 2;
  } else if (name.starts_with("_TtC") || name.starts_with("_TtP")) {
    pos = 4;
  } else {
    return std::nullopt;
  }
  size_t length = 0, digits = 0;
  while (pos < name.size() && name[pos] >= '0' && name[pos] <= '9' && digits < 4) {
    length = length * 10 + static_cast<size_t>(name[pos++] - '0');
    ++digits;
  }
  if (digits == 0 || length == 0 || name.size() - pos < length) return std::nullopt;
  std::string_view module = name.substr(pos, length);
  for (char c : module) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return std::nullopt;
  }
  if (module == "s") return std::string("Swift");
  return std::string(module);
}

struct Section {
  std::string segment, name;
  uint64_t offset = 0, size = 0;  // file offset within the slice
  bool zero_fill = false;
};

class SliceReader {
 public:
  SliceReader(Bytes slice, const Limits& limits, Anomalies* anomalies, std::string where)
      : bytes_(slice), limits_(limits), anomalies_(anomalies), where_(std::move(where)) {}

  // Collects the external symbols this object defines (for a static library's members).
  void CollectDefined(std::set<std::string>* defined) { defined_ = defined; }

  Result<MachOSlice> Read(MachOSlice slice) {
    if (bytes_.size() < 28)
      return Status::Truncated(where_ + ": Mach-O header needs 28 bytes, slice has " + std::to_string(bytes_.size()));
    uint32_t magic = *LoadLE<uint32_t>(bytes_, 0);
    if (magic == kMhCigam || magic == kMhCigam64) {
      return Status::Unsupported(where_ + ": big-endian Mach-O (PowerPC) is not read");
    }
    if (magic != kMhMagic && magic != kMhMagic64) return Status::NotRecognized(where_ + ": no Mach-O magic");
    slice.is_64 = magic == kMhMagic64;
    const size_t header_size = slice.is_64 ? 32 : 28;
    if (bytes_.size() < header_size) return Status::Truncated(where_ + ": Mach-O header runs past the slice");
    slice.cpu_type = *LoadLE<uint32_t>(bytes_, 4);
    slice.cpu_subtype = *LoadLE<uint32_t>(bytes_, 8);
    slice.arch = ArchName(slice.cpu_type, slice.cpu_subtype);
    slice.file_type = FileTypeName(*LoadLE<uint32_t>(bytes_, 12));
    uint32_t ncmds = *LoadLE<uint32_t>(bytes_, 16);
    uint32_t sizeofcmds = *LoadLE<uint32_t>(bytes_, 20);
    slice.flags = *LoadLE<uint32_t>(bytes_, 24);
    slice.pie = (slice.flags & kMhPie) != 0;
    slice.load_command_count = ncmds;
    if (ncmds > limits_.max_load_commands) {
      return Status::LimitExceeded(where_ + ": " + std::to_string(ncmds) + " load commands, more than " +
                                   std::to_string(limits_.max_load_commands) + " (Limits::max_load_commands)");
    }
    if (sizeofcmds > bytes_.size() - header_size) {
      return Status::Truncated(where_ + ": load commands of " + std::to_string(sizeofcmds) +
                               " bytes run past the end of the slice (" + std::to_string(bytes_.size()) + " bytes)");
    }
    Bytes commands = bytes_.subspan(header_size, sizeofcmds);
    size_t pos = 0;
    for (uint32_t i = 0; i < ncmds; ++i) {
      if (commands.size() - pos < 8) {
        return Status::Truncated(where_ + ": load command " + std::to_string(i) + " starts past sizeofcmds");
      }
      uint32_t cmd = *LoadLE<uint32_t>(commands, pos);
      uint32_t cmdsize = *LoadLE<uint32_t>(commands, pos + 4);
      const std::string name = LoadCommandName(cmd);
      if (cmdsize < 8 || cmdsize > commands.size() - pos) {
        return Status::Corruption(where_ + ": load command " + std::to_string(i) + " (" + name + ") has size " +
                                  std::to_string(cmdsize) + ", which runs past the " + std::to_string(sizeofcmds) +
                                  " bytes of load commands");
      }
      if (cmdsize % (slice.is_64 ? 8 : 4) != 0) {
        AddAnomaly(anomalies_, "macho.load_command_misaligned", where_ + " " + name,
                   "load command " + std::to_string(i) + " size " + std::to_string(cmdsize) + " is not aligned");
      }
      slice.load_commands.push_back(name);
      APPBAN_RETURN_IF_ERROR(ReadCommand(cmd, name, commands.subspan(pos, cmdsize), &slice));
      pos += cmdsize;
    }
    ReadSections(&slice);
    ReadSymbols(&slice);
    std::sort(slice.swift_modules.begin(), slice.swift_modules.end());
    slice.swift_modules.erase(std::unique(slice.swift_modules.begin(), slice.swift_modules.end()),
                              slice.swift_modules.end());
    return slice;
  }

 private:
  Status Short(const std::string& name, size_t need) const {
    return Status::Corruption(where_ + ": " + name + " needs " + std::to_string(need) + " bytes");
  }

  // A string at `offset` inside a load command (dylib names, rpaths).
  std::string CommandString(Bytes cmd, uint32_t offset, const std::string& name) {
    if (offset < 8 || offset >= cmd.size()) {
      AddAnomaly(anomalies_, "macho.bad_string_offset", where_ + " " + name,
                 "string offset " + std::to_string(offset) + " lies outside the command");
      return "";
    }
    std::string_view text = AsStringView(cmd.subspan(offset));
    return std::string(text.substr(0, text.find('\0')));
  }

  Status ReadCommand(uint32_t cmd, const std::string& name, Bytes c, MachOSlice* slice) {
    auto u32 = [&](size_t at) { return *LoadLE<uint32_t>(c, at); };
    auto u64 = [&](size_t at) { return *LoadLE<uint64_t>(c, at); };
    switch (cmd) {
      case kLcSegment:
      case kLcSegment64: {
        const bool wide = cmd == kLcSegment64;
        const size_t header = wide ? 72 : 56, section_size = wide ? 80 : 68;
        if (c.size() < header) return Short(name, header);
        uint32_t nsects = u32(wide ? 64 : 48);
        if (nsects > (c.size() - header) / section_size) {
          return Status::Corruption(where_ + ": " + name + " " + FixedName(c.subspan(8, 16)) + " declares " +
                                    std::to_string(nsects) + " sections, more than its " + std::to_string(c.size()) +
                                    " bytes hold");
        }
        if (sections_.size() + nsects > limits_.max_sections) {
          return Status::LimitExceeded(where_ + ": more than " + std::to_string(limits_.max_sections) +
                                       " sections (Limits::max_sections)");
        }
        for (uint32_t s = 0; s < nsects; ++s) {
          Bytes sec = c.subspan(header + s * section_size, section_size);
          Section section;
          section.name = FixedName(sec.subspan(0, 16));
          section.segment = FixedName(sec.subspan(16, 16));
          section.size = wide ? *LoadLE<uint64_t>(sec, 40) : *LoadLE<uint32_t>(sec, 36);
          section.offset = wide ? *LoadLE<uint32_t>(sec, 48) : *LoadLE<uint32_t>(sec, 40);
          uint32_t flags = wide ? *LoadLE<uint32_t>(sec, 64) : *LoadLE<uint32_t>(sec, 56);
          uint8_t type = flags & 0xff;
          section.zero_fill = type == 0x1 || type == 0xc || type == 0x12;  // S_ZEROFILL, GB_ZEROFILL, TLV_ZEROFILL
          sections_.push_back(std::move(section));
        }
        return Status::Ok();
      }
      case kLcSymtab:
        if (c.size() < 24) return Short(name, 24);
        symtab_ = {u32(8), u32(12), u32(16), u32(20)};
        return Status::Ok();
      case kLcLoadDylib:
      case kLcLoadWeakDylib:
      case kLcReexportDylib:
      case kLcLazyLoadDylib:
      case kLcLoadUpwardDylib:
      case kLcIdDylib: {
        if (c.size() < 24) return Short(name, 24);
        std::string path = CommandString(c, u32(8), name);
        if (cmd == kLcIdDylib) {
          slice->install_name = path;
          return Status::Ok();
        }
        std::string kind = cmd == kLcLoadWeakDylib     ? "weak"
                           : cmd == kLcReexportDylib   ? "reexport"
                           : cmd == kLcLazyLoadDylib   ? "lazy"
                           : cmd == kLcLoadUpwardDylib ? "upward"
                                                       : "load";
        slice->libraries.push_back({std::move(path), std::move(kind)});
        return Status::Ok();
      }
      case kLcRpath:
        if (c.size() < 12) return Short(name, 12);
        slice->rpaths.push_back(CommandString(c, u32(8), name));
        return Status::Ok();
      case kLcUuid: {
        if (c.size() < 24) return Short(name, 24);
        char text[40];
        Bytes u = c.subspan(8, 16);
        std::snprintf(text, sizeof text, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
                      u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
        slice->uuid = text;
        return Status::Ok();
      }
      case kLcCodeSignature:
        if (c.size() < 16) return Short(name, 16);
        if (slice->code_signature_offset) {
          AddAnomaly(anomalies_, "macho.duplicate_code_signature", where_,
                     "more than one LC_CODE_SIGNATURE; the first is read");
          return Status::Ok();
        }
        slice->code_signature_offset = u32(8);
        slice->code_signature_size = u32(12);
        return Status::Ok();
      case kLcEncryptionInfo:
      case kLcEncryptionInfo64:
        if (c.size() < 20) return Short(name, 20);
        slice->has_encryption_info = true;
        slice->crypt_offset = u32(8);
        slice->crypt_size = u32(12);
        slice->crypt_id = u32(16);
        return Status::Ok();
      case kLcLinkerOption: {
        // An object's auto-link request (clang -fmodules, swiftc): "-framework" "UIKit", "-lz".
        // Only objects (static libraries) carry it: the linker turns it into LC_LOAD_DYLIB.
        if (c.size() < 12) return Short(name, 12);
        std::string_view text = AsStringView(c.subspan(12));
        std::vector<std::string> words;
        for (uint32_t i = 0; i < u32(8) && !text.empty() && words.size() < 64; ++i) {
          words.emplace_back(text.substr(0, text.find('\0')));
          text.remove_prefix(std::min(text.size(), words.back().size() + 1));
        }
        for (size_t i = 0; i < words.size(); ++i) {
          if ((words[i] == "-framework" || words[i] == "-weak_framework") && i + 1 < words.size()) {
            slice->libraries.push_back({words[i + 1] + ".framework/" + words[i + 1], "autolink"});
            ++i;
          } else if (words[i].starts_with("-l") && words[i].size() > 2) {
            slice->libraries.push_back({"lib" + words[i].substr(2) + ".dylib", "autolink"});
          }
        }
        return Status::Ok();
      }
      case kLcBuildVersion:
        if (c.size() < 24) return Short(name, 24);
        slice->platform = PlatformName(u32(8));
        slice->minimum_os = VersionText(u32(12));
        slice->sdk = VersionText(u32(16));
        return Status::Ok();
      case kLcVersionMinMacosx:
      case kLcVersionMinIphoneos:
      case kLcVersionMinTvos:
      case kLcVersionMinWatchos:
        if (c.size() < 16) return Short(name, 16);
        if (!slice->platform.empty()) return Status::Ok();  // LC_BUILD_VERSION wins
        slice->platform = cmd == kLcVersionMinMacosx     ? "macos"
                          : cmd == kLcVersionMinIphoneos ? "ios"
                          : cmd == kLcVersionMinTvos     ? "tvos"
                                                         : "watchos";
        slice->minimum_os = VersionText(u32(8));
        slice->sdk = VersionText(u32(12));
        return Status::Ok();
      default:
        (void)u64;
        return Status::Ok();
    }
  }

  bool InEncryptedRange(const MachOSlice& slice, uint64_t offset, uint64_t size) const {
    if (!slice.encrypted()) return false;
    return offset < slice.crypt_offset + slice.crypt_size && slice.crypt_offset < offset + size;
  }

  void ReadSections(MachOSlice* slice) {
    for (const Section& section : sections_) {
      const bool wanted =
          (section.segment == "__TEXT" &&
           (section.name == "__cstring" || section.name == "__objc_classname" || section.name == "__objc_methname"));
      if (!wanted || section.zero_fill || section.size == 0) continue;
      auto data = SubSpan(bytes_, section.offset, section.size);
      const std::string label = section.segment + "," + section.name;
      if (!data) {
        AddAnomaly(anomalies_, "macho.section_out_of_bounds", where_ + " " + label,
                   "section at " + std::to_string(section.offset) + " of " + std::to_string(section.size) +
                       " bytes runs past the slice");
        continue;
      }
      if (InEncryptedRange(*slice, section.offset, section.size)) {
        slice->unreadable_sections.push_back(label);
        continue;
      }
      if (section.name == "__cstring") {
        SplitStrings(*data, limits_.max_strings_kept, &slice->strings,
                     [](std::string_view s) { return s.size() >= 4 && Printable(s); });
      } else {
        auto& out = section.name == "__objc_classname" ? slice->objc_classes : slice->objc_selectors;
        SplitStrings(*data, limits_.max_objc_names_kept, &out, [](std::string_view s) { return !s.empty(); });
      }
    }
    for (auto* names : {&slice->objc_classes, &slice->objc_selectors}) {
      std::sort(names->begin(), names->end());
      names->erase(std::unique(names->begin(), names->end()), names->end());
    }
    for (const std::string& name : slice->objc_classes) {
      if (auto module = SwiftModuleOf(name)) slice->swift_modules.push_back(*module);
    }
  }

  void ReadSymbols(MachOSlice* slice) {
    if (!symtab_) return;
    const size_t entry = slice->is_64 ? 16 : 12;
    if (symtab_->count > limits_.max_symbols) {
      AddAnomaly(anomalies_, "macho.too_many_symbols", where_,
                 std::to_string(symtab_->count) + " symbols, more than Limits::max_symbols; imports not read");
      return;
    }
    auto table = SubSpan(bytes_, symtab_->offset, uint64_t{symtab_->count} * entry);
    auto strings = SubSpan(bytes_, symtab_->string_offset, symtab_->string_size);
    if (!table || !strings) {
      AddAnomaly(anomalies_, "macho.symtab_out_of_bounds", where_,
                 "LC_SYMTAB's symbol or string table runs past the slice");
      return;
    }
    std::string_view names = AsStringView(*strings);
    std::set<std::string_view> imported;
    std::set<std::string> modules;
    std::vector<std::string> defined_classes;
    for (uint32_t i = 0; i < symtab_->count; ++i) {
      Bytes nlist = table->subspan(i * entry, entry);
      uint32_t strx = *LoadLE<uint32_t>(nlist, 0);
      uint8_t type = nlist[4];
      if (strx >= names.size() || (type & 0xe0) != 0) continue;  // out of range or a debugging (stab) entry
      std::string_view name = names.substr(strx);
      name = name.substr(0, name.find('\0'));
      if (name.empty()) continue;
      if (name.find("$s") != std::string_view::npos && modules.size() < 4096) {
        if (auto module = SwiftModuleOf(name)) modules.insert(*module);
      }
      const bool undefined = (type & 0x0e) == 0 && (type & 0x01) != 0;  // N_UNDF | N_EXT
      if (!undefined && defined_ != nullptr && (type & 0x01) != 0 && defined_->size() < limits_.max_symbols) {
        defined_->emplace(name);  // external and defined: another archive member may import it
      }
      if (undefined) {
        imported.insert(name);
      } else if (name.starts_with("_OBJC_CLASS_$_") && slice->objc_classes.size() < limits_.max_objc_names_kept) {
        defined_classes.emplace_back(name.substr(14));  // a class this binary defines
      }
    }
    slice->imported_symbol_count = imported.size();
    for (std::string_view name : imported) {
      if (slice->imported_symbols.size() >= limits_.max_imported_symbols_kept) break;
      slice->imported_symbols.emplace_back(name);
    }
    slice->swift_modules.insert(slice->swift_modules.end(), modules.begin(), modules.end());
    slice->objc_classes.insert(slice->objc_classes.end(), defined_classes.begin(), defined_classes.end());
    std::sort(slice->objc_classes.begin(), slice->objc_classes.end());
    slice->objc_classes.erase(std::unique(slice->objc_classes.begin(), slice->objc_classes.end()),
                              slice->objc_classes.end());
  }

  struct Symtab {
    uint32_t offset, count, string_offset, string_size;
  };

  Bytes bytes_;
  const Limits& limits_;
  Anomalies* anomalies_;
  std::string where_;
  std::vector<Section> sections_;
  std::optional<Symtab> symtab_;
  std::set<std::string>* defined_ = nullptr;
};

constexpr std::string_view kArchiveMagic = "!<arch>\n";

bool IsArchive(Bytes bytes) { return AsStringView(bytes).starts_with(kArchiveMagic); }

template <typename T>
void SortUnique(std::vector<T>* values) {
  std::sort(values->begin(), values->end());
  values->erase(std::unique(values->begin(), values->end()), values->end());
}

// A static library ("!<arch>\n", ar with BSD long names as Apple's libtool writes it): one slice
// whose facts are the union of its Mach-O object members'. Platform and minimum OS are the first
// object's that has them (an anomaly when members disagree); imports are the members' undefined
// symbols that no member defines; linked libraries are the objects' LC_LINKER_OPTION requests.
Result<MachOSlice> ReadArchive(Bytes bytes, const Limits& limits, Anomalies* anomalies, const std::string& where,
                               MachOSlice slice) {
  slice.file_type = "static-library";
  std::set<std::string> defined, imported;
  std::set<std::pair<std::string, std::string>> libraries;
  std::set<std::string> disagreeing;
  size_t pos = kArchiveMagic.size();
  while (pos < bytes.size()) {
    if (bytes.size() - pos < 60) {
      AddAnomaly(anomalies, "macho.archive_truncated", where, "member header at " + std::to_string(pos) + " is cut");
      break;
    }
    std::string_view header = AsStringView(bytes.subspan(pos, 60));
    if (header.substr(58, 2) != "`\n") {
      return Status::Corruption(where + ": archive member at " + std::to_string(pos) + " has no header terminator");
    }
    std::string name(header.substr(0, 16));
    name.erase(name.find_last_not_of(' ') + 1);
    std::string size_text(header.substr(48, 10));
    uint64_t size = 0;
    for (char ch : size_text) {
      if (ch == ' ') break;
      if (ch < '0' || ch > '9' || size > (uint64_t{1} << 40)) {
        return Status::Corruption(where + ": archive member at " + std::to_string(pos) + " has size \"" + size_text +
                                  "\"");
      }
      size = size * 10 + static_cast<uint64_t>(ch - '0');
    }
    auto data = SubSpan(bytes, pos + 60, size);
    if (!data) {
      return Status::Truncated(where + ": archive member \"" + name + "\" of " + std::to_string(size) +
                               " bytes runs past the end");
    }
    if (name.starts_with("#1/")) {  // BSD long name: its length, then the name before the data
      uint64_t length = 0;
      for (char ch : name.substr(3))
        length = ch >= '0' && ch <= '9' && length < 4096 ? length * 10 + (ch - '0') : length;
      if (length > data->size()) return Status::Corruption(where + ": archive member name runs past its data");
      std::string_view long_name = AsStringView(data->first(length));
      name = std::string(long_name.substr(0, long_name.find('\0')));
      *data = data->subspan(length);
    }
    pos += 60 + size + (size & 1);
    if (name.starts_with("__.SYMDEF") || !LooksLikeMachO(*data)) continue;  // the ranlib index; non-objects
    if (++slice.archive_members > limits.max_archive_members) {
      return Status::LimitExceeded(where + ": more than " + std::to_string(limits.max_archive_members) +
                                   " archive members (Limits::max_archive_members)");
    }
    SliceReader reader(*data, limits, anomalies, where + " " + name);
    reader.CollectDefined(&defined);
    auto object = reader.Read(MachOSlice{});
    if (!object.ok()) {
      AddAnomaly(anomalies, "macho.unreadable_archive_member", where + " " + name, object.status().ToString());
      continue;
    }
    if (slice.arch.empty()) {
      slice.arch = object->arch;
      slice.cpu_type = object->cpu_type;
      slice.cpu_subtype = object->cpu_subtype;
    }
    slice.is_64 = object->is_64;
    if (slice.platform.empty()) {
      slice.platform = object->platform;
      slice.minimum_os = object->minimum_os;
      slice.sdk = object->sdk;
    } else if (!object->platform.empty() &&
               (object->platform != slice.platform || object->minimum_os != slice.minimum_os)) {
      disagreeing.insert(object->platform + " " + object->minimum_os);
    }
    for (auto& library : object->libraries) libraries.emplace(library.path, library.kind);
    imported.insert(object->imported_symbols.begin(), object->imported_symbols.end());
    slice.imported_symbol_count += object->imported_symbol_count;
    auto append = [](std::vector<std::string>* to, std::vector<std::string>& from, size_t cap) {
      for (auto& value : from) {
        if (to->size() >= cap) break;
        to->push_back(std::move(value));
      }
    };
    append(&slice.objc_classes, object->objc_classes, limits.max_objc_names_kept);
    append(&slice.objc_selectors, object->objc_selectors, limits.max_objc_names_kept);
    append(&slice.swift_modules, object->swift_modules, limits.max_objc_names_kept);
    append(&slice.strings, object->strings, limits.max_strings_kept);
  }
  if (slice.archive_members == 0) return Status::NotRecognized(where + ": a static library without Mach-O objects");
  if (!disagreeing.empty()) {
    std::string list;
    for (const auto& other : disagreeing) list += (list.empty() ? "" : ", ") + other;
    AddAnomaly(anomalies, "macho.archive_platforms_differ", where,
               "members built for " + slice.platform + " " + slice.minimum_os + " and for " + list);
  }
  for (const auto& [path, kind] : libraries) slice.libraries.push_back({path, kind});
  slice.imported_symbols.clear();
  slice.imported_symbol_count = 0;
  for (const std::string& name : imported) {
    if (defined.contains(name)) continue;
    ++slice.imported_symbol_count;
    if (slice.imported_symbols.size() < limits.max_imported_symbols_kept) slice.imported_symbols.push_back(name);
  }
  SortUnique(&slice.objc_classes);
  SortUnique(&slice.objc_selectors);
  SortUnique(&slice.swift_modules);
  return slice;
}

}  // namespace

std::string ArchName(uint32_t cpu_type, uint32_t cpu_subtype) {
  uint32_t sub = cpu_subtype & 0x00ffffff;
  switch (cpu_type) {
    case kCpuTypeArm64:
      return sub == 2 ? "arm64e" : "arm64";
    case kCpuTypeArm64_32:
      return "arm64_32";
    case kCpuTypeX86_64:
      return sub == 8 ? "x86_64h" : "x86_64";
    case kCpuTypeX86:
      return "i386";
    case kCpuTypeArm:
      switch (sub) {
        case 6:
          return "armv6";
        case 9:
          return "armv7";
        case 11:
          return "armv7s";
        case 12:
          return "armv7k";
        default:
          return "arm";
      }
    default: {
      char text[48];
      std::snprintf(text, sizeof text, "cpu 0x%x/0x%x", cpu_type, cpu_subtype);
      return text;
    }
  }
}

bool LooksLikeMachO(Bytes bytes) {
  auto magic = LoadLE<uint32_t>(bytes, 0);
  if (!magic) return false;
  if (*magic == kMhMagic || *magic == kMhMagic64) return true;
  if (bytes.size() < 8) return false;
  uint32_t be = LoadBE32(bytes, 0);
  // 0xcafebabe is also a Java class file; its "count" there is a version number (45 and up).
  return (be == kFatMagic || be == kFatMagic64) && LoadBE32(bytes, 4) > 0 && LoadBE32(bytes, 4) < 45;
}

Result<MachO> ParseMachO(Bytes bytes, const Limits& limits) {
  if (bytes.size() > limits.max_macho_bytes) {
    return Status::LimitExceeded("Mach-O of " + std::to_string(bytes.size()) + " bytes exceeds " +
                                 std::to_string(limits.max_macho_bytes) + " (Limits::max_macho_bytes)");
  }
  if (bytes.size() < 8) return Status::NotRecognized("not a Mach-O file: " + std::to_string(bytes.size()) + " bytes");
  MachO out;
  if (IsArchive(bytes)) {
    MachOSlice slice;
    slice.size = bytes.size();
    APPBAN_ASSIGN_OR_RETURN(MachOSlice read, ReadArchive(bytes, limits, &out.anomalies, "static library", slice));
    out.slices.push_back(std::move(read));
    return out;
  }
  uint32_t be = LoadBE32(bytes, 0);
  if (be != kFatMagic && be != kFatMagic64) {
    uint32_t magic = *LoadLE<uint32_t>(bytes, 0);
    if (magic != kMhMagic && magic != kMhMagic64 && magic != kMhCigam && magic != kMhCigam64) {
      return Status::NotRecognized("not a Mach-O file: no Mach-O or universal magic");
    }
    MachOSlice slice;
    slice.size = bytes.size();
    APPBAN_ASSIGN_OR_RETURN(MachOSlice read,
                            SliceReader(bytes, limits, &out.anomalies, "Mach-O").Read(std::move(slice)));
    out.slices.push_back(std::move(read));
    return out;
  }
  out.fat = true;
  out.fat64 = be == kFatMagic64;
  uint32_t count = LoadBE32(bytes, 4);
  if (count == 0) return Status::Corruption("universal Mach-O with no architectures");
  if (count > limits.max_fat_slices) {
    return Status::LimitExceeded("universal Mach-O declares " + std::to_string(count) + " architectures, more than " +
                                 std::to_string(limits.max_fat_slices) + " (Limits::max_fat_slices)");
  }
  const size_t entry = out.fat64 ? 32 : 20;
  if ((bytes.size() - 8) / entry < count) {
    return Status::Truncated("universal header with " + std::to_string(count) + " architectures runs past the file");
  }
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  Status first_error;
  for (uint32_t i = 0; i < count; ++i) {
    size_t at = 8 + i * entry;
    MachOSlice slice;
    slice.cpu_type = LoadBE32(bytes, at);
    slice.cpu_subtype = LoadBE32(bytes, at + 4);
    slice.offset = out.fat64 ? LoadBE64(bytes, at + 8) : LoadBE32(bytes, at + 8);
    slice.size = out.fat64 ? LoadBE64(bytes, at + 16) : LoadBE32(bytes, at + 12);
    const std::string where = "slice " + std::to_string(i) + " (" + ArchName(slice.cpu_type, slice.cpu_subtype) + ")";
    auto data = SubSpan(bytes, slice.offset, slice.size);
    Status status;
    if (!data) {
      status = Status::Truncated(where + " at " + std::to_string(slice.offset) + " of " + std::to_string(slice.size) +
                                 " bytes runs past the file (" + std::to_string(bytes.size()) + " bytes)");
    } else if (slice.offset < 8 + count * entry) {
      status = Status::Corruption(where + " at " + std::to_string(slice.offset) + " overlaps the universal header");
    } else {
      for (const auto& [start, size] : ranges) {
        if (slice.offset < start + size && start < slice.offset + slice.size) {
          AddAnomaly(&out.anomalies, "macho.overlapping_slices", where,
                     "slice overlaps another at " + std::to_string(start) + "; the kernel refuses such a file");
        }
      }
      ranges.emplace_back(slice.offset, slice.size);
      auto read = IsArchive(*data) ? ReadArchive(*data, limits, &out.anomalies, where, std::move(slice))
                                   : SliceReader(*data, limits, &out.anomalies, where).Read(std::move(slice));
      if (read.ok()) {
        out.slices.push_back(std::move(*read));
        continue;
      }
      status = read.status();
    }
    AddAnomaly(&out.anomalies, "macho.unreadable_slice", where, status.ToString());
    if (first_error.ok()) first_error = status;
  }
  if (out.slices.empty()) return first_error;
  return out;
}

}  // namespace appban::ios
