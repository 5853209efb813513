// Test support: a private PostgreSQL 15 for the tests, never the machine's own cluster. It runs
// Debian's binaries (/usr/lib/postgresql/15/bin, or $APPBAN_PG_BIN) on a data directory of its own,
// listening on a Unix socket in that directory, where the one superuser "appban" is trusted, and on
// a free loopback port that takes only TLS connections (a self-signed certificate for IP 127.0.0.1,
// made with openssl at start) with a SCRAM password: what tests of TLS and password files connect
// to. The machine's own server is never involved.
//
// One cluster per ctest run: the ctest fixture "postgres_cluster" (tests/CMakeLists.txt) starts it
// in the build directory before the first PostgreSQL test (RunFixture "start") and stops it after
// the last ("stop"); it describes the cluster in a file whose path the tests find in
// $APPBAN_PG_TEST_CLUSTER (kClusterFileVariable). Shared() attaches to that cluster. Without the
// variable (a test binary run by hand) or when the file names no running cluster, the process
// starts a cluster of its own in a temp directory, once however many tests it runs. Either way each
// test creates its own database (CreateDatabase: a name unique across processes), so tests stay
// independent and may run in parallel on one cluster.
//
// Cost: initdb (~3 s on this machine) runs once per user and machine into a template directory
// ($TMPDIR/appban-pg15-template-u<uid>, built under a lock and renamed into place when complete);
// starting a cluster copies it and starts the server (~1.5 s).
//
// As root: initdb and postgres refuse to run as root, so the binaries run as `nobody` through
// setpriv (util-linux), and the directories they write are handed to nobody. The test itself
// connects over the socket (mode 0777) as any user.
//
// Stopping: a cluster a test process started is stopped by the process's static destructor
// (pg_ctl -m fast), which also removes its directory; the fixture's is stopped by the cleanup test.
// A watchdog shell started with each cluster does the same once the process that owns it is gone
// without doing so (a crash, a ctest timeout kill; for the fixture's cluster, ctest itself).
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
#include <random>
#include <sstream>
#include <string>

#include "appban/common/status.h"
#include "appban/store/postgres.h"

namespace appban::store {

class PostgresTestCluster {
 public:
  // The environment variable naming the file that describes the run's cluster.
  static constexpr const char* kClusterFileVariable = "APPBAN_PG_TEST_CLUSTER";
  // The description is three short lines; anything longer is not ours.
  static constexpr size_t kMaxClusterFileBytes = 4096;

  // The cluster this process's tests use: the run's (attached) or one of its own, started at the
  // first call. An error (no PostgreSQL installed, initdb failed) is returned to every caller.
  static Result<PostgresTestCluster*> Shared() {
    static Result<std::unique_ptr<PostgresTestCluster>> cluster = AttachOrStart();
    if (!cluster.ok()) return cluster.status();
    return cluster->get();
  }

  // The ctest fixture's command: `start FILE DIR` starts a cluster in a new directory under DIR
  // that outlives this process, watched on behalf of the parent process (ctest), and describes it
  // in FILE; `stop FILE` stops the cluster FILE describes and removes its directory and FILE. Each
  // run gets its own directory, so the watchdog of a run that just ended never touches the next.
  static Status RunFixture(const std::string& command, const std::string& file, const std::string& parent) {
    namespace fs = std::filesystem;
    if (command == "start") {
      // A run killed before its cleanup left its cluster: stopped when `stale` goes.
      if (auto stale = Describe(file); stale.ok()) (*stale)->owned_ = true;
      std::error_code error;
      fs::remove(file, error);
      fs::create_directories(parent, error);
      if (error) return Status::Unavailable("postgres test cluster: cannot create " + parent + ": " + error.message());
      std::string dir = parent + "/run-XXXXXX";
      if (::mkdtemp(dir.data()) == nullptr) return Status::Unavailable("postgres test cluster: mkdtemp in " + parent);
      APPBAN_ASSIGN_OR_RETURN(std::unique_ptr<PostgresTestCluster> cluster, Start(dir, ::getppid()));
      std::ofstream out(file + ".partial", std::ios::trunc);
      out << "dir=" << cluster->dir_ << "\nport=" << cluster->port_ << "\nbin=" << cluster->bin_ << "\n";
      if (!out.flush()) return Status::Unavailable("postgres test cluster: cannot write " + file);
      fs::rename(file + ".partial", file, error);
      if (error) return Status::Unavailable("postgres test cluster: cannot write " + file + ": " + error.message());
      cluster->owned_ = false;  // it outlives this process; `stop` ends it
      return Status::Ok();
    }
    if (command == "stop") {
      APPBAN_ASSIGN_OR_RETURN(std::unique_ptr<PostgresTestCluster> cluster, Describe(file));
      cluster->owned_ = true;  // the destructor stops it and removes its directory
      std::error_code ignored;
      fs::remove(file, ignored);
      return Status::Ok();
    }
    return Status::InvalidArgument("postgres test cluster: unknown command '" + command + "' (start, stop)");
  }

