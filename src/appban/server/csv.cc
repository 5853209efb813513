#include "appban/server/csv.h"

namespace appban::server {

std::string CsvCell(std::string_view value) {
  std::string cell;
  if (!value.empty() && (value.front() == '=' || value.front() == '+' || value.front() == '-' || value.front() == '@' ||
                         value.front() == '\t' || value.front() == '\r')) {
    cell.push_back('\'');
  }
  cell.append(value);
  if (cell.find_first_of(",\"\r\n") == std::string::npos) return cell;
  std::string quoted = "\"";
  for (char c : cell) {
    if (c == '"') quoted.push_back('"');
    quoted.push_back(c);
  }
  quoted.push_back('"');
  return quoted;
}

std::string CsvRow(std::initializer_list<std::string_view> cells) {
  std::string row;
  bool first = true;
  for (std::string_view cell : cells) {
    if (!first) row.push_back(',');
    first = false;
    row += CsvCell(cell);
  }
  row += "\r\n";
  return row;
}

}  // namespace appban::server
