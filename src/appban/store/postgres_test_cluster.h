// Test support: a private PostgreSQL 15 for the tests of one process, never the machine's own
// cluster. It runs Debian's binaries (/usr/lib/postgresql/15/bin, or $APPBAN_PG_BIN) on a data
// directory in a fresh temp directory, listening on a Unix socket in that directory, where the one
// superuser "appban" is trusted, and on a free loopback port that takes only TLS connections
// (a self-signed certificate for IP 127.0.0.1, made with openssl at start) with a SCRAM password:
// what tests of TLS and password files connect to. The machine's own server is never involved.
//
// Cost: initdb (~3 s on this machine) runs once per user and machine into a template directory
// ($TMPDIR/appban-pg15-template-u<uid>, built under a lock and renamed into place when complete);
// each test process copies it and starts the server (~1.5 s), once per process however many tests
// it runs, and each test gets its own database (CreateDatabase).
//
// As root: initdb and postgres refuse to run as root, so the binaries run as `nobody` through
// setpriv (util-linux), and the directories they write are handed to nobody. The test itself
// connects over the socket (mode 0777) as any user.
//
// Stopping: the process's static destructor stops the server (pg_ctl -m fast) and removes the
// directory; a watchdog shell started with it does the same if the process dies without running
// destructors (a crash, a ctest timeout kill).
// Thread-compatible: call Shared() and CreateDatabase() from the test's main thread.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "appban/common/status.h"
#include "appban/store/postgres.h"

namespace appban::store {

class PostgresTestCluster {
 public:
  // The process's cluster, started at the first call. An error (no PostgreSQL installed, initdb
  // failed) is returned to every caller, with the server log's path when there is one.
  static Result<PostgresTestCluster*> Shared() {
    static Result<std::unique_ptr<PostgresTestCluster>> cluster = Start();
    if (!cluster.ok()) return cluster.status();
    return cluster->get();
  }

  // A new empty database; returns its URL.
  Result<std::string> CreateDatabase() {
    std::string name = "appban_test_" + std::to_string(++databases_);
    APPBAN_ASSIGN_OR_RETURN(postgres::Connection admin, postgres::Connection::Open(Url("postgres")));
    APPBAN_RETURN_IF_ERROR(admin.ExecScript("CREATE DATABASE " + name));
    return Url(name);
  }
  std::string Url(const std::string& database) const {
    return "postgresql://appban@/" + database + "?host=" + dir_ + "&port=" + std::to_string(port_);
  }
  const std::string& dir() const { return dir_; }
  // The loopback TCP port (TLS and SCRAM only) and the certificate to verify the server with.
  int port() const { return port_; }
  std::string ca_file() const { return dir_ + "/server.crt"; }

  ~PostgresTestCluster() {
    (void)Run(AsServerUser() + Quoted(bin_ + "/pg_ctl") + " -D " + Quoted(dir_ + "/data") +
              " -m fast -s -w stop >/dev/null 2>&1");
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

 private:
  // A port nobody listens on now (the kernel's choice for an ephemeral bind).
  static Result<int> FreeLoopbackPort() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    bool ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
              ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
    if (fd >= 0) ::close(fd);
    if (!ok) return Status::Unavailable("postgres test cluster: no free loopback port");
    return static_cast<int>(ntohs(address.sin_port));
  }

  static std::string Quoted(const std::string& text) {
    std::string out = "'";
    for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
  }
  static bool IsRoot() { return ::geteuid() == 0; }
  static std::string AsServerUser() { return IsRoot() ? "setpriv --reuid=nobody --regid=nogroup --clear-groups " : ""; }
  static Status Run(const std::string& command) {
    int rc = std::system(command.c_str());
    if (rc != 0)
      return Status::Unavailable("postgres test cluster: `" + command + "` failed (" + std::to_string(rc) + ")");
    return Status::Ok();
  }
  static Status GiveToServerUser(const std::string& path) {
    return IsRoot() ? Run("chown -R nobody:nogroup " + Quoted(path)) : Status::Ok();
  }

