#!/usr/bin/env bash
# The store's verbs on generated trees: add/ls/which/map/du/verify/gc, dedup
# of ComfyUI-, AUTOMATIC1111- and diffusers-like folders (inode sharing, du
# equals the unique bytes, second run and --dry-run change nothing,
# permissions kept, symlinks left alone), import-hf, and two concurrent adds.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
test_dir cli_store
export CELLAR_HOME=$T/home

# gen FILE SIZE: random bytes (distinct from every other generated file).
gen() {
    mkdir -p "$(dirname "$1")"
    head -c "$2" /dev/urandom >"$1"
}
# The "total" "unique" bytes of `cellar du --json`.
du_unique() { "$BIN" du --json "$@" | sed -n 's/^], "total": .*"unique": \([0-9]*\),.*/\1/p'; }
git_blob_id() { git hash-object --no-filters "$1"; }
ino() { stat -c %i "$1"; }
mode() { stat -c %a "$1"; }
sha() { sha256sum "$1" | cut -c1-64; }
manifest() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

# ---- add, ls, which, map, verify -------------------------------------------
gen "$T/in/one.bin" 300000
gen "$T/in/two.bin" 5000
cp "$T/in/two.bin" "$T/in/keep.bin"
out=$("$BIN" add "$T/in/one.bin")
check "add prints the sha256" test "$out" = "$(sha "$T/in/one.bin")  $T/in/one.bin"
check "add adopts: same inode" test "$(ino "$T/in/one.bin")" = "$(ino "$("$BIN" which "$(sha "$T/in/one.bin")")")"
check "adopted file is read-only" test "$(mode "$T/in/one.bin")" = 444
"$BIN" add --copy "$T/in/keep.bin" >/dev/null
check "add --copy leaves the file alone" test "$(mode "$T/in/keep.bin")" = 644
check "ls lists both" test "$("$BIN" ls | wc -l)" = 2
git_id=$(git_blob_id "$T/in/two.bin")
check "which by git blob id" test "$("$BIN" which "git-sha1:$git_id")" = "$("$BIN" which "$(sha "$T/in/two.bin")")"
check "which of an unknown blob fails" bash -c "! '$BIN' which $(printf '0%.0s' {1..64}) 2>/dev/null"
check "which rejects junk with usage" bash -c "'$BIN' which nothex >/dev/null 2>&1; test \$? = 2"
"$BIN" map --json >"$T/map.json"
check "map --json has both" test "$(grep -c '"[0-9a-f]\{64\}": "/' "$T/map.json")" = 2
check "map --json maps the sha256 to its object" grep -q "\"$(sha "$T/in/one.bin")\": \"$CELLAR_HOME/objects/sha256/" "$T/map.json"
check "verify is clean" "$BIN" verify -q
# A folder is added in byte order, depth first (one listing with hash -r);
# symlinks inside it are not followed: their files are added where they live.
mkdir -p "$T/tree/B" "$T/tree/a/z"
gen "$T/tree/c.bin" 700; gen "$T/tree/B/x.bin" 800; gen "$T/tree/a/z/y.bin" 900; gen "$T/tree/a/w.bin" 1000
ln -s ../in/two.bin "$T/tree/link.bin"
ln -s a "$T/tree/linkdir"
check "add lists a folder sorted, symlinks left out" test "$(CELLAR_HOME="$T/home-tree" "$BIN" add "$T/tree" | cut -c67-)" = \
    "$(printf '%s\n' "$T/tree/B/x.bin" "$T/tree/a/w.bin" "$T/tree/a/z/y.bin" "$T/tree/c.bin")"
check "hash -r lists the same order, and the symlinked file" test "$("$BIN" hash -r -a sha256 "$T/tree" | cut -c67-)" = \
    "$(printf '%s\n' "$T/tree/B/x.bin" "$T/tree/a/w.bin" "$T/tree/a/z/y.bin" "$T/tree/c.bin" "$T/tree/link.bin")"
