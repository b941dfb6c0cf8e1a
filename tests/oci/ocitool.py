#!/usr/bin/python3
"""Helpers for tests/cli_oci.sh and bench/oci.sh (standard library only).

  ocitool.py freeport
  ocitool.py fixtures DIR [MIB]     pipelines alpha and beta (real safetensors
                                    files; beta shares vae and text encoder)
  ocitool.py validate MANIFEST CONFIG
                                    ModelPack rules (model-spec schema/
                                    config-schema.json, docs/spec.md): exit 1
                                    with the reasons
  ocitool.py modctl-push BASE REPO TAG DIR
                                    pushes DIR the way modctl builds (one
                                    .raw layer per file, sorted per kind, both
                                    annotations, manifest annotation
                                    org.cncf.modctl.modelfile), plus one .tar
                                    layer (pax) and one old vnd.cnai layer
  ocitool.py proxy REGISTRY_PORT [--user U:P] [--rate BYTES_PER_S] [--token-uses N]
                                    a Bearer-token front for a registry: a
                                    token server (Basic auth) and a proxy
                                    asking for its tokens; prints
                                    {"proxy": P, "token": T}. GET /_stats on
                                    the proxy: {"blob_bytes", "basic_seen",
                                    "requests"}
"""
import base64
import hashlib
import http.client
import http.server
import io
import json
import os
import secrets
import socket
import socketserver
import struct
import sys
import tarfile
import threading
import time
import urllib.parse
import urllib.request


def freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ---- fixtures ----

