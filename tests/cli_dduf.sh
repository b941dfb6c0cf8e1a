#!/usr/bin/env bash
# cellar dduf against Python's zipfile (the reference writer and a real
# reader) and Debian's unzip: archives Python writes (force_zip64=True as
# huggingface_hub does, and without ZIP64) must read; what cellar packs must
# be read by zipfile, pass `unzip -t`, and match the reference writer's
# layout byte for byte apart from timestamps.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
test_dir cli_dduf
cd "$T"
# run CMD...: the command succeeds (it is its own description).
run() { check "$*" "$@"; }

# expect_fail CODE NEEDLE CMD...: exit status CODE and NEEDLE on stderr.
expect_fail() {
    local code=$1 needle=$2 rc=0
    shift 2
    "$@" >out.txt 2>err.txt || rc=$?
    if [[ $rc -eq $code ]] && grep -qF -- "$needle" err.txt; then ok; else
        bad "$* -> exit $rc, stderr: $(cat err.txt) (want $code, '$needle')"
    fi
}

# A small diffusers folder.
python3 - <<'EOF'
import json, os, struct
os.makedirs("pipe/vae", exist_ok=True)
os.makedirs("pipe/unet", exist_ok=True)
os.makedirs("pipe/scheduler", exist_ok=True)
os.makedirs("pipe/tokenizer", exist_ok=True)
json.dump({"_class_name": "P", "vae": ["diffusers", "AutoencoderKL"],
           "unet": ["diffusers", "UNet2DConditionModel"], "scheduler": ["diffusers", "S"],
           "tokenizer": ["transformers", "CLIPTokenizer"]}, open("pipe/model_index.json", "w"))
def st(path, tensors):
    header, data, off = {}, b"", 0
    for name, n in tensors:
        header[name] = {"dtype": "F32", "shape": [n], "data_offsets": [off, off + 4 * n]}
        data += struct.pack("<%df" % n, *range(n))
        off += 4 * n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)
for c in ("vae", "unet"):
    json.dump({"c": c}, open(f"pipe/{c}/config.json", "w"))
st("pipe/vae/diffusion_pytorch_model.safetensors", [("a", 3), ("b", 1000)])
st("pipe/unet/diffusion_pytorch_model.safetensors", [("w", 20000)])
json.dump({}, open("pipe/scheduler/scheduler_config.json", "w"))
json.dump({}, open("pipe/tokenizer/tokenizer_config.json", "w"))
open("pipe/tokenizer/vocab.txt", "w").write("a\nb\n")
EOF

# The reference writer (huggingface_hub's export_entries_as_dduf), cellar's
# order: model_index.json first, then by name.
cat >ref_writer.py <<'EOF'
import os, sys, zipfile
src, out, zip64 = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
names = []
for d, _, files in os.walk(src):
    for f in files:
        names.append(os.path.relpath(os.path.join(d, f), src))
names.sort(key=lambda n: (n != "model_index.json", n.encode()))
with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
    for n in names:
        if zip64:
            with z.open(n, "w", force_zip64=True) as f:
                f.write(open(os.path.join(src, n), "rb").read())
        else:
            z.write(os.path.join(src, n), n)
EOF
python3 ref_writer.py pipe ref64.dduf 1
python3 ref_writer.py pipe ref32.dduf 0

# Python-written archives read, with and without ZIP64.
run "$BIN" dduf check ref64.dduf --crc >/dev/null
run "$BIN" dduf check ref32.dduf --crc >/dev/null
"$BIN" dduf ls ref64.dduf --json >ls64.json
python3 - <<'EOF' && ok || bad "ls --json offsets differ from zipfile's"
import json, zipfile
ls = json.load(open("ls64.json"))
z = zipfile.ZipFile("ref64.dduf")
fp = open("ref64.dduf", "rb")
for e, i in zip(ls["entries"], z.infolist()):
    assert e["name"] == i.filename and e["size"] == i.file_size, (e, i)
    assert e["crc32"] == "%08x" % i.CRC
    fp.seek(e["offset"])
    assert fp.read(e["size"]) == z.read(i.filename), e
assert len(ls["entries"]) == len(z.infolist())
EOF

# cellar's pack: read by zipfile and unzip, same layout as the reference.
run "$BIN" dduf pack pipe cellar.dduf >/dev/null
run unzip -tq cellar.dduf >/dev/null
python3 - <<'EOF' && ok || bad "zipfile disagrees with cellar's archive"
import os, zipfile
z = zipfile.ZipFile("cellar.dduf")
assert z.testzip() is None
for i in z.infolist():
    assert i.compress_type == zipfile.ZIP_STORED
    assert z.read(i.filename) == open(os.path.join("pipe", i.filename), "rb").read()