check "which takes upper-case hex" test "$("$BIN" which "sha256:$(sha "$T/in/one.bin" | tr a-f A-F)")" = "$("$BIN" which "$(sha "$T/in/one.bin")")"
check "which says why a digest is refused" bash -c "'$BIN' which sha256:abcd 2>&1 >/dev/null | grep -q 'has 64 hex digits, not 4'"
# The store's own files are never added, even when a folder holds the store.
"$BIN" add "$CELLAR_HOME" >"$T/add_home.out"
check "add of the store's folder adds nothing" test ! -s "$T/add_home.out"
check "the index stays writable" test "$(mode "$CELLAR_HOME/cellar.db")" = 644
check "add of the index itself fails" bash -c "! '$BIN' add '$CELLAR_HOME/cellar.db' 2>'$T/add_db.err'"
check "and says it is the store's" grep -q "a file of the store itself" "$T/add_db.err"
# Without a PATH, du measures the store: its objects are the top row.
check "du of the store: objects is a top row" bash -c "'$BIN' du | grep -qx ' .*[0-9B]  /.*/home/objects'"
check "every verb has --help" bash -c "for v in add dedup import-hf du ls which map verify gc; do '$BIN' \$v --help >/dev/null || exit 1; done"

# ---- dedup of model folders ---------------------------------------------------
M=$T/models
gen "$M/ComfyUI/models/checkpoints/sd15.safetensors" 2000000
gen "$M/ComfyUI/models/loras/detail.safetensors" 400000
gen "$M/ComfyUI/models/vae/vae-ft-mse.safetensors" 800000
gen "$M/ComfyUI/models/embeddings/small.pt" 5000
mkdir -p "$M/A1111/models/Stable-diffusion" "$M/A1111/models/Lora" "$M/A1111/models/VAE"
cp "$M/ComfyUI/models/checkpoints/sd15.safetensors" "$M/A1111/models/Stable-diffusion/v1-5.safetensors"
cp "$M/ComfyUI/models/loras/detail.safetensors" "$M/A1111/models/Lora/detail.safetensors"
gen "$M/A1111/models/VAE/other.safetensors" 800000 # same size as the vae, other bytes
mkdir -p "$M/diffusers/sd15/vae" "$M/diffusers/sd15/unet"
cp "$M/ComfyUI/models/vae/vae-ft-mse.safetensors" "$M/diffusers/sd15/vae/diffusion_pytorch_model.safetensors"
gen "$M/diffusers/sd15/unet/diffusion_pytorch_model.safetensors" 1500000
cp "$M/ComfyUI/models/embeddings/small.pt" "$M/A1111/models/small.pt"
# Permissions: a group-writable copy may share (it stays readable by the
# same people), a private one may not.
cp "$M/ComfyUI/models/checkpoints/sd15.safetensors" "$M/diffusers/sd15/private.safetensors"
chmod 600 "$M/diffusers/sd15/private.safetensors"
chmod 664 "$M/A1111/models/Lora/detail.safetensors"
# A symlink to a duplicate is left alone.
ln -s ../checkpoints/sd15.safetensors "$M/ComfyUI/models/loras/link.safetensors"
manifest "$M" >"$T/before.sha"
unique=$(find "$M" -type f -exec sha256sum {} + | sort -u -k1,1 | awk '{print $2}' | xargs stat -c %s | paste -sd+ | bc)

inodes_before=$(find "$M" -type f -printf '%i %p\n' | sort)
"$BIN" dedup --dry-run "$M" >"$T/dry.out" 2>/dev/null
check "dry run reports savings" grep -q '^saved:  [1-9]' "$T/dry.out"
check "dry run changes nothing" test "$inodes_before" = "$(find "$M" -type f -printf '%i %p\n' | sort)"
# Options after the paths mean the same (GNU order): still a dry run.
"$BIN" dedup "$M" --dry-run >"$T/dry2.out" 2>/dev/null
check "--dry-run after the paths: nothing changes" test "$inodes_before" = "$(find "$M" -type f -printf '%i %p\n' | sort)"

