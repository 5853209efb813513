# Shared by the server benchmarks (sourced, not run): a temp work directory and an `appban server`
# on a free loopback port with plain HTTP, relaxed enrolment rate limits and warn-level logs, on
# SQLite or (BENCH_DATABASE=postgres) on a PostgreSQL of its own.
#   bench_start_server NAME [LISTEN_KEYS] [MORE_TOML]
# NAME names the work directory (/tmp/appban-bench-NAME.XXXXXX); LISTEN_KEYS are added to
# [listen] (e.g. "max_connections = 105100"), MORE_TOML after the other tables. Sets work, url,
# admin (the first-start token) and server_pid; on exit the server is stopped (with the simulator
# whose pid is in sim_pid, if any) and the work directory removed (kept with BENCH_KEEP=1).
# BENCH_REUSE=DIR starts the server again on the data of a work directory a BENCH_KEEP=1 run left
# (a new port; the admin token is read from DIR/admin-token, saved by the first start), so a
# benchmark that spends minutes filling a database can skip that when measured again; such a
# directory is kept. Sets reused=1 then, else reused=0.
# BENCH_NODES=2 (with BENCH_DATABASE=postgres) starts a second node on the same database, from a
# copy of the first node's data directory (the keys and CA every node shares: docs/postgresql.md,
# "Several nodes"), on another port: sets url2 and server2_pid; urls lists both.
# Also: api TOKEN METHOD PATH [JSON], json_get EXPRESSION (on stdin: d is the parsed JSON).
#
# The two-person rule compares people, so a benchmark that approves a ban needs a second one:
# with BENCH_SECOND_PERSON=1 set before bench_start_server, the test suite's OpenID Connect
# provider (tests/oidc/provider.mjs: oidc-provider under Debian's node, installed by
# scripts/setup.sh --test) runs beside the server, and `bench_person bob` prints an ID token of bob
# (role appban-admin) to approve with.

bench_cleanup() {
  if [[ -n "${pg_dir:-}" ]]; then
    ${pg_as:-} "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [[ -n "${provider_pid:-}" ]]; then kill -TERM "$provider_pid" 2>/dev/null || true; wait "$provider_pid" 2>/dev/null || true; fi
  if [[ -n "${sim_pid:-}" ]]; then kill -TERM "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
  if [[ -n "${sim2_pid:-}" ]]; then kill -TERM "$sim2_pid" 2>/dev/null || true; wait "$sim2_pid" 2>/dev/null || true; fi
  if [[ -n "${server2_pid:-}" ]]; then kill -TERM "$server2_pid" 2>/dev/null || true; wait "$server2_pid" 2>/dev/null || true; fi
  if [[ -n "${server_pid:-}" ]]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [[ -n "${BENCH_KEEP:-}" || -n "${BENCH_REUSE:-}" ]]; then
    echo "work directory kept: $work (BENCH_REUSE=$work to measure on it again)" >&2
  else
    rm -rf "$work"
  fi
}

# With BENCH_DATABASE=postgres the server runs on a PostgreSQL 15 of its own (Debian's binaries,
# $APPBAN_PG_BIN to override) in the work directory: a Unix socket only, fsync on (durable like the
# SQLite server's synchronous=FULL), max_connections 200, shared_buffers 256 MB; else on SQLite.
bench_start_postgres() {
  pg_bin=${APPBAN_PG_BIN:-/usr/lib/postgresql/15/bin}
  pg_dir="$work/pg"
  pg_as=""
  mkdir -p "$pg_dir"
  if [[ $(id -u) == 0 ]]; then  # initdb and postgres refuse to run as root
    chmod 755 "$work"
    chown nobody:nogroup "$pg_dir"
    pg_as="setpriv --reuid=nobody --regid=nogroup --clear-groups"
  fi
  $pg_as "$pg_bin/initdb" -D "$pg_dir/data" -U appban --auth=trust -E UTF8 --locale=C >/dev/null
  $pg_as "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w \
    -o "-k $pg_dir -c listen_addresses= -c max_connections=200 -c shared_buffers=256MB ${BENCH_PG_OPTIONS:-}" start >/dev/null
  "$pg_bin/createdb" -h "$pg_dir" -U appban appban
  database_url="postgresql://appban@/appban?host=$pg_dir"
}