def safetensors(path, tensors, seed):
    """tensors: [(name, dtype, shape)]; bytes from a seeded generator."""
    sizes = {"F32": 4, "F16": 2, "BF16": 2}
    header, off, blobs = {}, 0, []
    rnd = hashlib.sha256(seed.encode()).digest()
    for name, dt, shape in tensors:
        n = sizes[dt]
        for d in shape:
            n *= d
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        off += n
        buf = bytearray()
        while len(buf) < n:
            rnd = hashlib.sha256(rnd).digest()
            buf += rnd * 64
        blobs.append(bytes(buf[:n]))
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def fixtures(root, mib):
    # sizes in elements: the unet takes most of the pipeline.
    unet = max(1, int(mib * 1024 * 1024 * 0.7) // 2 // 1024)
    vae = max(1, int(mib * 1024 * 1024 * 0.15) // 2 // 1024)
    te = max(1, int(mib * 1024 * 1024 * 0.15) // 2 // 1024)
    for name, unet_seed in (("alpha", "unet-a"), ("beta", "unet-b")):
        d = os.path.join(root, name)
        safetensors(os.path.join(d, "unet/diffusion_pytorch_model.safetensors"),
                    [("w", "BF16", [unet, 1024])], unet_seed)
        safetensors(os.path.join(d, "vae/diffusion_pytorch_model.safetensors"),
                    [("w", "BF16", [vae, 1024])], "vae")
        safetensors(os.path.join(d, "text_encoder/model.safetensors"),
                    [("w", "BF16", [te, 1024]), ("b", "F32", [1024])], "te")
        os.makedirs(os.path.join(d, "tokenizer"), exist_ok=True)
        with open(os.path.join(d, "tokenizer/vocab.txt"), "w") as f:
            f.write("".join("tok%d\n" % i for i in range(500)))
        with open(os.path.join(d, "unet/config.json"), "w") as f:
            json.dump({"sample_size": 64, "name": unet_seed}, f)
        with open(os.path.join(d, "model_index.json"), "w") as f:
            json.dump({"_class_name": "Pipeline", "name": name}, f)
        with open(os.path.join(d, "README.md"), "w") as f:
            f.write("# pipeline\n")


# ---- ModelPack validation ----

CONFIG_KEYS = {"descriptor", "config", "modelfs"}
DESCRIPTOR = {"createdAt": str, "authors": list, "family": str, "name": str, "docURL": str,
              "sourceURL": str, "datasetsURL": list, "version": str, "revision": str,
              "vendor": str, "licenses": list, "title": str, "description": str}
MODELCONFIG = {"architecture": str, "format": str, "paramSize": str, "precision": str,
               "quantization": str, "transformerConfig": dict, "capabilities": dict}
KINDS = ("weight", "weight.config", "doc", "code", "dataset")
FORMATS = ("raw", "tar", "tar+gzip", "tar+zstd")


def validate(manifest_path, config_path):
    errs = []
    m = json.load(open(manifest_path))
    raw_cfg = open(config_path, "rb").read()
    c = json.loads(raw_cfg)
    if m.get("schemaVersion") != 2:
        errs.append("manifest: schemaVersion is not 2")
    if m.get("mediaType") != "application/vnd.oci.image.manifest.v1+json":
        errs.append("manifest: mediaType")
    if m.get("artifactType") != "application/vnd.cncf.model.manifest.v1+json":
        errs.append("manifest: artifactType")
    cfg = m.get("config", {})
    if cfg.get("mediaType") != "application/vnd.cncf.model.config.v1+json":
        errs.append("manifest: config mediaType")
    if cfg.get("digest") != "sha256:" + hashlib.sha256(raw_cfg).hexdigest():
        errs.append("manifest: config digest does not match the config")
    if cfg.get("size") != len(raw_cfg):
        errs.append("manifest: config size")
    layers = m.get("layers")
    if not isinstance(layers, list) or not layers:
        errs.append("manifest: no layers")
        layers = []
    for i, l in enumerate(layers):
        mt = l.get("mediaType", "")
        pre = "application/vnd.cncf.model."
        ok = mt.startswith(pre) and any(mt == pre + k + ".v1." + f for k in KINDS for f in FORMATS)
        if not ok:
            errs.append("layer %d: media type %s" % (i, mt))
        if not str(l.get("digest", "")).startswith("sha256:") or len(l["digest"]) != 71:
            errs.append("layer %d: digest" % i)
        if not isinstance(l.get("size"), int):
            errs.append("layer %d: size" % i)
        a = l.get("annotations", {})
        if not a.get("org.cncf.model.filepath"):
            errs.append("layer %d: no org.cncf.model.filepath" % i)
        md = a.get("org.cncf.model.file.metadata+json")
        try:
            md = json.loads(md)
            for k in ("name", "mode", "uid", "gid", "size", "mtime", "typeflag"):
                if k not in md:
                    errs.append("layer %d: metadata lacks %s" % (i, k))
            if md.get("size") != l.get("size"):
                errs.append("layer %d: metadata size" % i)
        except Exception:
            errs.append("layer %d: metadata annotation is not JSON" % i)
    # The config: additionalProperties false everywhere.
    if not isinstance(c, dict):
        errs.append("config: not an object")
        c = {}
    for k in c:
        if k not in CONFIG_KEYS:
            errs.append("config: extra property %s" % k)
    for k in CONFIG_KEYS:
        if k not in c:
            errs.append("config: lacks %s" % k)
    for k, v in c.get("descriptor", {}).items():
        if k not in DESCRIPTOR:
            errs.append("descriptor: extra property %s" % k)
        elif not isinstance(v, DESCRIPTOR[k]):
            errs.append("descriptor.%s: wrong type" % k)
    if "name" in c.get("descriptor", {}) and not c["descriptor"]["name"]:
        errs.append("descriptor.name: empty")
    for k, v in c.get("config", {}).items():
        if k not in MODELCONFIG:
            errs.append("config.config: extra property %s" % k)
        elif not isinstance(v, MODELCONFIG[k]):
            errs.append("config.config.%s: wrong type" % k)
    fs = c.get("modelfs", {})
    for k in fs:
        if k not in ("type", "diffIds"):
            errs.append("modelfs: extra property %s" % k)
    if fs.get("type") != "layers":
        errs.append("modelfs.type")
    if fs.get("diffIds") != [l.get("digest") for l in layers]:
        errs.append("modelfs.diffIds are not the layer digests in order")
    for e in errs:
        print(e, file=sys.stderr)
    return 1 if errs else 0


# ---- pushing like modctl ----

def put_blob(base, repo, data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    req = urllib.request.Request("%s/v2/%s/blobs/uploads/" % (base, repo), method="POST", data=b"")
    with urllib.request.urlopen(req) as r:
        loc = r.headers["Location"]
    loc = urllib.parse.urljoin(base + "/", loc)
    loc += ("&" if "?" in loc else "?") + "digest=" + urllib.parse.quote(d)
    req = urllib.request.Request(loc, method="PUT", data=data,
                                 headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(req).close()
    return d


def modctl_push(base, repo, tag, root):
    files = []
    for dp, _, fns in os.walk(root):
        for fn in fns:
            files.append(os.path.relpath(os.path.join(dp, fn), root))

    def kind(p):
        if p.endswith(".safetensors"):
            return "weight"
        if p.endswith(".json"):
            return "weight.config"
        if p.endswith(".md"):
            return "doc"
        return "code"
    order = {"weight.config": 0, "weight": 1, "code": 2, "doc": 3}
    files.sort(key=lambda p: (order[kind(p)], p))
    layers = []
    tar_member = None
    for p in files:
        data = open(os.path.join(root, p), "rb").read()
        if p.startswith("tokenizer/") and tar_member is None:
            tar_member = p  # goes into the tar layer instead
            continue
        d = put_blob(base, repo, data)
        st = os.stat(os.path.join(root, p))
        meta = {"name": os.path.basename(p), "mode": 420, "uid": 0, "gid": 0,
                "size": len(data), "mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                          time.gmtime(st.st_mtime)),
                "typeflag": 0}
        k = kind(p)
        # The README as an old (pre-2025) vnd.cnai layer.
        prefix, ann = ("application/vnd.cnai.model.", "org.cnai.model.") if k == "doc" else \
            ("application/vnd.cncf.model.", "org.cncf.model.")
        layers.append({"mediaType": prefix + k + ".v1.raw", "digest": d, "size": len(data),
                       "annotations": {ann + "filepath": p,
                                       ann + "file.metadata+json": json.dumps(meta)}})
    if tar_member:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            t.add(os.path.join(root, tar_member), arcname=tar_member)
            # a long name, carried in a pax header
            long = "tokenizer/" + "x" * 120 + ".txt"
            info = tarfile.TarInfo(long)
            payload = b"long name payload\n"
            info.size = len(payload)
            t.addfile(info, io.BytesIO(payload))
        data = buf.getvalue()
        d = put_blob(base, repo, data)
        layers.append({"mediaType": "application/vnd.cncf.model.weight.config.v1.tar",
                       "digest": d, "size": len(data),
                       "annotations": {"org.cncf.model.filepath": "tokenizer"}})
    config = {"descriptor": {"name": "modctl-style"},
              "config": {"format": "safetensors"},
              "modelfs": {"type": "layers", "diffIds": [l["digest"] for l in layers]}}
    cdata = json.dumps(config).encode()
    cd = put_blob(base, repo, cdata)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": "application/vnd.cncf.model.manifest.v1+json",
                "config": {"mediaType": "application/vnd.cncf.model.config.v1+json",
                           "digest": cd, "size": len(cdata)},
                "layers": layers,
                "annotations": {"org.cncf.modctl.modelfile": "FROM scratch"}}
    mdata = json.dumps(manifest, indent=2).encode()
    req = urllib.request.Request("%s/v2/%s/manifests/%s" % (base, repo, tag), method="PUT",
                                 data=mdata, headers={
                                     "Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    urllib.request.urlopen(req).close()


# ---- Bearer token front ----

class Threading(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def proxy(reg_port, user, rate, uses):
    tokens = {}  # token -> requests it may still make (None: any)
    stats = {"blob_bytes": 0, "basic_seen": 0, "requests": 0}
    lock = threading.Lock()
    tport = freeport()

    class Token(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            auth = self.headers.get("Authorization", "")
            ok = user is None
            if auth.startswith("Basic "):
                ok = base64.b64decode(auth[6:]).decode() == user
            if not ok:
                body = b'{"details":"wrong credentials"}'
                self.send_response(401)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            t = secrets.token_hex(16)
            with lock:
                tokens[t] = uses
            body = json.dumps({"token": t, "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Proxy(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def handle_any(self):
            with lock:
                stats["requests"] += 1
            if self.path == "/_stats":
                body = json.dumps(stats).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic"):
                with lock:
                    stats["basic_seen"] += 1
            n = int(self.headers.get("Content-Length") or 0)
            upload = self.command in ("PUT", "PATCH") and "/blobs/uploads/" in self.path
            parts, left = [], n
            while left:
                # a slow front slows uploads too (a push can be stopped mid-blob)
                part = self.rfile.read(min(65536, left))
                if not part:
                    break
                parts.append(part)
                left -= len(part)
                if upload:
                    with lock:
                        stats["upload_bytes"] = stats.get("upload_bytes", 0) + len(part)
                    if rate:
                        time.sleep(len(part) / rate)
            body = b"".join(parts)
            valid = False
            if auth.startswith("Bearer "):
                with lock:
                    left = tokens.get(auth[7:], 0)
                    if left is None or left > 0:
                        valid = True
                        if left is not None:
                            tokens[auth[7:]] = left - 1
                            stats["token_uses"] = stats.get("token_uses", 0) + 1
            if not valid:
                name = self.path.split("/")[2:4]
                scope = "repository:%s:pull" % "/".join(name)
                msg = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
                self.send_response(401)
                self.send_header("WWW-Authenticate",
                                 'Bearer realm="http://127.0.0.1:%d/token",service="test",'
                                 'scope="%s"' % (tport, scope))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg)
                return
            c = http.client.HTTPConnection("127.0.0.1", reg_port)
            hdrs = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
            c.request(self.command, self.path, body=body if n else None, headers=hdrs)
            r = c.getresponse()
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in ("transfer-encoding", "connection"):
                    self.send_header(k, v)
            blob = self.command == "GET" and "/blobs/" in self.path
            if self.command == "HEAD":
                self.end_headers()
                c.close()
                return
            data_len = r.getheader("Content-Length")
            if data_len is None:
                data = r.read()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                c.close()
                return
            self.end_headers()
            left = int(data_len)
            while left:
                chunk = r.read(min(65536, left))
                if not chunk:
                    break
                left -= len(chunk)
                self.wfile.write(chunk)
                if blob:
                    with lock:
                        stats["blob_bytes"] += len(chunk)
                    if rate:
                        time.sleep(len(chunk) / rate)
            c.close()

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any

    ts = Threading(("127.0.0.1", tport), Token)
    ps = Threading(("127.0.0.1", 0), Proxy)
    for s in (ts, ps):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print(json.dumps({"proxy": ps.server_address[1], "token": tport}), flush=True)
    while True:
        time.sleep(3600)


def main(a):
    if a[0] == "freeport":
        print(freeport())
    elif a[0] == "fixtures":
        fixtures(a[1], float(a[2]) if len(a) > 2 else 2)
    elif a[0] == "validate":
        sys.exit(validate(a[1], a[2]))
    elif a[0] == "modctl-push":
        modctl_push(a[1], a[2], a[3], a[4])
    elif a[0] == "proxy":
        user, rate, uses = None, 0, None
        i = 2
        while i < len(a):
            if a[i] == "--user":
                user = a[i + 1]
            elif a[i] == "--rate":
                rate = float(a[i + 1])
            elif a[i] == "--token-uses":
                uses = int(a[i + 1])
            i += 2
        proxy(int(a[1]), user, rate, uses)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