# add: a private or executable file is copied into the store, never made
# the store's world-readable 0444 inode; --copy after the path is honoured.
gen "$T/own/private.bin" 40000
gen "$T/own/tool.bin" 40000
gen "$T/own/plain.bin" 40000
chmod 600 "$T/own/private.bin"
chmod 755 "$T/own/tool.bin"
# (A store of their own, so the gc counts below stay as they are.)
CELLAR_HOME=$T/home-own "$BIN" add "$T/own/private.bin" "$T/own/tool.bin" >/dev/null
check "add keeps a private file private" test "$(stat -c '%a %h' "$T/own/private.bin")" = "600 1"
check "add keeps an executable executable" test "$(stat -c '%a %h' "$T/own/tool.bin")" = "755 1"
check "the private file's bytes are stored" env CELLAR_HOME="$T/home-own" "$BIN" which "$(sha "$T/own/private.bin")"
plain_mode=$(mode "$T/own/plain.bin")
CELLAR_HOME=$T/home-own "$BIN" add "$T/own/plain.bin" --copy >/dev/null
check "add FILE --copy leaves the file alone" test "$(stat -c '%a %h' "$T/own/plain.bin")" = "$plain_mode 1"
check "du PATH --json prints JSON" bash -c "'$BIN' du '$T/own' --json | head -c1 | grep -q '{'"

"$BIN" dedup "$M" >"$T/dedup.out" 2>"$T/dedup.err"
check "dedup prints before/after/saved" grep -q '^saved:  [1-9]' "$T/dedup.out"
check "content unchanged" diff "$T/before.sha" <(manifest "$M")
c=$M/ComfyUI/models
check "checkpoints share one inode" test "$(ino $c/checkpoints/sd15.safetensors)" = "$(ino $M/A1111/models/Stable-diffusion/v1-5.safetensors)"
check "vae shared with diffusers" test "$(ino $c/vae/vae-ft-mse.safetensors)" = "$(ino $M/diffusers/sd15/vae/diffusion_pytorch_model.safetensors)"
check "same size, other bytes: untouched" test "$(ino $c/vae/vae-ft-mse.safetensors)" != "$(ino $M/A1111/models/VAE/other.safetensors)"
check "the shared inode is the store's" test "$(ino $c/checkpoints/sd15.safetensors)" = "$(ino "$("$BIN" which "$(sha $c/checkpoints/sd15.safetensors)")")"
check "private file left alone" test "$(ino $M/diffusers/sd15/private.safetensors)" != "$(ino $c/checkpoints/sd15.safetensors)"
check "private file keeps 600" test "$(mode $M/diffusers/sd15/private.safetensors)" = 600
check "private file reported" grep -q 'private.safetensors' "$T/dedup.err"
check "664 copy shares, stays readable by all" test "$(mode $M/A1111/models/Lora/detail.safetensors)" = 444
check "symlink left alone" test -L "$c/loras/link.safetensors"
du_unique=$(du_unique "$M")
# The private copy keeps its own inode: du counts it once more.
check "du equals unique bytes (+ the private copy)" test "$du_unique" = "$((unique + 2000000))"
check "du lists each folder" bash -c "'$BIN' du '$M' | grep -q 'A1111'"

out2=$("$BIN" dedup "$M" 2>/dev/null)
check "second run saves nothing" grep -q '^saved:  0 bytes' <<<"$out2"

# A fresh copy of a folder whose files the store already holds frees the
# whole copy: the stored objects were on disk before, too.
cp -r "$M/diffusers/sd15/vae" "$T/vae-copy"
copy_bytes=$(find "$T/vae-copy" -type f -printf '%b\n' | awk '{s += $1 * 512} END {print s}')
out3=$("$BIN" dedup "$T/vae-copy" 2>/dev/null)
check "copy of stored files: saves the whole copy" grep -q "^saved:  $copy_bytes bytes" <<<"$out3"
check "second run: content unchanged" diff "$T/before.sha" <(manifest "$M")
inodes_after=$(find "$M" -type f -printf '%i %p\n' | sort)
"$BIN" dedup "$M" >/dev/null 2>&1 || true
check "second run changes no inode" test "$inodes_after" = "$(find "$M" -type f -printf '%i %p\n' | sort)"
check "no temp names left" test -z "$(find "$M" -name '.cellar-link.*')"
check "verify after dedup" "$BIN" verify -q