bench_start_server() {
  local name=$1 listen_keys=${2:-} more_toml=${3:-}
  reused=0
  if [[ -n "${BENCH_REUSE:-}" ]]; then
    [[ -f "$BENCH_REUSE/admin-token" && -d "$BENCH_REUSE/data" ]] ||
      { echo "BENCH_REUSE=$BENCH_REUSE: no data/ and admin-token there (left by a BENCH_KEEP=1 run)" >&2; exit 1; }
    [[ "${BENCH_DATABASE:-sqlite}" == sqlite ]] || { echo "BENCH_REUSE works on SQLite only" >&2; exit 1; }
    work=$BENCH_REUSE
    reused=1
  else
    work=$(mktemp -d "/tmp/appban-bench-$name.XXXXXX")
  fi
  server_pid=""
  sim_pid=""
  server2_pid=""
  sim2_pid=""
  url2=""
  pg_dir=""
  if [[ "${BENCH_NODES:-1}" == 2 && "${BENCH_DATABASE:-sqlite}" != postgres ]]; then
    echo "BENCH_NODES=2 needs BENCH_DATABASE=postgres: nodes share one PostgreSQL database" >&2
    exit 1
  fi
  trap bench_cleanup EXIT
  local database_toml=""
  if [[ "${BENCH_DATABASE:-sqlite}" == postgres ]]; then
    bench_start_postgres
    database_toml="database = \"$database_url\""
  fi
  local port identity_toml=""
  provider_pid=""
  if [[ "${BENCH_SECOND_PERSON:-0}" == 1 ]]; then
    local provider_port
    provider_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    node tests/oidc/provider.mjs --port "$provider_port" --keys "$work/idp-keys.json" > "$work/idp.log" 2>&1 &
    provider_pid=$!
    for _ in $(seq 1 200); do grep -q "^ready " "$work/idp.log" && break; sleep 0.1; done
    issuer=$(sed -n 's/^ready //p' "$work/idp.log" | head -1)
    [[ -n "$issuer" ]] || { echo "the OpenID Connect provider did not start:" >&2; cat "$work/idp.log" >&2; exit 1; }
    identity_toml="[[identity.oidc]]
name = \"bench-idp\"
issuer = \"$issuer\"
client_id = \"appban\""
  fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$work/server.toml" <<TOML
data_dir = "$work/data"
$database_toml
[listen]
address = "127.0.0.1"
port = $port
tls = false
insecure_plain_http = true
$listen_keys
[enrollment]
rate_limit_burst = 100000
rate_limit_per_minute = 1000000
[log]
level = "warn"
$more_toml
$identity_toml
TOML
  "$APPBAN" server --config "$work/server.toml" > "$work/server.log" 2>&1 &
  server_pid=$!
  url="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    { (( reused )) || grep -q "Admin API token:" "$work/server.log"; } && curl -fs "$url/healthz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  if (( reused )); then
    admin=$(cat "$work/admin-token")
    curl -fs "$url/healthz" >/dev/null || { echo "server did not start:" >&2; cat "$work/server.log" >&2; exit 1; }
  else
    admin=$(sed -n 's/.*Admin API token: *//p' "$work/server.log" | head -1)
    [[ -n "$admin" ]] || { echo "server did not start:" >&2; cat "$work/server.log" >&2; exit 1; }
    (umask 077; echo "$admin" > "$work/admin-token")
  fi
  urls=("$url")
  if [[ "${BENCH_NODES:-1}" == 2 ]]; then
    local port2
    port2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cp -a "$work/data" "$work/data-b"
    rm -f "$work/data-b/server.lock"
    sed -e "s|^data_dir = .*|data_dir = \"$work/data-b\"|" -e "s|^port = .*|port = $port2|" \
      "$work/server.toml" > "$work/server-b.toml"
    "$APPBAN" server --config "$work/server-b.toml" > "$work/server-b.log" 2>&1 &
    server2_pid=$!
    url2="http://127.0.0.1:$port2"
    for _ in $(seq 1 100); do curl -fs "$url2/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
    curl -fs "$url2/readyz" >/dev/null || { echo "node B did not start:" >&2; cat "$work/server-b.log" >&2; exit 1; }
    urls+=("$url2")
  fi
}

api() {  # api TOKEN METHOD PATH [JSON]
  curl -fsS -X "$2" -H "Authorization: Bearer $1" -H 'Content-Type: application/json' ${4:+-d "$4"} "$url$3"
}
json_get() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }
bench_person() { node tests/oidc/sign-in.mjs "$issuer" appban "$1"; }  # an ID token of login $1
