#!/usr/bin/env bash
# Issue 14's hostile-server and race cases against the test Hub: a gc in a
# loop during a throttled pull, a repeating and an endless cursor, a huge
# listed size, a dot folder, a symlinked folder and an edited file in
# --to DIR, and a signed CDN URL that must not reach any message.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
test_dir cli_hostile

hub_start
GCPID=
trap 'kill $HUBPID $GCPID 2>/dev/null || true' EXIT
unset HF_TOKEN HF_HUB_OFFLINE HF_HUB_CACHE HF_HOME
export HOME=$T/home
ctl() { curl -sf "$HF_ENDPOINT/_control?$1" >/dev/null; }
FX=$T/fx/pipe/alpha/main
same_tree() {
    local dir=$1 fx=$2 f
    (cd "$fx" && find . -type f | sort) >"$T/want.lst"
    (cd "$dir" && find -L . -type f | sort) >"$T/got.lst"
    cmp -s "$T/want.lst" "$T/got.lst" || { diff "$T/want.lst" "$T/got.lst" >&2; return 1; }
    while IFS= read -r f; do cmp -s "$fx/$f" "$dir/$f" || { echo "$f differs" >&2; return 1; }; done <"$T/want.lst"
}
# run_bounded SECONDS cmd...: the command's status, 124 if it had to be killed.
run_bounded() { local s=$1; shift; timeout -k 5 "$s" "$@"; }

echo "$(date +%T) 1. gc --grace 0 in a loop during a throttled pull --------------------" >&2
# ---- 1. gc --grace 0 in a loop during a throttled pull --------------------
# The small files are admitted first and laid out only at the end; the slow
# unet keeps the pull running meanwhile. Before pins, gc took them.
export CELLAR_HOME=$T/store1
ctl "mode=slow&count=-1&match=alpha/unet/diffusion&rate=600000"
( while :; do "$BIN" gc --grace 0 >/dev/null 2>&1 || true; done ) &
GCPID=$!
rc=0
run_bounded 120 "$BIN" pull pipe/alpha --to "$T/race" --jobs 2 >"$T/out" 2>&1 || rc=$?
kill $GCPID 2>/dev/null || true
wait $GCPID 2>/dev/null || true
GCPID=
ctl "clear=1"
check "pull survives gc --grace 0 in a loop (rc $rc: $(tail -1 "$T/out"))" [ "$rc" = 0 ]
[ "$rc" = 0 ] && check "pulled tree intact" same_tree "$T/race" "$FX"
# After the pull (its pins gone), gc may remove nothing the folder links.
"$BIN" gc --grace 0 >/dev/null
check "gc after the pull keeps what --to links" same_tree "$T/race" "$FX"
check "no pin file left by the pull" [ -z "$(ls "$CELLAR_HOME/locks/pins" 2>/dev/null | grep '\.pins$' || true)" ]

# A pin file whose owner died (kill -9) does not keep anything.
export CELLAR_HOME=$T/store1b
echo "only pinned by a dead process" >"$T/lone"
"$BIN" add --copy "$T/lone" >/dev/null
sha=$(sha256sum <"$T/lone" | cut -c1-64)
mkdir -p "$CELLAR_HOME/locks/pins"
printf '%s\n' "$sha" >"$CELLAR_HOME/locks/pins/999999.0.pins"
"$BIN" gc --grace 0 >/dev/null
check "a dead process's pins are ignored and cleared" \
    [ ! -e "$CELLAR_HOME/objects/sha256/${sha:0:2}/${sha:2}"  -a ! -e "$CELLAR_HOME/locks/pins/999999.0.pins" ]
# A live one (flock held by this flock(1)) keeps the object.
"$BIN" add --copy "$T/lone" >/dev/null
printf '%s\n' "$sha" >"$CELLAR_HOME/locks/pins/1.0.pins"
flock "$CELLAR_HOME/locks/pins/1.0.pins" "$BIN" gc --grace 0 >/dev/null
check "a live process's pin keeps its object" [ -e "$CELLAR_HOME/objects/sha256/${sha:0:2}/${sha:2}" ]

export CELLAR_HOME=$T/store
echo "$(date +%T) 3. a listed size near 2^64 -------------------------------------------" >&2
# ---- 3. a listed size near 2^64 -------------------------------------------
ctl "mode=hugesize&count=-1&match=pipe/gamma"
rc=0
run_bounded 60 "$BIN" pull pipe/gamma --to "$T/huge" >"$T/out" 2>&1 || rc=$?
ctl "clear=1"
check "huge size refused, no hang (rc $rc)" [ "$rc" != 0 -a "$rc" != 124 ]
check "huge size message" grep -q "more than any file holds" "$T/out"
check "nothing laid out for a huge size" [ ! -e "$T/huge" ]

