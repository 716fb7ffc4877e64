#!/usr/bin/env bash
# Cross-check of `vigie bench interactions` with wrk (apt-get install wrk): a release `vigie serve`
# on a fresh data dir, 20 enabled policies, an ingest token, 16 connections for 10 s.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
cargo build --release --quiet
dir=$(mktemp -d); port=${PORT:-18181}; base="http://127.0.0.1:$port"
VIGIE_ADMIN_PASSWORD="wrk bench password" ./target/release/vigie serve --role firewall --data-dir "$dir" --firewall-addr "127.0.0.1:$port" 2>/dev/null &
pid=$!; trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
until curl -sf "$base/readyz" >/dev/null; do sleep 0.1; done
admin=$(curl -s "$base/api/v1/auth/login" -d '{"email":"admin@vigie.local","password":"wrk bench password"}' | python3 -c 'import sys,json;print(json.load(sys.stdin)["token"])')
for i in $(seq -w 1 20); do
  curl -s -o /dev/null -H "authorization: Bearer $admin" "$base/api/v1/policies" \
    -d "{\"name\":\"wrk policy $i\",\"enabled\":true,\"priority\":$((100+10#$i)),\"rules\":{\"action\":\"coach\",\"conditions\":[{\"field\":\"platform_id\",\"operator\":\"in\",\"value\":[\"internal-$i\",\"unknown-ai\"]},{\"field\":\"risk_score\",\"operator\":\"gt\",\"value\":\"0.5\"}]}}"
done
TOKEN=$(curl -s -H "authorization: Bearer $admin" "$base/api/v1/tokens" -d '{"name":"wrk","role":"ingest"}' | python3 -c 'import sys,json;print(json.load(sys.stdin)["token"])')
export TOKEN
wrk -t2 -c16 -d${SECONDS_RUN:-10}s --latency -s bench/post-interaction.lua "$base/api/v1/interactions"
