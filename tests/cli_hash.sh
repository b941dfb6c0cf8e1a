#!/usr/bin/env bash
# cellar hash against the tools people use: output byte for byte as
# sha256sum/b3sum/md5sum/sha1sum print it (odd names included), -c reading
# their lists with their verdicts and exit codes, --json, --civitai,
# --invokeai, -r, standard input, errors that do not stop the other files,
# and the hash cache (hit on an unchanged file, miss after a change).
set -euo pipefail

. "$(dirname "$0")/lib.sh"
C=$BIN
test_dir cli_hash
mkdir -p "$T/files"
export CELLAR_HOME=$T/home
# same DESC A B: two strings must be equal
same() {
    if [ "$2" == "$3" ]; then ok; else
        bad "$1"; diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") >&2 || true; fi
}
# status DESC WANT CMD...: the exit status of CMD must be WANT
status() {
    local desc=$1 want=$2 got=0
    shift 2
    "$@" >/dev/null 2>&1 || got=$?
    if [ "$got" == "$want" ]; then ok; else bad "$desc: exit $got, want $want"; fi
}

cd "$T/files"
printf 'hello world' > hello.txt
: > empty
head -c 1500000 /dev/urandom > random.bin
head -c 5000 /dev/urandom > 'with space'
printf 'a' > 'back\slash'
printf 'b' > "$(printf 'new\nline')"
printf 'c' > "$(printf 'cr\rreturn')"
files=(*)

# ---- output identical to the usual tools -----------------------------------
same "blake3 vs b3sum" "$("$C" hash "${files[@]}")" "$(b3sum "${files[@]}")"
same "sha256 vs sha256sum" "$("$C" hash -a sha256 "${files[@]}")" "$(sha256sum "${files[@]}")"
same "md5 vs md5sum" "$("$C" hash -a md5 "${files[@]}")" "$(md5sum "${files[@]}")"
same "sha1 vs sha1sum" "$("$C" hash -a sha1 --no-mmap -j 1 "${files[@]}")" "$(sha1sum "${files[@]}")"
same "git-sha1 vs git hash-object" "$("$C" hash -a git-sha1 random.bin | cut -c1-40)" \
    "$(python3 -c 'import hashlib,sys; d=open(sys.argv[1],"rb").read(); print(hashlib.sha1(b"blob %d\0" % len(d) + d).hexdigest())' random.bin)"
same "--mmap, sha256" "$("$C" hash --mmap -a sha256 "${files[@]}")" "$(sha256sum "${files[@]}")"
same "--mmap, blake3" "$("$C" hash --mmap "${files[@]}")" "$(b3sum "${files[@]}")"
same "--no-mmap, blake3" "$("$C" hash --no-mmap "${files[@]}")" "$(b3sum "${files[@]}")"
same "--tag" "$("$C" hash --tag -a sha256 hello.txt)" \
    "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9  hello.txt"
same "several algorithms are tagged" "$("$C" hash -a crc32,md5 hello.txt)" \
    "md5:5eb63bbbe01eeed093cb22bb8f5acdc3  hello.txt
crc32:0d4a1185  hello.txt"

# ---- standard input ----------------------------------------------------------
same "stdin, no path" "$(printf 'hello world' | "$C" hash -a sha256)" \
    "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9  -"
same "stdin as -" "$("$C" hash - < random.bin)" "$(b3sum - < random.bin)"

