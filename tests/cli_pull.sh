#!/usr/bin/env bash
# cellar pull against the test Hub (tests/hub/hubserver.py) on 127.0.0.1:
# sharing between pipelines, every fault mode, resume after kill -9, token
# handling, concurrent pulls, the HF cache layout, offline and dry runs.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
test_dir cli_pull

TOKEN=hf_s3cret_t0ken_do_not_print
hub_start --token "$TOKEN"
# Bounds on waits are generous (a loaded 2-core machine); each loop ends as
# soon as its condition holds.
unset HF_TOKEN HF_HUB_OFFLINE HF_HUB_CACHE HF_HOME
export HOME=$T/home

ctl() { curl -sf "$HF_ENDPOINT/_control?$1" >/dev/null; }
# Body bytes the servers sent for files whose key ends with $1 (all: "").
served() { curl -sf "$HF_ENDPOINT/_stats?sum=$1"; }
stat_field() { curl -sf "$HF_ENDPOINT/_stats?field=$1"; }
reset_stats() { curl -sf "$HF_ENDPOINT/_stats?reset=1" >/dev/null; }
fsize() { stat -c %s "$1"; }
inode() { stat -c %i "$1"; }
# Every object in the store is named by the sha256 of its bytes.
store_sound() {
    local home=$1 f name sum
    [ -d "$home/objects" ] || return 0
    while IFS= read -r f; do
        name=$(basename "$(dirname "$f")")$(basename "$f")
        sum=$(sha256sum <"$f" | cut -c1-64)
        if [ "$name" != "$sum" ]; then echo "store object $f holds $sum" >&2; return 1; fi
    done < <(find "$home/objects" -type f)
}
# The pulled folder $1 holds exactly the bytes of fixture repo $2.
same_tree() {
    local dir=$1 fx=$2 f
    (cd "$fx" && find . -type f | sort) >"$T/want.lst"
    (cd "$dir" && find -L . -type f | sort) >"$T/got.lst"
    cmp -s "$T/want.lst" "$T/got.lst" || { diff "$T/want.lst" "$T/got.lst" >&2; return 1; }
    while IFS= read -r f; do cmp -s "$fx/$f" "$dir/$f" || { echo "$f differs" >&2; return 1; }; done <"$T/want.lst"
}
pull() { "$BIN" pull "$@"; }
FX=$T/fx
UNET=unet/diffusion_pytorch_model.safetensors
VAE=vae/diffusion_pytorch_model.safetensors
TE=text_encoder/model.safetensors
# All of a repo's file sizes.
repo_bytes() { find "$1" -type f -printf '%s\n' | awk '{s+=$1} END {print s}'; }

# ---- sharing: A then B downloads only what A lacked -----------------------
export CELLAR_HOME=$T/store
reset_stats
pull pipe/alpha --to "$T/a" >"$T/out" 2>&1 || { cat "$T/out"; bad "pull alpha"; }
check "alpha bytes" same_tree "$T/a" "$FX/pipe/alpha/main"
check "alpha served in full" [ "$(served "")" = "$(repo_bytes "$FX/pipe/alpha/main")" ]
check "summary line" grep -q "downloaded 9 files" "$T/out"
reset_stats
pull pipe/beta --to "$T/b" >"$T/out" 2>&1 || { cat "$T/out"; bad "pull beta"; }
check "beta bytes" same_tree "$T/b" "$FX/pipe/beta/main"
want=$(( $(fsize "$FX/pipe/beta/main/$UNET") + $(fsize "$FX/pipe/beta/main/unet/config.json") + $(fsize "$FX/pipe/beta/main/model_index.json") ))
check "beta downloads only what alpha lacked" [ "$(served "")" = "$want" ]
check "beta summary" grep -q "downloaded 3 files.*reused 6 files" "$T/out"
check "shared vae is one inode" [ "$(inode "$T/a/$VAE")" = "$(inode "$T/b/$VAE")" ]
check "shared text encoder is one inode" [ "$(inode "$T/a/$TE")" = "$(inode "$T/b/$TE")" ]
check "shared git file is one inode" [ "$(inode "$T/a/tokenizer/vocab.txt")" = "$(inode "$T/b/tokenizer/vocab.txt")" ]
check "store sound" store_sound "$CELLAR_HOME"

