#!/usr/bin/env bash
# The live OpenAPI document against outside tools: openapi-spec-validator checks the document,
# schemathesis calls every operation with generated input (a bounded number of examples each)
# and fails on a 5xx or an answer that breaks the document's schemas.
# Needs target/debug/crossprov (cargo build) and both tools on PATH (.ci/run installs them).
# SCHEMATHESIS_EXAMPLES sets the examples per operation (default 40).
set -euo pipefail
cd "$(dirname "$0")/.."

B="$PWD/target/debug/crossprov"
[ -x "$B" ] || { echo "FAIL: $B missing (cargo build first)" >&2; exit 1; }
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-40}"

WORK="$(mktemp -d)"
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# A port nobody uses: ask the kernel for one.
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
API="$BASE/api/v1"
export CROSSPROV_DATA_DIR="$WORK/data"
export CROSSPROV_DATABASE__URL="sqlite://$WORK/data/crossprov.db"
export CROSSPROV_LOG__LEVEL=warn
# The tokens are taken before the runs (generated logins soon throttle this address) and
# must outlive all three.
export CROSSPROV_AUTH__TOKEN_TTL_SECONDS=3600
mkdir -p "$WORK/data"

"$B" serve --listen "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
PID=$!
for _ in $(seq 1 60); do
  curl -sf "$BASE/readyz" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -sf "$BASE/readyz" >/dev/null || { cat "$WORK/serve.log" >&2; echo "FAIL: the service did not start" >&2; exit 1; }

# 1. The document itself, by an independent validator.
curl -sf "$API/openapi.json" -o "$WORK/openapi.json"
openapi-spec-validator "$WORK/openapi.json"

# 2. People and a hall to act as (as the README's walk-through makes them).
json() { python3 -c "import sys, json; print(json.load(sys.stdin)$1)"; }
tok() {
  curl -sf "$API/auth/token" -H 'Content-Type: application/json' \
    -d "{\"username\":\"$1\",\"password\":\"$2\"}" | json '["access_token"]'
}
echo 'admin-passphrase' | "$B" user add --username admin --role admin --password-stdin >/dev/null
ADMIN="$(tok admin admin-passphrase)"
post() { curl -sf "$API$1" -H "Authorization: Bearer $2" -H 'Content-Type: application/json' -d "$3"; }
HALL="$(post /halls "$ADMIN" '{"code":"JN-LX-01","name":"济南历下营业厅","province":"37","city":"370100",
  "address":"济南市历下区泉城路 1 号","email":"lixia@halls.example.cn"}' | json '["id"]')"
post /users "$ADMIN" '{"username":"clerk.yn","password":"clerk-passphrase","role":"clerk","province":"53"}' >/dev/null
post /users "$ADMIN" "{\"username\":\"staff.jn\",\"password\":\"staff-passphrase\",\"role\":\"hall_staff\",\"hall_id\":\"$HALL\"}" >/dev/null
post /users "$ADMIN" '{"username":"auditor","password":"auditor-passphrase","role":"auditor"}' >/dev/null
post /users "$ADMIN" '{"username":"someone","password":"someone-passphrase","role":"auditor"}' >/dev/null
CLERK="$(tok clerk.yn clerk-passphrase)"
STAFF="$(tok staff.jn staff-passphrase)"
AUDITOR="$(tok auditor auditor-passphrase)"
# Orders, so calls on an order reach its checks rather than a 404: one for the clerk's run,
# one for the hall staff's.
order() {
  post /work-orders "$CLERK" "{\"msisdn\":\"$1\",\"target_province\":\"37\",\"target_city\":\"370100\",
    \"target_hall_id\":\"$HALL\",\"reason\":\"用户常住济南\",\"expected_name\":\"张三\"}" | json '["id"]'
}
CLERKS_ORDER="$(order 18912345678)"
STAFFS_ORDER="$(order 18912345679)"

# 3. Every operation, each as the role that may make it (others answer 403 before they look
#    at anything), with real ids in the paths (`[parameters]` of schemathesis' config).
run() {
  local who="$1" token="$2" params="$3"
  shift 3
  echo "schemathesis as $who"
  printf '[parameters]\n%s\n' "$params" >"$WORK/$who.toml"
  # From the temp folder: schemathesis keeps a cache in the current one.
  (cd "$WORK" && schemathesis --no-color --config-file "$WORK/$who.toml" run "$API/openapi.json" \
    --url "$BASE" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "$EXAMPLES" \
    --phases examples,coverage,fuzzing \
    --generation-database none \
    --workers 2 \
    --seed 1 \
    "$@")
}
run clerk "$CLERK" "\"path.id\" = \"$CLERKS_ORDER\"" \
  --exclude-path-regex '^/api/v1/(admin|audit|halls|users)'
run staff "$STAFF" "\"path.id\" = \"$STAFFS_ORDER\"" --include-path-regex '^/api/v1/(work-orders/|device-keys)'
run auditor "$AUDITOR" "\"path.id\" = \"$CLERKS_ORDER\"" --include-path-regex '^/api/v1/(audit|subscribers)'
# Last: the admin's calls disable, enable and reset the password of `someone`.
run admin "$ADMIN" "\"path.id\" = \"$HALL\"
\"path.username\" = \"someone\"" --include-path-regex '^/api/v1/(admin|halls|users|device-keys)'

# The service must have kept going through all of it.
curl -sf "$BASE/readyz" >/dev/null || { echo "FAIL: the service stopped answering" >&2; exit 1; }
echo "schemathesis: no 5xx, every answer within the document"
