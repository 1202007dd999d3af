# The Chanx test server (tests/chanx): its virtualenv, start and stop.
# Source it, don't run it (scripts/chanx-server is the command).
# shellcheck shell=bash
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
CHANX_DIR="$ROOT/tests/chanx"
CHANX_VENV="$ROOT/target/chanx-venv"
CHANX_PY="$CHANX_VENV/bin/python"

chanx_say() { printf '==> %s\n' "$*" >&2; }

# ensure_chanx_venv: creates target/chanx-venv and installs
# tests/chanx/requirements.txt into it, unless that exact file is already
# installed there (a stamp holds its checksum): then it takes no time.
ensure_chanx_venv() {
  local want have=
  want=$(sha256sum "$CHANX_DIR/requirements.txt" | cut -d' ' -f1)
  [ -f "$CHANX_VENV/.requirements.sha256" ] && have=$(cat "$CHANX_VENV/.requirements.sha256")
  if [ "$want" = "$have" ] && "$CHANX_PY" -c 'import chanx, daphne, websockets, pytest' 2>/dev/null; then
    return 0
  fi
  chanx_say "installing the Chanx test server's packages into target/chanx-venv"
  if [ ! -x "$CHANX_PY" ]; then
    python3 -m venv "$CHANX_VENV" || return 1
  fi
  rm -f "$CHANX_VENV/.requirements.sha256"
  "$CHANX_PY" -m pip install --quiet --disable-pip-version-check \
    -r "$CHANX_DIR/requirements.txt" || return 1
  printf '%s\n' "$want" >"$CHANX_VENV/.requirements.sha256"
}

# start_chanx_server <log file>: starts the Chanx app under daphne in the
# background on a port the kernel picks (port=0: nothing to race for), with a
# fresh SQLite database in a temporary directory and the dev-only /test/
# routes on; sets CHANX_PID and CHANX_URL (http://127.0.0.1:PORT). The caller
# must arrange stop_chanx_server on exit (trap).
start_chanx_server() {
  local log=$1
  ensure_chanx_venv || return 1
  CHANX_DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/chanx-data.XXXXXX")
  export CHANX_DATA_DIR CHANX_TEST_ROUTES=1 DJANGO_SETTINGS_MODULE=chanxapp.settings PYTHONUNBUFFERED=1
  if ! PYTHONPATH="$CHANX_DIR" "$CHANX_PY" "$CHANX_DIR/manage.py" migrate --noinput -v0 >"$log" 2>&1; then
    chanx_say "the Chanx test server's database could not be set up; its log:"
    cat "$log" >&2
    return 1
  fi
  PYTHONPATH="$CHANX_DIR" "$CHANX_VENV/bin/daphne" \
    -e tcp:port=0:interface=127.0.0.1 chanxapp.asgi:application >>"$log" 2>&1 &
  CHANX_PID=$!
  CHANX_URL=
  for _ in $(seq 1 300); do
    CHANX_URL=$(sed -n 's/^Listening on TCP address \(127\.0\.0\.1:[0-9]*\)$/http:\/\/\1/p' "$log" | head -n1)
    [ -n "$CHANX_URL" ] && return 0
    if ! kill -0 "$CHANX_PID" 2>/dev/null; then
      chanx_say "the Chanx test server exited; its log:"
      cat "$log" >&2
      return 1
    fi
    sleep 0.1
  done
  chanx_say "the Chanx test server did not report its address within 30 s; its log:"
  cat "$log" >&2
  return 1
}

# stop_chanx_server: stops the server that start_chanx_server started (by its
# PID) and removes its database.
stop_chanx_server() {
  if [ -n "${CHANX_PID:-}" ] && kill -0 "$CHANX_PID" 2>/dev/null; then
    kill "$CHANX_PID" 2>/dev/null || true
    wait "$CHANX_PID" 2>/dev/null || true
  fi
  CHANX_PID=
  if [ -n "${CHANX_DATA_DIR:-}" ] && [ -d "$CHANX_DATA_DIR" ]; then
    rm -rf "$CHANX_DATA_DIR"
  fi
  CHANX_DATA_DIR=
}