# ---- the HF cache layout --------------------------------------------------
reset_stats
pull pipe/alpha --hf-cache "$T/hf" >"$T/out" 2>&1 || { cat "$T/out"; bad "pull --hf-cache"; }
R=$T/hf/models--pipe--alpha
commit=$(cat "$R/refs/main")
check "refs/main is 40 hex, no newline" [ "$(printf %s "$commit" | wc -c)" = 40 ]
check "refs/main names the commit" grep -qE '^[0-9a-f]{40}$' "$R/refs/main"
check "nothing downloaded again" [ "$(served "")" = 0 ]
sha=$(sha256sum <"$FX/pipe/alpha/main/$UNET" | cut -c1-64)
check "LFS snapshot link" [ "$(readlink "$R/snapshots/$commit/$UNET")" = "../../../blobs/$sha" ]
git_id=$(git hash-object "$FX/pipe/alpha/main/model_index.json")
check "git-file snapshot link" [ "$(readlink "$R/snapshots/$commit/model_index.json")" = "../../blobs/$git_id" ]
obj=$CELLAR_HOME/objects/sha256/${sha:0:2}/${sha:2}
check "blob is the store's object" [ "$(inode "$R/blobs/$sha")" = "$(inode "$obj")" ]
check "blobs hold only etags" [ "$(find "$R/blobs" -type f | wc -l)" = 9 ]
check "cache snapshot bytes" same_tree "$(cd "$R/snapshots/$commit" && pwd -P)" "$FX/pipe/alpha/main"
# A branch other than main gets its own ref.
pull lab/branched --revision v2 --hf-cache "$T/hf" >/dev/null 2>&1 || bad "pull v2"
c2=$(cat "$T/hf/models--lab--branched/refs/v2")
check "v2 bytes" cmp -s "$FX/lab/branched/v2/model.safetensors" "$T/hf/models--lab--branched/snapshots/$c2/model.safetensors"
check "no main ref for a v2 pull" [ ! -e "$T/hf/models--lab--branched/refs/main" ]
# "--hf-cache REPO --revision REV": REV is the option's value, not a second
# word, so REPO is the repo, not the cache folder.
HF_HUB_CACHE=$T/hf-order pull --hf-cache lab/branched --revision v2 --offline >"$T/out" 2>&1 || { cat "$T/out"; bad "--hf-cache then the repo"; }
check "--hf-cache before the repo" [ -s "$T/hf-order/models--lab--branched/refs/v2" ]

# ---- pagination ------------------------------------------------------------
ctl page_size=3
pull lab/many --to "$T/many" >/dev/null 2>&1 || bad "pull paginated"
check "every page listed" same_tree "$T/many" "$FX/lab/many/main"
ctl page_size=1000

# ---- globs, --json, the default cache --------------------------------------
pull pipe/gamma --to "$T/globs" --include "*.json" --include "tokenizer/" --exclude "unet/*" \
    --json >"$T/out.json" 2>"$T/err" || { cat "$T/err"; bad "globs"; }
check "globs: only the chosen files" [ "$(cd "$T/globs" && find . -type f | sort | tr '\n' ' ')" = \
    "./model_index.json ./scheduler/scheduler_config.json ./text_encoder/config.json ./tokenizer/vocab.txt ./vae/config.json " ]
check "json: counts" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["repo"] == "pipe/gamma" and len(r["commit"]) == 40
assert r["files_downloaded"] == 1 and r["files_reused"] == 4, r
assert {f["path"]: f["action"] for f in r["files"]}["model_index.json"] == "download"
' "$T/out.json"
HF_HUB_CACHE=$T/hf-default pull lab/branched --hf-cache >/dev/null 2>&1 || bad "default cache"
check "HF_HUB_CACHE honoured" [ -s "$T/hf-default/models--lab--branched/refs/main" ]

