#!/usr/bin/env bash
# Loopback pull benchmark: `cellar pull` of a generated diffusers-style
# pipeline through the test Hub (API + redirects), with nginx serving the
# bytes as the CDN, against `curl` fetching the same files one after another
# from the same nginx. Then a second pipeline sharing PULL_BENCH_SHARE of its
# bytes: only the unshared rest may cross the wire.
#
#   bench/pull.sh path/to/cellar
#   PULL_BENCH_BYTES  pipeline size (default 4 GiB)
#   PULL_BENCH_SHARE  share of the second pipeline's bytes (default 0.6)
#   PULL_BENCH_JOBS   cellar --jobs (default 8)
#   BENCH_DIR         scratch (default /tmp/cellar-bench)
set -euo pipefail

BIN=$(realpath "${1:?usage: bench/pull.sh path/to/cellar}")
SRC=$(cd "$(dirname "$0")/.." && pwd)
BYTES=${PULL_BENCH_BYTES:-4294967296}
SHARE=${PULL_BENCH_SHARE:-0.6}
JOBS=${PULL_BENCH_JOBS:-8}
B=${BENCH_DIR:-/tmp/cellar-bench}/pull
FX=$B/fixtures-$BYTES-$SHARE
mkdir -p "$B"

if [ ! -e "$FX/.done" ]; then
    echo "generating two pipelines of $BYTES bytes in $FX ..."
    rm -rf "$FX"
    python3 "$SRC/tests/hub/make_fixtures.py" "$FX" --bench "$BYTES" "$SHARE"
    touch "$FX/.done"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NGX=$B/nginx
rm -rf "$NGX"
mkdir -p "$NGX/logs" "$NGX/tmp"
NPORT=$(free_port)
cat >"$NGX/nginx.conf" <<EOF
daemon off;
worker_processes 2;
pid $NGX/nginx.pid;
error_log $NGX/logs/error.log;
events { worker_connections 256; }
http {
    access_log $NGX/logs/access.log;
    log_format bytes '\$body_bytes_sent';
    client_body_temp_path $NGX/tmp/body;
    proxy_temp_path $NGX/tmp/proxy;
    fastcgi_temp_path $NGX/tmp/fastcgi;
    uwsgi_temp_path $NGX/tmp/uwsgi;
    scgi_temp_path $NGX/tmp/scgi;
    sendfile on;
    server {
        listen 127.0.0.1:$NPORT;
        access_log $NGX/logs/bytes.log bytes;
        location / { root $FX; }
    }
}
EOF
/usr/sbin/nginx -p "$NGX" -c "$NGX/nginx.conf" &
NGXPID=$!
python3 "$SRC/tests/hub/hubserver.py" "$FX" --cdn-url "http://127.0.0.1:$NPORT" >"$B/hub.port" 2>"$B/hub.log" &
HUBPID=$!
trap 'kill $HUBPID $NGXPID 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$B/hub.port" ] && break; sleep 0.1; done
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$NPORT/" && break; sleep 0.1; done
HUBPORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["hub"])' "$B/hub.port")
export HF_ENDPOINT=http://127.0.0.1:$HUBPORT
unset HF_TOKEN HF_HUB_OFFLINE

# The test hub hashes a repo's files on its first API call: do that before
# any clock runs, as a real Hub has it done long before.
for r in a b; do curl -sf -o /dev/null "$HF_ENDPOINT/api/models/bench/$r/revision/main?blobs=true"; done

wire_bytes() { awk '{s+=$1} END {printf "%.0f\n", s}' "$NGX/logs/bytes.log"; }
now() { date +%s.%N; }

# curl, one file after another, to disk, from the same nginx.
rm -rf "$B/curl"
mkdir -p "$B/curl"
t0=$(now)
(cd "$FX/bench/a/main" && find . -type f | sort) | while IFS= read -r f; do
    mkdir -p "$B/curl/$(dirname "$f")"
    curl -sf -o "$B/curl/$f" "http://127.0.0.1:$NPORT/bench/a/main/${f#./}"
done
t_curl=$(echo "$(now) - $t0" | bc)
# cellar fsyncs every object before it names it; curl leaves the bytes in
# the page cache. The same durability for curl costs a sync.
sync
t_curl_sync=$(echo "$(now) - $t0" | bc)

export CELLAR_HOME=$B/store
rm -rf "$CELLAR_HOME" "$B/out-a" "$B/out-b"
sync
: >"$NGX/logs/bytes.log"
t0=$(now)
/usr/bin/time -v "$BIN" pull bench/a --to "$B/out-a" --jobs "$JOBS" >"$B/pull-a.out" 2>"$B/pull-a.time"
t_a=$(echo "$(now) - $t0" | bc)
rss_a=$(awk -F': ' '/Maximum resident/ {print $2}' "$B/pull-a.time")
wire_a=$(wire_bytes)

: >"$NGX/logs/bytes.log"
t0=$(now)
/usr/bin/time -v "$BIN" pull bench/b --to "$B/out-b" --jobs "$JOBS" >"$B/pull-b.out" 2>"$B/pull-b.time"
t_b=$(echo "$(now) - $t0" | bc)
wire_b=$(wire_bytes)
# Bytes of b that a does not share and the CDN serves: the unet shards
# (model_index.json, also unshared, is kept in git and comes from the hub).
unshared=$(find "$FX/bench/b/main" -type f -path "*/unet/*" -printf "%s\n" | awk '{s+=$1} END {printf "%.0f\n", s}')
total_b=$(find "$FX/bench/b/main" -type f -printf '%s\n' | awk '{s+=$1} END {printf "%.0f\n", s}')

cmp -s "$FX/bench/b/main/text_encoder/model.safetensors" "$B/out-b/text_encoder/model.safetensors"

printf 'pipeline: %s bytes; second shares %s\n' "$BYTES" "$SHARE"
printf 'curl, files one after another: %8.2f s\n' "$t_curl"
printf 'cellar pull (--jobs %s):        %8.2f s  (%s bytes on the wire)\n' "$JOBS" "$t_a" "$wire_a"
printf 'curl, then sync:                %8.2f s\n' "$t_curl_sync"
printf 'ratio cellar/curl:              %8.2f  (target <= 0.7)\n' "$(echo "$t_a / $t_curl" | bc -l)"
printf 'ratio cellar/(curl + sync):     %8.2f\n' "$(echo "$t_a / $t_curl_sync" | bc -l)"
printf 'peak memory of cellar pull:     %8.1f MB (target < 100)\n' "$(echo "$rss_a / 1024" | bc -l)"
printf 'second pipeline:                %8.2f s  (%.2f of the first)\n' "$t_b" "$(echo "$t_b / $t_a" | bc -l)"
printf 'second pipeline on the wire:    %s bytes; unshared: %s of %s (%.1f%%)\n' \
    "$wire_b" "$unshared" "$total_b" "$(echo "100 * $unshared / $total_b" | bc -l)"
if [ "$wire_b" = "$unshared" ]; then
    echo "bytes transferred equal the unshared part: yes"
else
    echo "bytes transferred equal the unshared part: NO" >&2
    exit 1
fi
