// SignaturePattern: a small, safe regular-expression matcher for user-provided tracker signatures
// (Exodus code and network signatures). std::regex is a backtracking engine that can exhaust the
// stack on long inputs and throws on malformed patterns; a newer tracker file is untrusted input,
// so we accept only the subset these signatures use and run it as a Thompson NFA: time is
// O(pattern atoms x text length), memory O(pattern atoms), no recursion, no exceptions.
//
// Supported: literal characters; '.' (any character); bracket classes "[a-z0-9_]" and "[^...]";
// the escapes \d \w \s (and \D \W \S) plus an escaped punctuation character as a literal; the
// quantifiers '*', '+', '?' on one atom; '^' at the start and '$' at the end as anchors.
// Top-level '|' alternatives are split by the caller (each alternative is one pattern).
// Rejected as Unsupported (valid regex we do not run): groups "( )", counted repetition "{m,n}",
// lazy quantifiers, backreferences, anchors in the middle. Rejected as InvalidArgument (no regex
// engine would accept it): an unterminated class, a quantifier with nothing to repeat, a trailing
// backslash. An escaped letter that is not a class (e.g. "\a") is read as that letter and
// reported in `warnings`: the shipped Exodus data has "data.\altbeacon.org", plainly a typo.
//
// Immutable after Compile; thread-safe.
#pragma once

#include <bitset>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/status.h"

namespace appban::assess {

class SignaturePattern {
 public:
  // Longest pattern accepted; Exodus alternatives are under 100 characters.
  static constexpr size_t kMaxPatternLength = 1024;
  // Longest text examined; longer texts are cut here (class names and host names are far shorter).
  static constexpr size_t kMaxTextLength = 4096;

  static Result<SignaturePattern> Compile(std::string_view pattern, std::vector<std::string>* warnings = nullptr);

  // Whether the pattern matches anywhere in `text` (regex "search" semantics, like Exodus).
  bool Search(std::string_view text) const;

  const std::string& source() const { return source_; }

 private:
  enum class Repeat { kOnce, kOptional, kAnyNumber };
  struct Atom {
    std::bitset<256> accepts;
    Repeat repeat = Repeat::kOnce;
  };

  std::string source_;
  std::vector<Atom> atoms_;
  bool anchored_start_ = false;
  bool anchored_end_ = false;
};

}  // namespace appban::assess