  // A new empty database; returns its URL. The name is unique across the processes sharing the
  // cluster (pid, a per-process counter and random bits: a later process may reuse a pid).
  Result<std::string> CreateDatabase() {
    std::ostringstream name;
    name << "appban_test_" << ::getpid() << "_" << ++databases_ << "_" << std::hex << std::random_device{}();
    APPBAN_ASSIGN_OR_RETURN(postgres::Connection admin, postgres::Connection::Open(Url("postgres")));
    APPBAN_RETURN_IF_ERROR(admin.ExecScript("CREATE DATABASE " + name.str()));
    return Url(name.str());
  }
  // Drops a database CreateDatabase made, closing what is still connected to it: the run's cluster
  // then holds only the databases of the tests running now.
  Status DropDatabase(const std::string& name) {
    APPBAN_ASSIGN_OR_RETURN(postgres::Connection admin, postgres::Connection::Open(Url("postgres")));
    return admin.ExecScript("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  }
  // The database a URL of Url() names.
  static std::string DatabaseOf(const std::string& url) {
    size_t begin = url.find("@/");
    size_t end = url.find('?');
    return begin == std::string::npos || end == std::string::npos || end < begin
               ? ""
               : url.substr(begin + 2, end - begin - 2);
  }
  std::string Url(const std::string& database) const {
    return "postgresql://appban@/" + database + "?host=" + dir_ + "&port=" + std::to_string(port_);
  }
  const std::string& dir() const { return dir_; }
  // The directory of the server's binaries, where Debian's postgresql-client of the same version
  // puts pg_dump and pg_restore too.
  const std::string& bin() const { return bin_; }
  // The loopback TCP port (TLS and SCRAM only) and the certificate to verify the server with.
  int port() const { return port_; }
  std::string ca_file() const { return dir_ + "/server.crt"; }

  ~PostgresTestCluster() {
    if (owned_) (void)Stop(dir_);
  }

 private:
  // Stops the server of `dir` (if running) and removes the directory.
  Status Stop(const std::string& dir) const {
    Status stopped = Run(AsServerUser() + Quoted(bin_ + "/pg_ctl") + " -D " + Quoted(dir + "/data") +
                         " -m fast -s -w stop >/dev/null 2>&1");
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
    return stopped;
  }

  static std::string Binaries() {
    const char* configured = std::getenv("APPBAN_PG_BIN");
    return configured ? configured : "/usr/lib/postgresql/15/bin";
  }

  // The cluster a fixture file describes (not owned: stopping it is the fixture's business).
  static Result<std::unique_ptr<PostgresTestCluster>> Describe(const std::string& file) {
    std::ifstream in(file);
    if (!in) return Status::NotFound("postgres test cluster: no description at " + file);
    std::string text(kMaxClusterFileBytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxClusterFileBytes)
      return Status::LimitExceeded("postgres test cluster: " + file + " is longer than its limit");
    std::string dir, port, bin;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("dir=", 0) == 0) dir = line.substr(4);
      if (line.rfind("port=", 0) == 0) port = line.substr(5);
      if (line.rfind("bin=", 0) == 0) bin = line.substr(4);
    }
    if (dir.empty() || bin.empty() || port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos)
      return Status::Corruption("postgres test cluster: " + file + " does not describe a cluster");
    std::unique_ptr<PostgresTestCluster> cluster(new PostgresTestCluster(bin, dir));
    cluster->port_ = std::stoi(port);
    cluster->owned_ = false;
    return cluster;
  }