# ---- dry run and offline ---------------------------------------------------
reset_stats
pull pipe/gamma --dry-run --to "$T/g" >"$T/out" 2>&1 || bad "dry run"
check "dry run names downloads" grep -q "^download $UNET" "$T/out"
check "dry run names reuse" grep -q "^reuse    $VAE" "$T/out"
check "dry run downloads nothing" [ "$(served "")" = 0 ]
check "dry run writes nothing" [ ! -e "$T/g" ]
HF_ENDPOINT=http://127.0.0.1:9 pull pipe/beta --offline --to "$T/off" >/dev/null 2>&1 || bad "offline pull"
check "offline bytes" same_tree "$T/off" "$FX/pipe/beta/main"
HF_HUB_OFFLINE=1 HF_ENDPOINT=http://127.0.0.1:9 pull pipe/alpha --to "$T/off2" >/dev/null 2>&1 || bad "HF_HUB_OFFLINE"
check "HF_HUB_OFFLINE bytes" same_tree "$T/off2" "$FX/pipe/alpha/main"
if pull pipe/nope --offline --to "$T/off3" >"$T/out" 2>&1; then bad "offline unknown repo"; fi
check "offline unknown repo says so" grep -q "no snapshot" "$T/out"

# ---- errors: 401/403/404 and the token -------------------------------------
if pull corp/secret --to "$T/s" >"$T/out" 2>&1; then bad "gated without token"; fi
check "401 mentions the token" grep -q "401.*token" "$T/out"
if pull corp/secret --token wrong_token --to "$T/s" >"$T/out" 2>&1; then bad "gated, wrong token"; fi
check "403 mentions the token" grep -q "403.*token" "$T/out"
reset_stats
HF_TOKEN=$TOKEN pull corp/secret --to "$T/s" >"$T/out" 2>&1 || { cat "$T/out"; bad "gated with token"; }
check "gated bytes" same_tree "$T/s" "$FX/corp/secret/main"
check "token never reaches the CDN" [ "$(stat_field auth_leaks)" = 0 ]
check "gated weights came from the CDN" [ "$(served weights.safetensors)" = 50000 ]
check "token never printed" bash -c "! grep -q '$TOKEN' '$T/out'"
if pull pipe/nope --to "$T/x" >"$T/out" 2>&1; then bad "missing repo"; fi
check "404 repo" grep -q "repository not found" "$T/out"
if pull pipe/alpha --revision v9 --to "$T/x" >"$T/out" 2>&1; then bad "missing revision"; fi
check "404 revision" grep -q "revision 'v9' not found" "$T/out"
ctl "mode=gone&count=-1&match=pipe/gamma/unet/config.json"
if pull pipe/gamma --to "$T/x" >"$T/out" 2>&1; then bad "missing file"; fi
check "404 file" grep -q "file 'unet/config.json' not found at revision 'main'" "$T/out"
ctl clear=1
if pull ../etc --to "$T/x" >"$T/out" 2>&1; then bad "bad repo name"; fi
check "bad repo name" grep -q "ORG/NAME" "$T/out"

# ---- fault modes (a fresh store each, so the files are downloaded) --------
fresh() { export CELLAR_HOME=$T/store-$1; ctl clear=1; reset_stats; }
want_unet=$(fsize "$FX/pipe/alpha/main/$UNET")

