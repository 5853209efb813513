#include "appban/server/csv.h"

#include <gtest/gtest.h>

namespace appban::server {
namespace {

TEST(Csv, DefusesCellsASpreadsheetWouldRunAsFormulas) {
  EXPECT_EQ(CsvCell("=HYPERLINK(\"http://x\")"), "\"'=HYPERLINK(\"\"http://x\"\")\"");
  EXPECT_EQ(CsvCell("+1"), "'+1");
  EXPECT_EQ(CsvCell("-2+3"), "'-2+3");
  EXPECT_EQ(CsvCell("@SUM(A1)"), "'@SUM(A1)");
  EXPECT_EQ(CsvCell("\tx"), "'\tx");
  EXPECT_EQ(CsvCell("\rx"), "\"'\rx\"");
  // Harmless text is left alone; the mark is only at the start.
  EXPECT_EQ(CsvCell("laptop-1"), "laptop-1");
  EXPECT_EQ(CsvCell("a=b"), "a=b");
  EXPECT_EQ(CsvCell(""), "");
}

TEST(Csv, QuotesCommasQuotesAndLineBreaks) {
  EXPECT_EQ(CsvCell("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvCell("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvCell("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(CsvRow({"1", "x,y", "=1+1"}), "1,\"x,y\",'=1+1\r\n");
}

}  // namespace
}  // namespace appban::server
