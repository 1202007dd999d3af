# Shared by the scripts: paths and small helpers. Source it, don't run it.
# shellcheck shell=bash
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
TOOLS="$ROOT/.tools"
export PATH="$HOME/.cargo/bin:$TOOLS/node_modules/.bin:$PATH"
# trunk: never phone home, never download a tool.
export TRUNK_SKIP_VERSION_CHECK=true
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock")
export WASM_BINDGEN_VERSION

say() { printf '==> %s\n' "$*" >&2; }

# start_server <log file> <flags...>: builds and starts the reference server
# in the background; sets SERVER_PID and SERVER_URL. The caller must arrange
# stop_server on exit (trap).
start_server() {
  local log=$1
  shift
  cargo build -q -p tether-server --bin tether-server
  "$ROOT/target/debug/tether-server" "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  SERVER_URL=
  for _ in $(seq 1 300); do
    SERVER_URL=$(sed -n 's/^listening on \(http:\/\/[^ ]*\).*/\1/p' "$log" | head -n1)
    [ -n "$SERVER_URL" ] && return 0
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      say "the reference server exited; its log:"
      cat "$log" >&2
      return 1
    fi
    sleep 0.1
  done
  say "the reference server did not report its address within 30 s; its log:"
  cat "$log" >&2
  return 1
}

stop_server() {
  if [ -n "${SERVER_PID:-}" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}

# start_redis <dir>: a redis-server of our own on a free port of 127.0.0.1,
# no persistence, data dir <dir> (made empty); sets REDIS_PID, REDIS_PORT
# and REDIS_URL. The caller must arrange stop_redis on exit (trap).
start_redis() {
  local dir=$1
  rm -rf "$dir"
  mkdir -p "$dir"
  # Bind port 0 and close it: `redis-server --port 0` turns TCP off
  # instead of picking a free port.
  REDIS_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir" >"$dir/redis.log" 2>&1 &
  REDIS_PID=$!
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && return 0
    kill -0 "$REDIS_PID" 2>/dev/null || break
    sleep 0.1
  done
  say "redis-server did not answer on port $REDIS_PORT; its log:"
  cat "$dir/redis.log" >&2
  return 1
}

stop_redis() {
  if [ -n "${REDIS_PID:-}" ] && kill -0 "$REDIS_PID" 2>/dev/null; then
    kill "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
  REDIS_PID=
}