# ---- --check -----------------------------------------------------------------
sha256sum "${files[@]}" > ../sums.sha256
b3sum "${files[@]}" > ../sums.b3
"$C" hash --tag "${files[@]}" > ../sums.cellar
md5sum "${files[@]}" > ../sums.md5
same "-c sha256sum list" "$("$C" hash -c ../sums.sha256)" "$(sha256sum -c ../sums.sha256)"
same "-c b3sum list" "$("$C" hash -c ../sums.b3)" "$(sha256sum -c ../sums.sha256)"
same "-c md5sum list" "$("$C" hash -c ../sums.md5)" "$(md5sum -c ../sums.md5)"
status "-c cellar --tag list" 0 "$C" hash -c ../sums.cellar
sha256sum --tag hello.txt random.bin > ../sums.bsd
same "-c BSD-style list (sha256sum --tag)" "$("$C" hash -c ../sums.bsd)" "$(sha256sum -c ../sums.bsd)"
echo "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9  -" > ../sums.stdin
same "-c a list naming standard input" "$(printf 'hello world' | "$C" hash -c ../sums.stdin)" "-: OK"
status "-c -a sha256 on a b3sum list fails" 1 "$C" hash -a sha256 -c ../sums.b3

# a mismatch, a missing file, a malformed line: sha256sum's verdicts and codes
cp ../sums.sha256 ../broken
echo "0000000000000000000000000000000000000000000000000000000000000000  hello.txt" >> ../broken
echo "not a checksum line" >> ../broken
sc=0; sha256sum -c ../broken > ../want.out 2> ../want.err || sc=$?
cc=0; "$C" hash -c ../broken > ../got.out 2> ../got.err || cc=$?
same "-c mismatch: exit code" "$cc" "$sc"
same "-c mismatch: report" "$(cat ../got.out)" "$(cat ../want.out)"
same "-c mismatch: warnings" "$(sed 's/^cellar:/X:/' ../got.err)" "$(sed 's/^sha256sum:/X:/' ../want.err)"

grep -v 0000000000 ../broken > ../malformed
sc=0; sha256sum -c ../malformed > /dev/null 2>&1 || sc=$?
cc=0; "$C" hash -c ../malformed > /dev/null 2> ../got.err || cc=$?
same "-c malformed only: exit code as sha256sum" "$cc" "$sc"
grep -q "WARNING: 1 line is improperly formatted" ../got.err && ok || bad "-c malformed warning"
status "-c --strict fails on a malformed line" 1 "$C" hash -c --strict ../malformed
printf 'junk\n' > ../junk
status "-c with no proper line" 1 "$C" hash -c ../junk

echo "$(b3sum hello.txt | cut -c1-64)  gone.bin" > ../gone
sc=0; sha256sum -c ../gone > ../want.out 2>/dev/null || sc=$?
cc=0; "$C" hash -c ../gone > ../got.out 2> ../got.err || cc=$?
same "-c missing file: exit code" "$cc" "$sc"
same "-c missing file: report" "$(cat ../got.out)" "gone.bin: FAILED open or read"
grep -q "1 listed file could not be read" ../got.err && ok || bad "-c missing warning"
status "-c list from stdin" 0 "$C" hash -c - < ../sums.b3

# ---- --json ------------------------------------------------------------------
json=$("$C" hash --json -a sha256,blake3 hello.txt)
same "--json" "$(python3 -c 'import json,sys; o=json.loads(sys.argv[1]); print(o["path"], o["size"], o["sha256"][:10], o["blake3"][:10])' "$json")" \
    "hello.txt 11 b94d27b993 d74981efa7"

# ---- errors: reported, the other files still hashed -------------------------
out=$("$C" hash -a sha256 hello.txt missing.bin empty 2> ../err) && bad "missing file: exit 0" || ok
same "missing file: others hashed" "$out" "$(sha256sum hello.txt empty)"
same "missing file: message" "$(cat ../err)" "cellar: missing.bin: No such file or directory"
mkdir -p sub
"$C" hash sub hello.txt > /dev/null 2> ../err && bad "directory: exit 0" || ok
same "directory: message" "$(cat ../err)" "cellar: sub: Is a directory"
# Root reads a chmod 000 file: as root, run cellar as nobody, from a copy
# in a folder nobody can reach (this tree may sit in a 0700 folder).
as_user=() udir=$PWD
if [ "$(id -u)" == 0 ]; then
    udir=$(mktemp -d /tmp/cellar-hash-nobody.XXXXXX)
    trap 'rm -rf "$udir"' EXIT
    chmod 755 "$udir"
    cp "$C" "$udir/cellar"
    cp hello.txt "$udir/"
    as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups env CELLAR_HOME=/dev/null/none)
    "${as_user[@]}" "$udir/cellar" hash "$udir/hello.txt" > /dev/null 2>&1 || as_user=(skip)
    ucmd=$udir/cellar