echo "$(date +%T) 4. listings that never end ------------------------------------------" >&2
# ---- 4. listings that never end ------------------------------------------
ctl "mode=repeatcursor&count=-1&match=pipe/gamma"
rc=0
run_bounded 60 "$BIN" pull pipe/gamma --to "$T/rep" >"$T/out" 2>&1 || rc=$?
ctl "clear=1"
check "repeated cursor refused (rc $rc)" [ "$rc" != 0 -a "$rc" != 124 ]
check "repeated cursor message" grep -q "links back to an earlier page" "$T/out"

ctl "mode=endless&count=-1&match=pipe/gamma"
rc=0
run_bounded 300 "$BIN" pull pipe/gamma --to "$T/endless" >"$T/out" 2>&1 || rc=$?
ctl "clear=1"
check "endless cursors bounded (rc $rc)" [ "$rc" != 0 -a "$rc" != 124 ]
check "endless cursors message" grep -q "tree listing has over" "$T/out"

echo "$(date +%T) 6. dot folders, symlinked folders, edited files ----------------------" >&2
# ---- 6. dot folders, symlinked folders, edited files ----------------------
ctl "mode=dotpath&count=-1&match=pipe/gamma"
rc=0
"$BIN" pull pipe/gamma --to "$T/dot" >"$T/out" 2>&1 || rc=$?
ctl "clear=1"
check "a .git/ path refuses the listing" [ "$rc" != 0 ]
check ".git path named as unsafe" grep -q "unsafe path.*\.git/config" "$T/out"
check "nothing written for a dot folder" [ ! -e "$T/dot" ]

mkdir -p "$T/outside" "$T/sym"
ln -s ../outside "$T/sym/vae"
rc=0
"$BIN" pull pipe/alpha --to "$T/sym" >"$T/out" 2>&1 || rc=$?
check "a symlinked folder in --to is refused" [ "$rc" != 0 ]
check "nothing written through the symlink" [ -z "$(ls -A "$T/outside")" ]
check "nothing written beside it" [ "$(ls -A "$T/sym")" = vae ]

"$BIN" pull pipe/alpha --to "$T/ed" >/dev/null 2>&1 || bad "pull into a fresh folder"
"$BIN" pull pipe/alpha --to "$T/ed" >/dev/null 2>&1 || bad "a rerun into an untouched folder"
printf 'my edit\n' >"$T/ed/model_index.json.new" && mv "$T/ed/model_index.json.new" "$T/ed/model_index.json"
rc=0
"$BIN" pull pipe/alpha --to "$T/ed" >"$T/out" 2>&1 || rc=$?
check "an edited file stops the pull" [ "$rc" != 0 ]
check "the edit is kept" grep -q "my edit" "$T/ed/model_index.json"
check "the message says --force" grep -q -- "--force" "$T/out"
"$BIN" pull pipe/alpha --to "$T/ed" --force >/dev/null 2>&1 || bad "pull --force"
check "--force replaces the edit" cmp -s "$T/ed/model_index.json" "$FX/model_index.json"
# A file already holding the revision's bytes (a copy, not a link) is fine.
rm "$T/ed/model_index.json" && cp "$FX/model_index.json" "$T/ed/model_index.json"
"$BIN" pull pipe/alpha --to "$T/ed" >/dev/null 2>&1 || bad "pull over an identical copy"
# Into a store that has nothing yet: the edit is found before any download
# (a git file's copy is known by its git blob id, its sha256 not yet known).
mkdir -p "$T/ed2" "$T/ed3"
cp "$FX/model_index.json" "$T/ed2/model_index.json"
CELLAR_HOME=$T/fresh2 "$BIN" pull pipe/alpha --to "$T/ed2" >"$T/out" 2>&1 || { cat "$T/out"; bad "identical git file, empty store"; }
check "identical copy, empty store: laid out" cmp -s "$T/ed2/model_index.json" "$FX/model_index.json"
printf 'my edit\n' >"$T/ed3/model_index.json"
rc=0
CELLAR_HOME=$T/fresh3 "$BIN" pull pipe/alpha --to "$T/ed3" >"$T/out" 2>&1 || rc=$?
check "edit, empty store: refused" [ "$rc" != 0 ]
check "edit, empty store: nothing downloaded" [ -z "$(find "$T/fresh3" -path '*/objects/*' -type f 2>/dev/null)" ]
check "edit, empty store: nothing else written" [ "$(ls -A "$T/ed3")" = model_index.json ]

echo "$(date +%T) 10. a signed CDN URL never reaches a message --------------------------" >&2
# ---- 10. a signed CDN URL never reaches a message --------------------------
export CELLAR_HOME=$T/store10
ctl "mode=signed&count=-1&match=pipe/gamma"
ctl "mode=reset&count=-1&match=gamma/vae/diffusion"
rc=0
run_bounded 120 "$BIN" pull pipe/gamma --to "$T/signed" --json >"$T/out" 2>&1 || rc=$?
ctl "clear=1"
check "reset CDN transfer fails (rc $rc)" [ "$rc" != 0 -a "$rc" != 124 ]
check "the failure names the CDN path" grep -q "gamma/main/vae" "$T/out"
check "no signed query in any message" bash -c "! grep -q 'SECRETSIGNATURE\|Expires=' '$T/out'"

test_end