  // The run's cluster when the fixture describes one that answers; else a cluster of our own.
  // The file is $APPBAN_PG_TEST_CLUSTER, or the one the build names (APPBAN_PG_TEST_CLUSTER_FILE, for
  // test binaries whose ctest ENVIRONMENT already carries another variable).
  static Result<std::unique_ptr<PostgresTestCluster>> AttachOrStart() {
    const char* file = std::getenv(kClusterFileVariable);
#ifdef APPBAN_PG_TEST_CLUSTER_FILE
    if (file == nullptr || *file == '\0') file = APPBAN_PG_TEST_CLUSTER_FILE;
#endif
    if (file != nullptr && *file != '\0') {
      auto described = Describe(file);
      if (described.ok() && postgres::Connection::Open((*described)->Url("postgres")).ok()) return described;
    }
    std::string pattern = (std::filesystem::temp_directory_path() / "appban-pg-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return Status::Unavailable("postgres test cluster: mkdtemp failed");
    return Start(pattern, ::getpid());
  }

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

  // Unix socket paths are limited to 107 bytes (sockaddr_un); the socket is DIR/.s.PGSQL.PORT.
  static constexpr size_t kMaxSocketDirBytes = 107 - sizeof("/.s.PGSQL.65535") + 1;

  // Starts a cluster in the existing empty directory `dir`, watched on behalf of `owner`: the
  // watchdog stops it and removes `dir` once that process is gone.
  static Result<std::unique_ptr<PostgresTestCluster>> Start(const std::string& dir, pid_t owner) {
    namespace fs = std::filesystem;
    std::string bin = Binaries();
    if (!fs::exists(bin + "/initdb") || !fs::exists(bin + "/pg_ctl")) {
      return Status::Unavailable("postgres test cluster: no initdb/pg_ctl in " + bin +
                                 " (install postgresql-15: scripts/setup.sh --test)");
    }
    if (dir.size() > kMaxSocketDirBytes) {
      return Status::InvalidArgument("postgres test cluster: " + dir + " is longer than " +
                                     std::to_string(kMaxSocketDirBytes) + " bytes, too long for its Unix socket");
    }
    APPBAN_ASSIGN_OR_RETURN(std::string template_dir, Template(bin));
    std::unique_ptr<PostgresTestCluster> cluster(new PostgresTestCluster(bin, dir));
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
    // The watchdog: stops the server and removes the directory once its owner is gone.
    APPBAN_RETURN_IF_ERROR(Run("setsid sh -c " +
                               Quoted("while kill -0 " + std::to_string(owner) + " 2>/dev/null; do sleep 1; done; " +
                                      AsServerUser() + Quoted(bin + "/pg_ctl") + " -D " + Quoted(dir + "/data") +
                                      " -m immediate -s stop; rm -rf " + Quoted(dir)) +
                               " </dev/null >/dev/null 2>&1 &"));
    // fsync off (-F): the tests check behaviour, not power-loss durability, and share two cores.
    std::string options = "-k " + dir + " -c listen_addresses=127.0.0.1 -p " + std::to_string(cluster->port_) +
                          " -c ssl=on -c ssl_cert_file=" + dir + "/server.crt -c ssl_key_file=" + dir +
                          "/server.key -F -c max_connections=100 -c shared_buffers=16MB";
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
  bool owned_ = true;  // this process stops it (else the ctest fixture does)
};

}  // namespace appban::store