else
    ucmd=$C
fi
if [ "${as_user[*]}" != skip ]; then
    printf 'secret' > "$udir/locked.safetensors"
    chmod 000 "$udir/locked.safetensors"
    out=$(cd "$udir" && "${as_user[@]}" "$ucmd" hash locked.safetensors hello.txt 2> "$T/err") \
        && bad "unreadable: exit 0" || ok
    same "unreadable: message" "$(cat "$T/err")" "cellar: locked.safetensors: Permission denied"
    same "unreadable: others hashed" "$out" "$(b3sum hello.txt)"
    rm -f "$udir/locked.safetensors"
else
    skip "unreadable file: running as root, and setpriv cannot drop to nobody"
fi
rmdir sub
status "unknown algorithm is a usage error" 2 "$C" hash -a sha3 hello.txt
status "--help" 0 "$C" hash --help

# ---- presets ---------------------------------------------------------------
civ=$("$C" hash --civitai --json hello.txt)
same "--civitai" "$(python3 -c 'import json,sys; o=json.loads(sys.argv[1]); print(o["SHA256"], o["AutoV1"], o["AutoV2"], o["BLAKE3"], o["CRC32"])' "$civ")" \
    "B94D27B9934D3E08A52E52D7DA7DABFAC484EFE37A5380EE9088F7ACE2EFCDE9 None B94D27B993 D74981EFA70A0C880B8D8C1985D075DBCBF679B99A5F9914E5AAF96B831A9E24 85114A0D"
mkdir -p ../five
for i in 0 1 2 3 4; do printf data > ../five/$i.bin; done
same "--invokeai folder" "$("$C" hash --invokeai ../five)" \
    "blake3:6856c8d405a339f7bd4908794b3851a6abdb1d192a3f7e46026d48db6c59336f  ../five"

# ---- -r ------------------------------------------------------------------------
mkdir -p ../tree/b
printf 1 > ../tree/a; printf 2 > ../tree/b/c; printf 3 > ../tree/d
same "-r" "$("$C" hash -r ../tree)" "$(b3sum ../tree/a ../tree/b/c ../tree/d)"

