#include "appban/assess/pattern.h"

#include <cctype>

namespace appban::assess {
namespace {

void AddRange(std::bitset<256>* set, unsigned char from, unsigned char to) {
  for (unsigned c = from; c <= to; ++c) set->set(c);
}

// The class an escape letter stands for, or false when `letter` is not a class escape.
bool EscapeClass(char letter, std::bitset<256>* set) {
  std::bitset<256> base;
  switch (std::tolower(static_cast<unsigned char>(letter))) {
    case 'd':
      AddRange(&base, '0', '9');
      break;
    case 'w':
      AddRange(&base, '0', '9');
      AddRange(&base, 'a', 'z');
      AddRange(&base, 'A', 'Z');
      base.set('_');
      break;
    case 's':
      for (char c : std::string_view(" \t\n\r\f\v")) base.set(static_cast<unsigned char>(c));
      break;
    default:
      return false;
  }
  *set = std::isupper(static_cast<unsigned char>(letter)) ? ~base : base;
  return true;
}

// The bracket expression starting at pattern[open] ('['): adds its members to `accepts` and
// returns the offset just past its closing ']'. A ']' right after '[' or "[^" is a member.
Result<size_t> ParseClass(std::string_view pattern, size_t open, std::bitset<256>* accepts) {
  auto at = [&](size_t pos) { return " at offset " + std::to_string(pos); };
  size_t j = open + 1;
  bool negated = false;
  if (j < pattern.size() && pattern[j] == '^') {
    negated = true;
    ++j;
  }
  bool first = true;
  bool closed = false;
  while (j < pattern.size()) {
    char member = pattern[j];
    if (member == ']' && !first) {
      closed = true;
      break;
    }
    first = false;
    if (member == '\\') {
      if (j + 1 >= pattern.size()) break;
      std::bitset<256> escaped_class;
      if (EscapeClass(pattern[j + 1], &escaped_class)) {
        *accepts |= escaped_class;
        j += 2;
        continue;
      }
      member = pattern[j + 1];
      ++j;
    }
    if (j + 2 < pattern.size() && pattern[j + 1] == '-' && pattern[j + 2] != ']') {
      const unsigned char from = static_cast<unsigned char>(member);
      const unsigned char to = static_cast<unsigned char>(pattern[j + 2]);
      if (to < from) return Status::InvalidArgument("reversed range in character class" + at(j));
      AddRange(accepts, from, to);
      j += 3;
    } else {
      accepts->set(static_cast<unsigned char>(member));
      ++j;
    }
  }
  if (!closed) return Status::InvalidArgument("unterminated character class" + at(open));
  if (negated) accepts->flip();
  return j + 1;
}

}  // namespace

Result<SignaturePattern> SignaturePattern::Compile(std::string_view pattern, std::vector<std::string>* warnings) {
  if (pattern.empty()) return Status::InvalidArgument("empty pattern");
  if (pattern.size() > kMaxPatternLength) {
    return Status::LimitExceeded("pattern of " + std::to_string(pattern.size()) + " characters exceeds the limit of " +
                                 std::to_string(kMaxPatternLength));
  }
  SignaturePattern compiled;
  compiled.source_ = std::string(pattern);
  size_t i = 0;
  if (pattern[0] == '^') {
    compiled.anchored_start_ = true;
    i = 1;
  }
  auto at = [&](size_t pos) { return " at offset " + std::to_string(pos); };
  while (i < pattern.size()) {
    const char c = pattern[i];
    Atom atom;
    switch (c) {
      case '.':
        atom.accepts.set();
        ++i;
        break;
      case '\\': {
        if (i + 1 >= pattern.size()) return Status::InvalidArgument("trailing backslash" + at(i));
        const char escaped = pattern[i + 1];
        if (!EscapeClass(escaped, &atom.accepts)) {
          if (std::isdigit(static_cast<unsigned char>(escaped))) {
            return Status::Unsupported("backreference \\" + std::string(1, escaped) + at(i));
          }
          if (std::isalpha(static_cast<unsigned char>(escaped)) && warnings != nullptr) {
            warnings->push_back("escape \\" + std::string(1, escaped) + at(i) + " read as the letter '" +
                                std::string(1, escaped) + "'");
          }
          atom.accepts.set(static_cast<unsigned char>(escaped));
        }
        i += 2;
        break;
      }
      case '[': {
        APPBAN_ASSIGN_OR_RETURN(i, ParseClass(pattern, i, &atom.accepts));
        break;
      }
      case '*':
      case '+':
      case '?':
        return Status::InvalidArgument(std::string("quantifier '") + c + "' with nothing to repeat" + at(i));
      case '(':
      case ')':
        return Status::Unsupported("group" + at(i));
      case '{':
        return Status::Unsupported("counted repetition" + at(i));
      case '|':
        return Status::Unsupported("alternation inside a pattern" + at(i));
      case '^':
        return Status::Unsupported("'^' anchor not at the start" + at(i));
      case '$':
        if (i + 1 != pattern.size()) return Status::Unsupported("'$' anchor not at the end" + at(i));
        compiled.anchored_end_ = true;
        ++i;
        continue;
      default:
        atom.accepts.set(static_cast<unsigned char>(c));
        ++i;
        break;
    }
    if (i < pattern.size() && (pattern[i] == '*' || pattern[i] == '+' || pattern[i] == '?')) {
      const char quantifier = pattern[i++];
      if (i < pattern.size() && (pattern[i] == '?' || pattern[i] == '+')) {
        return Status::Unsupported("lazy or possessive quantifier" + at(i));
      }
      if (i < pattern.size() && (pattern[i] == '*' || pattern[i] == '{')) {
        return Status::InvalidArgument("quantifier repeats a quantifier" + at(i));
      }
      if (quantifier == '+') {
        compiled.atoms_.push_back(atom);  // x+ is x followed by x*
        atom.repeat = Repeat::kAnyNumber;
      } else {
        atom.repeat = quantifier == '*' ? Repeat::kAnyNumber : Repeat::kOptional;
      }
    }
    compiled.atoms_.push_back(atom);
  }
  return compiled;
}

bool SignaturePattern::Search(std::string_view text) const {
  if (text.size() > kMaxTextLength) text = text.substr(0, kMaxTextLength);
  const size_t n = atoms_.size();
  // State k means "atoms [0, k) matched"; k == n is acceptance. Sets are kept epsilon-closed:
  // an optional or repeated atom may be skipped.
  std::vector<char> current(n + 1, 0), next(n + 1, 0);
  auto add = [&](std::vector<char>& set, size_t state) {
    while (true) {
      if (set[state]) return;
      set[state] = 1;
      if (state == n || atoms_[state].repeat == Repeat::kOnce) return;
      ++state;
    }
  };
  auto accepted_now = [&](const std::vector<char>& set, bool at_end) { return set[n] && (!anchored_end_ || at_end); };

  add(current, 0);
  if (accepted_now(current, text.empty())) return true;
  for (size_t pos = 0; pos < text.size(); ++pos) {
    const unsigned char c = static_cast<unsigned char>(text[pos]);
    std::fill(next.begin(), next.end(), 0);
    for (size_t k = 0; k < n; ++k) {
      if (!current[k] || !atoms_[k].accepts.test(c)) continue;
      if (atoms_[k].repeat == Repeat::kAnyNumber) add(next, k);
      add(next, k + 1);
    }
    if (!anchored_start_) add(next, 0);
    const bool at_end = pos + 1 == text.size();
    if (accepted_now(next, at_end)) return true;
    current.swap(next);
  }
  return false;
}

}  // namespace appban::assess