# ---- -L follows symlinks to the files they name (inside the folders given) -----
L=$T/follow
gen "$L/real/a.bin" 200000
mkdir -p "$L/elsewhere" "$L/tree"
cp "$L/real/a.bin" "$L/elsewhere/b.bin"
ln -s ../elsewhere/b.bin "$L/tree/link.bin"
cp "$L/real/a.bin" "$L/tree/c.bin"
"$BIN" dedup "$L/tree" "$L/real" >/dev/null 2>&1
check "without -L the symlink's target is left alone" test "$(ino "$L/elsewhere/b.bin")" != "$(ino "$L/tree/c.bin")"
"$BIN" dedup -L "$L/tree" >/dev/null 2>"$T/follow.err"
check "-L never changes a target outside the folders given" test "$(ino "$L/elsewhere/b.bin")" != "$(ino "$L/tree/c.bin")"
check "-L reports the target outside" grep -q 'leads outside the folders given' "$T/follow.err"
"$BIN" dedup -L "$L/tree" "$L/elsewhere" >/dev/null 2>&1
check "-L links the target inside them" test "$(ino "$L/elsewhere/b.bin")" = "$(ino "$L/tree/c.bin")"
check "-L keeps the symlink a symlink" test -L "$L/tree/link.bin"

# ---- several processes creating a new store at once ----------------------------
# Switching a new database to WAL is not covered by SQLite's busy handler;
# every process must still open the store.
race_fails=0
for round in 1 2 3 4 5 6 7 8; do
    for k in 1 2 3 4 5 6; do
        CELLAR_HOME=$T/race$round "$BIN" ls >/dev/null 2>"$T/race.$round.$k" &
    done
    wait
    for k in 1 2 3 4 5 6; do
        [ -s "$T/race.$round.$k" ] && race_fails=$((race_fails + 1)) && cat "$T/race.$round.$k" >&2
    done
done
check "concurrent first opens of a store all succeed" test "$race_fails" = 0

# ---- gc ----------------------------------------------------------------------
"$BIN" gc >"$T/gc.out"
check "gc keeps young objects" grep -q '^removed 0 objects' "$T/gc.out"
"$BIN" gc --grace 0 --dry-run >"$T/gc.out"
check "gc --dry-run: the copy-added blob would go" grep -q '^would remove 1 objects' "$T/gc.out"
"$BIN" gc --grace 0 >"$T/gc.out"
check "gc removes the unlinked blob" grep -q '^removed 1 objects' "$T/gc.out"
check "gc kept every linked blob" "$BIN" which "$(sha $c/checkpoints/sd15.safetensors)" >/dev/null
check "user files intact after gc" diff "$T/before.sha" <(manifest "$M")
check "gc --grace rejects junk" bash -c "'$BIN' gc --grace soon >/dev/null 2>&1; test \$? = 2"

# ---- verify finds a flipped byte and names the places ----------------------------
obj=$("$BIN" which "$(sha $M/diffusers/sd15/unet/diffusion_pytorch_model.safetensors)" 2>/dev/null || true)
if [ -z "$obj" ]; then
    "$BIN" add "$M/diffusers/sd15/unet/diffusion_pytorch_model.safetensors" >/dev/null
    obj=$("$BIN" which "$(sha $M/diffusers/sd15/unet/diffusion_pytorch_model.safetensors)")
fi
chmod u+w "$obj"
# Flip (xor) one byte: writing a constant would change nothing if the byte
# already held it.
python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(1000); b = f.read(1)[0]; f.seek(1000); f.write(bytes([b ^ 0x20]))' "$obj"
chmod 444 "$obj"
set +e
"$BIN" verify >"$T/verify.out" 2>"$T/verify.err"
rc=$?
set -e
check "verify fails on a flipped byte" test $rc = 1
check "verify names the place" grep -q 'linked at .*unet/diffusion_pytorch_model.safetensors' "$T/verify.err"
check "verify deleted nothing" test -f "$obj"

# ---- import-hf --------------------------------------------------------------------
H=$T/hf
b=$(printf '%040x' 12648430)
gen "$T/w.bin" 700000
wsha=$(sha "$T/w.bin")
for repo in models--org--a models--org--b; do
    mkdir -p "$H/$repo/blobs" "$H/$repo/snapshots/$b/unet" "$H/$repo/refs"
    cp "$T/w.bin" "$H/$repo/blobs/$wsha"
    ln -s "../../../blobs/$wsha" "$H/$repo/snapshots/$b/unet/model.safetensors"
    printf '%s' "$b" >"$H/$repo/refs/main"