  // The initdb'ed template, made once per user (concurrent test processes wait on the lock).
  static Result<std::string> Template(const std::string& bin) {
    namespace fs = std::filesystem;
    std::string base = (fs::temp_directory_path() / ("appban-pg15-template-u" + std::to_string(::geteuid()))).string();
    if (fs::exists(base + "/ready")) return base;
    int lock = ::open((base + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || ::flock(lock, LOCK_EX) != 0) {
      if (lock >= 0) ::close(lock);
      return Status::Unavailable("postgres test cluster: cannot lock " + base + ".lock");
    }
    auto build = [&]() -> Status {
      if (fs::exists(base + "/ready")) return Status::Ok();  // another process built it meanwhile
      std::string staging = base + ".staging";
      std::error_code ignored;
      fs::remove_all(staging, ignored);
      fs::remove_all(base, ignored);
      fs::create_directories(staging);
      APPBAN_RETURN_IF_ERROR(GiveToServerUser(staging));
      APPBAN_RETURN_IF_ERROR(Run(AsServerUser() + Quoted(bin + "/initdb") + " -D " + Quoted(staging + "/data") +
                                 " -U appban -A trust -E UTF8 --locale=C --no-sync >" +
                                 Quoted(staging + "/initdb.log") + " 2>&1"));
      APPBAN_RETURN_IF_ERROR(Run("touch " + Quoted(staging + "/ready")));
      fs::rename(staging, base);
      return Status::Ok();
    };
    Status built = build();
    ::close(lock);
    APPBAN_RETURN_IF_ERROR(built);
    return base;
  }

  static Result<std::unique_ptr<PostgresTestCluster>> Start() {
    namespace fs = std::filesystem;
    const char* configured = std::getenv("APPBAN_PG_BIN");
    std::string bin = configured ? configured : "/usr/lib/postgresql/15/bin";
    if (!fs::exists(bin + "/initdb") || !fs::exists(bin + "/pg_ctl")) {
      return Status::Unavailable("postgres test cluster: no initdb/pg_ctl in " + bin +
                                 " (install postgresql-15: scripts/setup.sh --test)");
    }
    APPBAN_ASSIGN_OR_RETURN(std::string template_dir, Template(bin));
    std::string pattern = (fs::temp_directory_path() / "appban-pg-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return Status::Unavailable("postgres test cluster: mkdtemp failed");
    std::unique_ptr<PostgresTestCluster> cluster(new PostgresTestCluster(bin, pattern));
    const std::string& dir = cluster->dir_;
    APPBAN_RETURN_IF_ERROR(Run("cp -a " + Quoted(template_dir + "/data") + " " + Quoted(dir + "/data")));
    // Local connections trusted; TCP only with TLS and a SCRAM password.
    {
      std::ofstream hba(dir + "/data/pg_hba.conf", std::ios::trunc);
      hba << "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n";
      if (!hba.flush()) return Status::Unavailable("postgres test cluster: cannot write pg_hba.conf");
    }
    APPBAN_RETURN_IF_ERROR(
        Run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
            "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
            Quoted(dir + "/server.key") + " -out " + Quoted(dir + "/server.crt") + " >/dev/null 2>&1 && chmod 600 " +
            Quoted(dir + "/server.key")));
    APPBAN_RETURN_IF_ERROR(GiveToServerUser(dir));
    APPBAN_ASSIGN_OR_RETURN(cluster->port_, FreeLoopbackPort());
    // The watchdog: stops the server and removes the directory once this process is gone.
    APPBAN_RETURN_IF_ERROR(Run("setsid sh -c " +
                               Quoted("while kill -0 " + std::to_string(::getpid()) +
                                      " 2>/dev/null; do sleep 1; done; " + AsServerUser() + Quoted(bin + "/pg_ctl") +
                                      " -D " + Quoted(dir + "/data") + " -m immediate -s stop; rm -rf " + Quoted(dir)) +
                               " </dev/null >/dev/null 2>&1 &"));
    // fsync off (-F): the tests check behaviour, not power-loss durability, and share two cores.
    std::string options = "-k " + dir + " -c listen_addresses=127.0.0.1 -p " + std::to_string(cluster->port_) +
                          " -c ssl=on -c ssl_cert_file=" + dir + "/server.crt -c ssl_key_file=" + dir +
                          "/server.key -F -c max_connections=40 -c shared_buffers=16MB";
    APPBAN_RETURN_IF_ERROR(Run(AsServerUser() + Quoted(bin + "/pg_ctl") + " -D " + Quoted(dir + "/data") + " -l " +
                               Quoted(dir + "/server.log") + " -w -s -t 60 -o " + Quoted(options) +
                               " start >/dev/null"));
    return cluster;
  }

  PostgresTestCluster(std::string bin, std::string dir) : bin_(std::move(bin)), dir_(std::move(dir)) {}

  std::string bin_;
  std::string dir_;
  int port_ = 0;
  int databases_ = 0;
};

}  // namespace appban::store