# Faults that a retry or a resume survives, one per file, in one pull.
fresh survivable
ctl "mode=reset&count=2&match=$UNET"
ctl "mode=wrong&count=1&match=$TE"
ctl "mode=500&count=2&match=$VAE"
ctl "mode=429&count=1&match=tokenizer/vocab.txt"
pull pipe/alpha --to "$T/f-faults" >"$T/out" 2>&1 || { cat "$T/out"; bad "survivable faults: pull"; }
check "faults: bytes" same_tree "$T/f-faults" "$FX/pipe/alpha/main"
check "reset: resumed by range" [ "$(stat_field ranges)" -ge 1 ]
check "reset: not downloaded twice" [ "$(served "$UNET")" -lt $((want_unet * 2)) ]
check "wrong once: fetched again" [ "$(served "$TE")" = 1400000 ]
# Measured at the server, between the 429 and the next request for that
# file: a busy machine only lengthens it; backoff alone would wait 250 ms.
check "429: Retry-After honoured" [ "$(stat_field retry_gap_ms)" -ge 1000 ]
check "faults: store sound" store_sound "$CELLAR_HOME"

fresh norange
ctl "mode=reset&count=1&match=$UNET"
ctl "mode=norange&count=-1&match=$UNET"
pull pipe/alpha --to "$T/f-norange" >"$T/out" 2>&1 || { cat "$T/out"; bad "norange: pull"; }
check "norange: bytes" same_tree "$T/f-norange" "$FX/pipe/alpha/main"
check "norange: store sound" store_sound "$CELLAR_HOME"

fresh wrong
ctl "mode=wrong&count=-1&match=vocab.txt"
if pull pipe/alpha --to "$T/f-wrong" >"$T/out" 2>&1; then bad "wrong always: must fail"; fi
check "wrong always: says so" grep -q "vocab.txt: gave up after 3 tries.*expected" "$T/out"
check "wrong always: store sound" store_sound "$CELLAR_HOME"
vocab_sha=$(sha256sum <"$FX/pipe/alpha/main/tokenizer/vocab.txt" | cut -c1-64)
check "wrong always: nothing admitted for it" [ ! -e "$CELLAR_HOME/objects/sha256/${vocab_sha:0:2}/${vocab_sha:2}" ]

fresh e500all
ctl "mode=500&count=-1&match=/api/models/"
if pull pipe/alpha --to "$T/f-500all" >"$T/out" 2>&1; then bad "500 always: must fail"; fi
check "500 always: gives up clearly" grep -q "gave up after 6 tries.*500" "$T/out"

fresh trunc1
ctl "mode=truncjson&count=1&match=/tree/"
ctl "mode=429&count=1&match=/revision/"
pull pipe/alpha --to "$T/f-trunc1" >"$T/out" 2>&1 || { cat "$T/out"; bad "API 429, cut JSON once: pull"; }
check "API 429, cut JSON once: bytes" same_tree "$T/f-trunc1" "$FX/pipe/alpha/main"
check "API 429, cut JSON once: tried again" [ "$(stat_field api)" = 4 ]

fresh trunc
ctl "mode=truncjson&count=-1&match=/api/"
if pull pipe/alpha --to "$T/f-trunc" >"$T/out" 2>&1; then bad "truncjson: must fail"; fi
check "truncjson: says invalid JSON" grep -q "invalid JSON" "$T/out"

fresh malicious
ctl "mode=malicious&count=-1&match=pipe/alpha"
mkdir -p "$T/mal/inner"
if pull pipe/alpha --to "$T/mal/inner/target" >"$T/out" 2>&1; then bad "malicious: must fail"; fi
check "malicious: refused" grep -q "unsafe path" "$T/out"
check "malicious: nothing written" [ -z "$(find "$T/mal" -mindepth 1 -not -path "$T/mal/inner")" ]
check "malicious: nothing downloaded" [ "$(served "")" = 0 ]
ctl "mode=malicious&count=-1&match=pipe/alpha"
if pull pipe/alpha --hf-cache "$T/mal-hf" >"$T/out" 2>&1; then bad "malicious hf: must fail"; fi
check "malicious hf: nothing written" [ ! -e "$T/mal-hf" ]