done
printf '{"x": 1}' >"$T/cfg"
cfgid=$(git_blob_id "$T/cfg")
cp "$T/cfg" "$H/models--org--a/blobs/$cfgid"
ln -s "../../blobs/$cfgid" "$H/models--org--a/snapshots/$b/config.json"
# A blob whose bytes do not match its name is reported and left alone.
cp "$T/cfg" "$H/models--org--b/blobs/$(printf 'ab%.0s' {1..32})"
set +e
"$BIN" import-hf "$H" >"$T/hf.out" 2>"$T/hf.err"
rc=$?
set -e
check "import-hf reports the bad blob" grep -q 'not the one its name says' "$T/hf.err"
check "import-hf exits 1 on a bad blob" test $rc = 1
check "repos share one copy" test "$(ino "$H/models--org--a/blobs/$wsha")" = "$(ino "$H/models--org--b/blobs/$wsha")"
check "snapshot symlinks still resolve" cmp "$H/models--org--b/snapshots/$b/unet/model.safetensors" "$T/w.bin"
check "git-stored file resolves" cmp "$H/models--org--a/snapshots/$b/config.json" "$T/cfg"
check "import-hf saved a copy" grep -q '^saved:  [1-9]' "$T/hf.out"
check "bad blob untouched" cmp "$H/models--org--b/blobs/$(printf 'ab%.0s' {1..32})" "$T/cfg"
check "git blob found by its id" "$BIN" which "git-sha1:$cfgid" >/dev/null

# ---- a tree on another filesystem than the store ----------------------------------
# No hard link can reach the store there: copies share one inode among
# themselves instead. Needs a second filesystem (/dev/shm) to run.
shm=/dev/shm/cellar-test-$$
trap 'rm -rf "$shm"' EXIT
if mkdir -p "$shm" 2>/dev/null && [ "$(stat -c %d /dev/shm)" != "$(stat -c %d "$T")" ]; then
    gen "$shm/a/x.bin" 300000
    mkdir -p "$shm/b"
    cp "$shm/a/x.bin" "$shm/b/x.bin"
    cp "$shm/a/x.bin" "$shm/b/y.bin"
    "$BIN" dedup "$shm" >"$T/xdev.out" 2>&1
    check "other filesystem: copies share an inode" test "$(ino "$shm/a/x.bin")" = "$(ino "$shm/b/y.bin")"
    check "other filesystem: all three" test "$(ino "$shm/a/x.bin")" = "$(ino "$shm/b/x.bin")"
    check "other filesystem: savings reported" grep -q '^saved:  [1-9]' "$T/xdev.out"
    rm -rf "$shm"
fi

# ---- two concurrent adds of the same file ------------------------------------------
for mode in --copy ""; do
    gen "$T/conc/f$mode.bin" 3000000
    f="$T/conc/f$mode.bin"
    want=$(sha "$f")
    "$BIN" add $mode "$f" >"$T/conc1.out" 2>&1 &
    p1=$!
    "$BIN" add $mode "$f" >"$T/conc2.out" 2>&1 &
    p2=$!
    r1=0 r2=0
    wait $p1 || r1=$?
    wait $p2 || r2=$?
    check "concurrent add $mode: both succeed" test "$r1$r2" = 00
    check "concurrent add $mode: one intact object" test "$(sha "$("$BIN" which "$want")")" = "$want"
    check "concurrent add $mode: no temp files" test -z "$(ls -A "$CELLAR_HOME/tmp")"
done

# ---- gc while an add runs ------------------------------------------------------------
gen "$T/gcrace/f.bin" 20000000
"$BIN" add "$T/gcrace/f.bin" >"$T/gcrace.out" 2>&1 &
p1=$!
for _ in 1 2 3 4 5 6 7 8; do "$BIN" gc --grace 0 >/dev/null; done
r1=0
wait $p1 || r1=$?
check "add during gc succeeds" test $r1 = 0
want=$(sha "$T/gcrace/f.bin")
"$BIN" gc --grace 0 >/dev/null
check "gc during add kept the linked object" test "$(sha "$("$BIN" which "$want")")" = "$want"

test_end