# ---- the hash cache --------------------------------------------------------
cached() { "$C" hash --json "$@" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["cached"])'; }
printf 'cache me' > ../cache.bin
sleep 0.2 # past the window in which a same-tick write could go unseen
same "cache: first run computes" "$(cached ../cache.bin)" "False"
same "cache: unchanged file is a hit" "$(cached ../cache.bin)" "True"
same "cache: hit gives the right digest" "$("$C" hash ../cache.bin)" "$(b3sum ../cache.bin)"
same "cache: --no-cache bypasses" "$(cached --no-cache ../cache.bin)" "False"
printf 'cache it' > ../cache.bin
sleep 0.2
same "cache: changed file is a miss" "$(cached ../cache.bin)" "False"
same "cache: changed file, new digest" "$("$C" hash ../cache.bin)" "$(b3sum ../cache.bin)"
# several processes sharing one fresh database at once
rm -rf "$CELLAR_HOME"
sleep 0.1
# what they must print: -r's sorted file list, each file's sha256 then md5
# (a name sha256sum escapes starts its line with '\', before the tag)
want_par=$(export LC_ALL=C; for f in ./*; do for a in sha256 md5; do
    l=$("${a}sum" "$f")
    case $l in '\'*) printf '\\%s:%s\n' "$a" "${l#\\}" ;; *) printf '%s:%s\n' "$a" "$l" ;; esac
done; done)
pids=()
for i in 1 2 3 4; do
    "$C" hash -r -a sha256,md5 . > "../par$i.out" 2> "../par$i.err" & pids+=($!)
done
for i in 1 2 3 4; do
    wait "${pids[$((i - 1))]}" && ok || bad "parallel run $i failed: $(cat "../par$i.err")"
    same "parallel run $i: output" "$(cat "../par$i.out")" "$want_par"
    same "parallel run $i: quiet" "$(cat "../par$i.err")" ""
done
err=$(CELLAR_HOME=/dev/null/nowhere "$C" hash hello.txt 2>&1 >/dev/null)
same "no usable database: quiet, no cache" "$err" ""
status "no usable database: still hashes" 0 env CELLAR_HOME=/dev/null/nowhere "$C" hash hello.txt

# The cache is the store's: with CELLAR_HOME unset, XDG_CACHE_HOME names it,
# and nothing else under $HOME is written.
mkdir -p ../fakehome
env -u CELLAR_HOME HOME="$T/fakehome" XDG_CACHE_HOME="$T/xdg" "$C" hash hello.txt >/dev/null
check "XDG_CACHE_HOME/cellar is the store" [ -f "$T/xdg/cellar/cellar.db" ]
same "nothing under HOME" "$(ls -A ../fakehome)" ""

# Ctrl-C stops cleanly: standard input (a FIFO) holds the run until SIGINT
# has arrived; the stream in hand stops at its next read and no further
# file is hashed.
mkdir -p ../intr
mkfifo ../intr/a.fifo
printf 'later' > ../intr/b.txt
exec 3<>../intr/a.fifo # a writer, so opening it does not block
"$C" hash - ../intr/b.txt < ../intr/a.fifo > ../intr.out 2> ../intr.err 3>&- &
pid=$!
(sleep 60; kill -9 "$pid") >/dev/null 2>&1 3>&- & watchdog=$! # never hang the suite
wait_sigint_caught "$pid"
for _ in $(seq 1 200); do # until it waits in read(0, ...)
    [[ "$(cat "/proc/$pid/syscall" 2>/dev/null)" == "0 0x0 "* ]] && break
    sleep 0.05
done
kill -INT "$pid" || true
sleep 0.2
printf 'fifo' >&3
exec 3>&-
rc=0
wait "$pid" || rc=$?
kill "$watchdog" 2>/dev/null || true
same "Ctrl-C: exit 1" "$rc" 1
same "Ctrl-C: the stream in hand stopped, no other file" "$(cat ../intr.out)" ""
check "Ctrl-C: said so" grep -q "^cellar: -: stopped by the caller" ../intr.err

# Ctrl-C inside one large file stops it there: a 4 TiB sparse file takes
# most of an hour to read; the watchdog's kill -9 would show as rc 137.
for algo in blake3 md5; do # BLAKE3's tree on threads; one thread's pass
    if ! truncate -s 4T ../intr/huge.bin 2>/dev/null; then
        skip "no 4 TiB sparse file on this file system"
        break
    fi
    "$C" hash --no-cache -a "$algo" ../intr/huge.bin > ../intr.out 2> ../intr.err &
    pid=$!
    (sleep 60; kill -9 "$pid") >/dev/null 2>&1 & watchdog=$!
    wait_sigint_caught "$pid"
    # then until it reads the file: the stop must come from inside it
    for _ in $(seq 600); do
        [ "$(awk '/^rchar:/ {print $2}' "/proc/$pid/io" 2>/dev/null || echo 0)" -gt $((64 << 20)) ] && break
        sleep 0.05
    done
    kill -INT "$pid" || true
    rc=0
    wait "$pid" || rc=$?
    kill "$watchdog" 2>/dev/null || true
    same "Ctrl-C in a $algo file: exit 1" "$rc" 1
    check "Ctrl-C in a $algo file: said so" grep -q "stopped by the caller" ../intr.err
    rm -f ../intr/huge.bin
done

test_end
