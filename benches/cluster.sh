#!/usr/bin/env bash
# Fan-out across a cluster: 1 sender -> N receivers in one room, receivers spread round-robin over K gateway
# nodes sharing one PostgreSQL schema and the local NATS. Prints one `odd bench` report per K.
#
#   cargo build --release --bins && bash benches/cluster.sh            # K = 1 2 3, N = 1000, M = 200
#   NODES="1 2" N=500 M=100 bash benches/cluster.sh
#
# K=0 is the single-node baseline without a bus (same PostgreSQL). All nodes and the bench share this machine's
# cores, so on a small machine the figures show the bus's cost, not the capacity a real cluster adds.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release
PG=${ODD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
NATS=${ODD_TEST_NATS_URL:-nats://127.0.0.1:4222}
N=${N:-1000}; M=${M:-200}; NODES=${NODES:-"0 1 2 3"}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

for k in $NODES; do
  schema="bench_cluster_$$_$k"
  urls=()
  count=$k; [ "$k" = 0 ] && count=1
  for i in $(seq 1 "$count"); do
    tcp=$(port); http=$(port)
    cluster=""
    [ "$k" != 0 ] && cluster="[cluster]
nats_url = \"$NATS\"
subject_prefix = \"bench$$k$k\""
    cat > "$work/n$k-$i.toml" <<TOML
[database]
url = "$PG"
schema = "$schema"
[limits]
commands_per_second = 1000000
$cluster
TOML
    ODD_CONFIG="$work/n$k-$i.toml" ODD_DATA_DIR="$work/d$k-$i" ODD_NODE="n$i" ODD_TCP="127.0.0.1:$tcp" \
      ODD_HTTP="127.0.0.1:$http" ODD_TLS=off ODD_QUIC=off ODD_HTTPS=off ODD_RTC=off RUST_LOG=warn "$BIN/odd-gateway" &
    pids+=($!)
    for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$tcp) 2>/dev/null && break; sleep 0.1; done
    urls+=("tcp://127.0.0.1:$tcp")
  done
  sleep 2   # heartbeats: every node sees the others
  joined=$(IFS=,; echo "${urls[*]}")
  echo "== K=$k nodes ($([ "$k" = 0 ] && echo 'single node, no bus' || echo 'NATS bus')), N=$N receivers, M=$M messages"
  "$BIN/odd" --url "$joined" bench fanout --attach -n "$N" -m "$M" || echo "run failed"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  psql "$PG" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
done