EOF
python3 - <<'EOF' && ok || bad "cellar's archive differs from the reference writer's beyond timestamps"
import struct
def masked(path):
    b = bytearray(open(path, "rb").read())
    i = 0
    while True:
        i = b.find(b"PK\x03\x04", i)
        if i < 0: break
        b[i + 10:i + 14] = b"\0" * 4; i += 4
    i = 0
    while True:
        i = b.find(b"PK\x01\x02", i)
        if i < 0: break
        b[i + 12:i + 16] = b"\0" * 4; i += 4
    return bytes(b)
a, c = masked("ref64.dduf"), masked("cellar.dduf")
assert len(a) == len(c), (len(a), len(c))
assert a == c
EOF
off=$("$BIN" dduf ls cellar.dduf --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"][0]["offset"])')
refoff=$("$BIN" dduf ls ref64.dduf --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"][0]["offset"])')
run [ "$off" = 66 ]
run [ "$off" = "$refoff" ]

# unpack: round trip, no overwrite without --force.
run "$BIN" dduf unpack cellar.dduf un >/dev/null
run diff -r pipe un
expect_fail 1 "already exists" "$BIN" dduf unpack cellar.dduf un
run "$BIN" dduf unpack cellar.dduf un --force >/dev/null

# Names escaping DIR are refused (the archive is refused as a DDUF).
python3 - <<'EOF'
import zipfile
with zipfile.ZipFile("evil.dduf", "w") as z:
    z.writestr("model_index.json", "{}")
    z.writestr("../evil.json", "{}")
EOF
expect_fail 1 "Invalid entry name in DDUF file: ../evil.json" "$BIN" dduf unpack evil.dduf un2
# A name's control bytes are shown escaped in the error, never sent raw.
python3 -c '
import zipfile
with zipfile.ZipFile("esc.dduf", "w") as z:
    z.writestr("model_index.json", "{}")
    z.writestr("a\x1b[2J.md", "{}")'
expect_fail 1 'Invalid entry name in DDUF file: a\x1b[2J.md' "$BIN" dduf check esc.dduf
run bash -c "! grep -q $'\x1b' err.txt"
run [ ! -e evil.json ]
run [ ! -e un2 ]

# check: reference phrases, exit 1.
python3 - <<'EOF'
import zipfile
with zipfile.ZipFile("deflated.dduf", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("model_index.json", "{}")
with zipfile.ZipFile("noindex.dduf", "w") as z:
    z.writestr("vae/config.json", "{}")
with zipfile.ZipFile("nofolder.dduf", "w") as z:
    z.writestr("model_index.json", "{}")
    z.writestr("vae/config.json", "{}")
EOF
expect_fail 1 "Data must not be compressed in DDUF file." "$BIN" dduf check deflated.dduf
expect_fail 1 "Missing required 'model_index.json' entry in DDUF file." "$BIN" dduf check noindex.dduf
expect_fail 1 "Missing required entry 'vae' in 'model_index.json'." "$BIN" dduf check nofolder.dduf
head -c 100 cellar.dduf >cut.dduf
expect_fail 1 "cellar: cut.dduf: bad end record" "$BIN" dduf check cut.dduf
python3 -c '
b = bytearray(open("cellar.dduf","rb").read()); i = b.find(b"\x00\x00\x80?")
b[i + 3] ^= 0x40; open("crc.dduf","wb").write(b)'
run "$BIN" dduf check crc.dduf >/dev/null
expect_fail 1 "CRC-32 is" "$BIN" dduf check crc.dduf --crc

# pack leaves out what a Hub snapshot holds beside the pipeline (README.md,
# .gitattributes), one line each, and packs the rest as before.
cp -r pipe pipe_bad && echo x >pipe_bad/README.md && echo x >pipe_bad/.gitattributes
"$BIN" dduf pack pipe_bad extra.dduf >extra.out
run grep -qx "skipped .gitattributes (hidden)" extra.out
run grep -qx "skipped README.md (file type not allowed in a DDUF)" extra.out
run [ "$(grep -c '^skipped ' extra.out)" = 2 ]
run cmp <("$BIN" dduf ls extra.dduf) <("$BIN" dduf ls cellar.dduf)
rm extra.dduf

# pack refuses folders that would make an invalid DDUF; nothing written.
mkdir pipe_bad/vae/deep && echo '{}' >pipe_bad/vae/deep/config.json
expect_fail 1 "DDUF only supports 1 level of directory" "$BIN" dduf pack pipe_bad bad.dduf
rm -r pipe_bad/vae/deep && printf 'junk' >pipe_bad/unet/diffusion_pytorch_model.safetensors
expect_fail 1 "unet/diffusion_pytorch_model.safetensors" "$BIN" dduf pack pipe_bad bad.dduf
run [ ! -e bad.dduf ]
run [ -z "$(ls -A . | grep cellar-tmp || true)" ]
expect_fail 1 "already exists" "$BIN" dduf pack pipe cellar.dduf
run "$BIN" dduf pack pipe cellar.dduf --force >/dev/null

# hash --entries: each entry's digests, computed in place, equal the loose
# files' (sha256sum and b3sum).
"$BIN" hash --entries -a sha256 cellar.dduf | sed 's|  cellar.dduf/|  pipe/|' | sort >entries.sha256
(cd . && sha256sum $(python3 -c 'import zipfile; print(" ".join("pipe/" + n for n in zipfile.ZipFile("cellar.dduf").namelist()))') | sort) >loose.sha256
run diff entries.sha256 loose.sha256
"$BIN" hash --entries cellar.dduf | sed 's|  cellar.dduf/|  pipe/|' | sort >entries.b3
if command -v b3sum >/dev/null; then
    b3sum pipe/*.json pipe/*/* | sort >loose.b3
    run diff entries.b3 loose.b3
else
    skip "hash --entries against b3sum: b3sum is not installed (scripts/install-deps.sh)"
fi
expect_fail 1 "bad end record" "$BIN" hash --entries cut.dduf
expect_fail 2 "--entries takes DDUF files" "$BIN" hash --entries --civitai cellar.dduf

# inspect: a DDUF's components have the structural hashes of the loose
# folder's; GGUF files show version, key/values, tensors and types.
"$BIN" inspect --json cellar.dduf >insp_dduf.json
"$BIN" inspect --json pipe >insp_dir.json
python3 - <<'EOF' && ok || bad "inspect of the DDUF disagrees with the folder"
import json
a = json.load(open("insp_dduf.json")); b = json.load(open("insp_dir.json"))
ha = {c["component"]: c["structural_hash"] for c in a["components"] if c["structural_hash"]}
hb = {c["component"]: c["structural_hash"] for c in b["components"]}
assert ha == hb and len(ha) == 2, (ha, hb)
assert a["format"] == "dduf" and a["model_index"]["vae"][1] == "AutoencoderKL"
assert a["tensors"] == b["tensors"] == 3 and a["parameters"] == b["parameters"]
EOF
# A component holding two variants side by side (diffusers loads one set):
# one section each, the default one the same as the loose folder's.
cp -r pipe pipe_var
cp pipe/vae/diffusion_pytorch_model.safetensors pipe_var/vae/diffusion_pytorch_model.fp16.safetensors
"$BIN" dduf pack pipe_var var.dduf >/dev/null
"$BIN" inspect --json var.dduf >insp_var.json
python3 - <<'EOF' && ok || bad "inspect of a DDUF with an fp16 variant"
import json
a = json.load(open("insp_var.json")); b = json.load(open("insp_dir.json"))
vae = [c for c in a["components"] if c["component"] == "vae"]
assert [c["variant"] for c in vae] == [None, "fp16"], vae
assert [c["tensors"] for c in vae] == [2, 2], vae
assert [len(c["entries"]) for c in vae] == [1, 1], vae
hb = {c["component"]: c["structural_hash"] for c in b["components"]}
assert vae[0]["structural_hash"] == hb["vae"]
assert a["tensors"] == 5
EOF
python3 - <<'EOF'
import struct
def s(x): x = x.encode(); return struct.pack("<Q", len(x)) + x
kv = s("general.architecture") + struct.pack("<I", 8) + s("llama")
kv += s("llama.block_count") + struct.pack("<II", 4, 2)
ti = s("tok_embd.weight") + struct.pack("<IQQIQ", 2, 64, 2, 8, 0)  # Q8_0 [64, 2]
ti += s("norm") + struct.pack("<IQIQ", 1, 16, 0, 160)                # F32 [16]
h = b"GGUF" + struct.pack("<IQQ", 3, 2, 2) + kv + ti
h += b"\0" * (-len(h) % 32)
open("m.gguf", "wb").write(h + b"\1" * 136 + b"\0" * 24 + b"\2" * 64)
open("bad.gguf", "wb").write(h[:4] + struct.pack("<I", 1) + h[8:])
EOF
"$BIN" inspect m.gguf --tensors >insp_gguf.txt
run grep -q "GGUF v3, alignment 32" insp_gguf.txt
run grep -q "^dtypes: *F32 x1 (64 B), Q8_0 x1 (136 B)$" insp_gguf.txt
run grep -q "llama.block_count = 2" insp_gguf.txt
run grep -q "tok_embd.weight  Q8_0  \[64, 2\]  136" insp_gguf.txt
"$BIN" inspect --json m.gguf | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["tensors"] == 2 and d["parameters"] == 144
assert d["metadata"]["general.architecture"] == "llama"' && ok || bad "inspect --json m.gguf"
expect_fail 1 "GGUF version 1 is not supported" "$BIN" inspect bad.gguf

# Usage.
expect_fail 2 "expected a subcommand" "$BIN" dduf
expect_fail 2 "unknown option '--bogus'" "$BIN" dduf ls cellar.dduf --bogus
expect_fail 2 "expected 2 arguments" "$BIN" dduf pack pipe
run "$BIN" dduf --help >/dev/null
run "$BIN" dduf ls --help >/dev/null

test_end