# ---- a large file in parallel ranged parts ---------------------------------
fresh parts
pull pipe/alpha --include "unet/*" --jobs 8 --part-size 200KB --to "$T/p1" >"$T/out" 2>&1 || { cat "$T/out"; bad "parts: pull"; }
check "parts: bytes" cmp -s "$FX/pipe/alpha/main/$UNET" "$T/p1/$UNET"
check "parts: several range requests" [ "$(stat_field ranges)" -ge 2 ]
check "parts: each byte fetched once" [ "$(served "$UNET")" = "$want_unet" ]
check "parts: store sound" store_sound "$CELLAR_HOME"
fresh parts-reset
ctl "mode=reset&count=2&match=$UNET"
pull pipe/alpha --include "unet/*" --jobs 8 --part-size 200KB --to "$T/p2" >"$T/out" 2>&1 || { cat "$T/out"; bad "parts, reset: pull"; }
check "parts, reset: bytes" cmp -s "$FX/pipe/alpha/main/$UNET" "$T/p2/$UNET"
check "parts, reset: store sound" store_sound "$CELLAR_HOME"
fresh parts-norange
ctl "mode=norange&count=-1&match=$UNET"
pull pipe/alpha --include "unet/*" --jobs 8 --part-size 200KB --to "$T/p3" >"$T/out" 2>&1 || { cat "$T/out"; bad "parts, ranges ignored: pull"; }
check "parts, ranges ignored: bytes" cmp -s "$FX/pipe/alpha/main/$UNET" "$T/p3/$UNET"
check "parts, ranges ignored: store sound" store_sound "$CELLAR_HOME"

# ---- a killed pull resumes by range ---------------------------------------
fresh kill
ctl "mode=slow&count=-1&match=$UNET&rate=300000"
"$BIN" pull pipe/alpha --to "$T/f-kill" >"$T/out" 2>&1 &
pid=$!
for _ in $(seq 600); do
    [ "$(served "$UNET")" -gt 200000 ] && break
    sleep 0.1
done
check "kill: the first pull got part of the file" [ "$(served "$UNET")" -gt 200000 ]
kill -9 $pid
wait $pid 2>/dev/null || true
before=$(served "$UNET")
ctl clear=1
reset_stats
pull pipe/alpha --to "$T/f-kill" >"$T/out" 2>&1 || { cat "$T/out"; bad "resume after kill"; }
check "kill: bytes" same_tree "$T/f-kill" "$FX/pipe/alpha/main"
check "kill: resumed by range" [ "$(stat_field ranges)" -ge 1 ]
check "kill: only the rest fetched" [ "$(served "$UNET")" -le $((want_unet - before + 65536 * 4)) ]
check "kill: store sound" store_sound "$CELLAR_HOME"

# ---- two pulls of overlapping repos at once --------------------------------
fresh concurrent
ctl "mode=slow&count=-1&match=$VAE&rate=400000"
pull pipe/alpha --to "$T/c-a" >"$T/out-a" 2>&1 &
pa=$!
pull pipe/beta --to "$T/c-b" >"$T/out-b" 2>&1 &
pb=$!
wait $pa || { cat "$T/out-a"; bad "concurrent alpha"; }
wait $pb || { cat "$T/out-b"; bad "concurrent beta"; }
check "concurrent: alpha bytes" same_tree "$T/c-a" "$FX/pipe/alpha/main"
check "concurrent: beta bytes" same_tree "$T/c-b" "$FX/pipe/beta/main"
check "concurrent: vae downloaded once" [ "$(served "$VAE")" = 300000 ]
check "concurrent: text encoder downloaded once" [ "$(served "$TE")" = 700000 ]
check "concurrent: one inode" [ "$(inode "$T/c-a/$VAE")" = "$(inode "$T/c-b/$VAE")" ]
check "concurrent: store sound" store_sound "$CELLAR_HOME"

check "usage error exits 2" bash -c "'$BIN' pull >/dev/null 2>&1; [ \$? = 2 ]"
check "help" bash -c "'$BIN' pull --help | grep -q hf-cache"

test_end
