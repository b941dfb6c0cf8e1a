#!/usr/bin/env bash
# cellar get: Hub references pulled through the store into BASE/ORG/NAME
# (only missing blobs, shared files one inode), --skip-download making no
# request, local shard sets checked (duplicates), DDUF components, --json.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
test_dir cli_get

hub_start
unset HF_TOKEN HF_HUB_OFFLINE DIFFSYNTH_SKIP_DOWNLOAD DIFFSYNTH_MODEL_BASE_PATH
export HOME=$T/home CELLAR_HOME=$T/store
served() { curl -sf "$HF_ENDPOINT/_stats?sum=$1"; }
api_calls() { curl -sf "$HF_ENDPOINT/_stats?field=api"; }
reset_stats() { curl -sf "$HF_ENDPOINT/_stats?reset=1" >/dev/null; }
inode() { stat -c %i "$1"; }
VAE=vae/diffusion_pytorch_model.safetensors
B=$T/models

# ---- a folder pattern, then a file another repo shares --------------------
reset_stats
"$BIN" get pipe/alpha:vae/ --base "$B" >"$T/out" 2>"$T/err" || { cat "$T/err"; bad "get alpha vae/"; }
check "vae/ lists the folder's files, sorted" [ "$(cat "$T/out")" = "$B/pipe/alpha/vae/config.json
$B/pipe/alpha/$VAE" ]
check "bytes as served" cmp -s "$B/pipe/alpha/$VAE" "$T/fx/pipe/alpha/main/$VAE"
check "nothing else laid out" [ ! -e "$B/pipe/alpha/unet" ]
sha=$(sha256sum <"$B/pipe/alpha/$VAE" | cut -c1-64)
check "a hard link to the store's object" [ "$(inode "$B/pipe/alpha/$VAE")" = "$(inode "$CELLAR_HOME/objects/sha256/${sha:0:2}/${sha:2}")" ]
reset_stats
DIFFSYNTH_MODEL_BASE_PATH=$B "$BIN" get "pipe/beta@main" --pattern "$VAE" >"$T/out" 2>"$T/err" || { cat "$T/err"; bad "get beta vae"; }
check "base from DIFFSYNTH_MODEL_BASE_PATH" [ "$(cat "$T/out")" = "$B/pipe/beta/$VAE" ]
check "shared file not downloaded again" [ "$(served "")" = 0 ]
check "shared file is one inode" [ "$(inode "$B/pipe/alpha/$VAE")" = "$(inode "$B/pipe/beta/$VAE")" ]
"$BIN" get pipe/alpha --base "$B" --json >"$T/out.json" 2>"$T/err" || { cat "$T/err"; bad "get --json"; }
check "json: every file" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert len(r["files"]) == 9 and r["files"] == sorted(r["files"]), r
' "$T/out.json"

# ---- skip-download: no request at all --------------------------------------
reset_stats
"$BIN" get pipe/alpha:'unet/*' --base "$B" --skip-download >"$T/out" 2>"$T/err" || { cat "$T/err"; bad "skip-download present"; }
check "skip-download finds what is there" grep -q "unet/diffusion_pytorch_model.safetensors" "$T/out"
if DIFFSYNTH_SKIP_DOWNLOAD=true "$BIN" get pipe/gamma:'vae/' --base "$B" >"$T/out" 2>"$T/err"; then
    bad "skip-download of a missing repo succeeded"
else
    check "missing under skip-download is a clear error" grep -q "no file matching 'vae/\*' and downloads are skipped" "$T/err"
fi
check "skip-download made no request" [ "$(api_calls)" = 0 ] 
check "skip-download fetched nothing" [ "$(served "")" = 0 ]
if "$BIN" get pipe/nosuch --base "$B" >/dev/null 2>"$T/err"; then bad "missing repo"; else ok; fi

# ---- HF_HUB_OFFLINE: from the store's records, into a fresh base ------------
reset_stats
B2=$T/base-offline
HF_HUB_OFFLINE=1 "$BIN" get pipe/alpha:vae/ --base "$B2" >"$T/out" 2>"$T/err" || { cat "$T/err"; bad "offline get"; }
check "offline: the files the store holds, laid out" [ "$(cat "$T/out")" = "$B2/pipe/alpha/vae/config.json
$B2/pipe/alpha/$VAE" ]
check "offline: one inode with the online layout" [ "$(inode "$B2/pipe/alpha/$VAE")" = "$(inode "$B/pipe/alpha/$VAE")" ]
check "offline: no request" [ "$(api_calls)" = 0 ]
if HF_HUB_OFFLINE=1 "$BIN" get pipe/gamma --base "$B2" >/dev/null 2>"$T/err"; then
    bad "offline get of a repo never pulled succeeded"
else
    check "offline, never pulled: says so" grep -qi "pipe/gamma" "$T/err"
fi

# ---- local references --------------------------------------------------------
L=$T/local
mkdir -p "$L/set"
python3 - "$L" <<'PY'
import json, struct, sys
def st(path, tensors):
    hdr, off, data = {}, 0, b""
    for name, raw in tensors.items():
        hdr[name] = {"dtype": "U8", "shape": [len(raw)], "data_offsets": [off, off + len(raw)]}
        off += len(raw); data += raw
    h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)
d = sys.argv[1]
st(d + "/set/model-00002-of-00002.safetensors", {"b": b"bb"})
st(d + "/set/model-00001-of-00002.safetensors", {"a": b"a"})
json.dump({"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
           "b": "model-00002-of-00002.safetensors"}}, open(d + "/set/model.safetensors.index.json", "w"))
st(d + "/one.safetensors", {"x": b"1"})
st(d + "/two.safetensors", {"x": b"22"})
PY
"$BIN" get "$L/set" >"$T/out" 2>"$T/err" || { cat "$T/err"; bad "local set"; }
check "shards in order" [ "$(cat "$T/out")" = "$L/set/model-00001-of-00002.safetensors
$L/set/model-00002-of-00002.safetensors" ]
"$BIN" get --json "$L/set/model.safetensors.index.json" >"$T/out" || bad "index --json"
check "json counts tensors" grep -q '"tensors": 2' "$T/out"
rm "$L/set/model-00002-of-00002.safetensors"
if "$BIN" get "$L/set" >/dev/null 2>"$T/err"; then bad "index naming a missing shard"; else
    check "missing shard named" grep -q "model-00002-of-00002.safetensors" "$T/err"; fi
if "$BIN" get "$L/nope.safetensors" >/dev/null 2>"$T/err"; then bad "missing file"; else
    check "missing file said so" grep -q "no such file" "$T/err"; fi
rc=0
"$BIN" get "$L/set" --bogus >/dev/null 2>&1 || rc=$?
check "a bad option is a usage error" [ "$rc" = 2 ]

test_end
