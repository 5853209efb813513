// CSV for the exports (GET /v1/admin/exports/*.csv, docs/console.md): RFC 4180 quoting, and cells
// that a spreadsheet would run as a formula defused. Host names, app labels and notes come from
// devices and APKs, so a cell "=HYPERLINK(...)" or "@SUM(...)" is attacker-controlled: a cell that
// starts with '=', '+', '-', '@', a tab or a carriage return gets a leading apostrophe, which
// spreadsheets show as text.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace appban::server {

// One cell, defused and quoted when it holds a comma, a quote or a line break.
std::string CsvCell(std::string_view value);
// Cells joined by commas, ended with CRLF.
std::string CsvRow(std::initializer_list<std::string_view> cells);

}  // namespace appban::server
