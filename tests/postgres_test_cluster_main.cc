// The ctest fixture "postgres_cluster": one PostgreSQL cluster for the whole test run instead of
// one per test process (store/postgres_test_cluster.h).
//   appban_pg_test_cluster start FILE DIR   starts it in DIR and describes it in FILE
//   appban_pg_test_cluster stop FILE        stops it and removes DIR and FILE
#include <cstdio>
#include <string>

#include "appban/store/postgres_test_cluster.h"

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: %s start FILE DIR | stop FILE\n", argv[0]);
    return 2;
  }
  appban::Status status =
      appban::store::PostgresTestCluster::RunFixture(argv[1], argv[2], argc == 4 ? argv[3] : std::string());
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
