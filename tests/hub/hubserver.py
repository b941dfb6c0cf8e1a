#!/usr/bin/env python3
"""A Hugging Face Hub stand-in for cellar's tests (standard library only).

  hubserver.py ROOT [--token T] [--cdn-url URL] [--page-size N]

Serves the repos under ROOT (see make_fixtures.py: ROOT/<org>/<name>/<rev>/,
a .gated file marks a gated repo) on 127.0.0.1 with the calls, headers and
redirects of HUB.md:

  GET      /api/models/{org}/{name}/revision/{rev}?blobs=true
  GET      /api/models/{org}/{name}/tree/{rev}?recursive=true&expand=false
           (paginated: Link: <...>; rel="next")
  GET|HEAD /{org}/{name}/resolve/{rev}/{path}
           X-Repo-Commit, ETag; LFS files (weights) answer 302 to a second
           server, the "CDN", with X-Linked-Etag / X-Linked-Size.

Two ports are bound (port 0: free ones); the first line printed is
{"hub": PORT, "cdn": PORT}. With --cdn-url the redirects go there instead
(bench: nginx serving ROOT), and the CDN here is unused.

Test hooks (on the hub port):
  GET /_control?mode=M&count=N&match=S[&rate=R]  switch a fault on for the
      next N matching requests (N=-1: until cleared); S is a substring of
      "org/name/path" (or of the API path). Modes: reset (drop the
      connection mid-file), wrong (flip a byte), 500, 429 (Retry-After: 1),
      norange (answer 200 to range requests), truncjson (cut API answers),
      malicious (list bad paths), slow (R bytes per second), gone (answer
      404 EntryNotFound for a listed file). Hostile listings and answers
      (a match on "org/name"): repeatcursor (Link: rel="next" names the
      page itself), endless (a fresh cursor on every page, forever),
      hugesize (list an LFS file of 2^64 - 32 MiB + 2 bytes), dotpath (list
      .git/config), signed (the 302 to the CDN carries a signed query
      string, X-Amz-Signature=SECRETSIGNATURE).
  GET /_control?clear=1              all faults off
  GET /_control?page_size=N          tree listing page size
  GET /_stats[?reset=1]              per-file requests and body bytes,
      auth_leaks (requests reaching the CDN with an Authorization header),
      api (API calls), ranges (range requests honoured), retry_gap_ms
      (shortest wait between a 429 and the next request for the same
      URL, -1 if none: Retry-After says 1 s)
  GET /_stats?sum=SUFFIX             plain text: body bytes of the files
                                     whose "org/name/path" ends with SUFFIX
  GET /_stats?field=NAME             plain text: one counter
"""
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".gguf", ".onnx", ".dduf")
MALICIOUS = ["../escape.txt", "/etc/cellar-abs.txt", "dir\\win.txt", "nul\0byte.txt",
             "a//empty.txt", "sub/../../up.txt"]


class State:
    def __init__(self, root, token, cdn_url, page_size):
        self.root = os.path.abspath(root)
        self.token = token
        self.cdn_url = cdn_url
        self.page_size = page_size
        self.lock = threading.Lock()
        self.faults = {}  # mode -> [count, match, rate]
        self.cache = {}
        self.reset_stats()

    def reset_stats(self):
        with self.lock:
            self.stats = {"files": {}, "auth_leaks": 0, "api": 0, "ranges": 0,
                          "retry_gap_ms": -1}
            self.last_429 = {}

    def count(self, key, nbytes, request):
        with self.lock:
            f = self.stats["files"].setdefault(key, {"requests": 0, "bytes": 0})
            f["requests"] += request
            f["bytes"] += nbytes

    def fault(self, mode, key):
        """True if fault `mode` applies to `key` (and uses one count)."""
        with self.lock:
            f = self.faults.get(mode)
            if not f or f[1] not in key or f[0] == 0:
                return False
            if f[0] > 0:
                f[0] -= 1
            return True

    def rate(self, key):
        with self.lock:
            f = self.faults.get("slow")
            if f and f[1] in key and f[0] != 0:
                return f[2]
            return 0

    def snapshot(self, org, name, rev):
        """The files of one revision: commit, [(path, size, git_sha1, sha256|None)]."""
        repo = os.path.join(self.root, org, name)
        revdir = os.path.join(repo, rev)
        if not os.path.isdir(revdir):
            # The revision may be a commit sha of one of the branches.
            for b in sorted(os.listdir(repo)):
                if os.path.isdir(os.path.join(repo, b)) and self.snapshot(org, name, b)[0] == rev:
                    return self.snapshot(org, name, b)
            return None
        ck = (org, name, rev)
        if ck in self.cache:
            return self.cache[ck]
        files = []
        for dirpath, dirs, names in os.walk(revdir):
            dirs.sort()
            for n in sorted(names):
                full = os.path.join(dirpath, n)
                rel = os.path.relpath(full, revdir)
                with open(full, "rb") as fh:
                    data = fh.read()
                git = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
                sha = hashlib.sha256(data).hexdigest() if n.endswith(LFS_SUFFIXES) else None
                files.append((rel, len(data), git, sha))
        h = hashlib.sha1(("%s/%s@%s" % (org, name, rev)).encode())
        for f in files:
            h.update(repr(f).encode())
        snap = (h.hexdigest(), rev, files)
        self.cache[ck] = snap
        return snap


def pointer(sha, size):
    text = "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (sha, size)
    data = text.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(), len(data)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes: without TCP_NODELAY each
    # keep-alive answer waits out a 40 ms delayed ACK (Nagle).
    disable_nagle_algorithm = True
    server_version = "cellar-test-hub"

    def log_message(self, fmt, *args):
        pass

    @property
    def st(self):
        return self.server.state

    # ---- answers ----
    def send(self, code, body=b"", ctype="application/json", headers=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, code, error_code, msg, headers=()):
        body = json.dumps({"error": msg}).encode()
        hdrs = [("X-Error-Message", msg)] + list(headers)
        if error_code:
            hdrs.append(("X-Error-Code", error_code))
        self.send(code, body, headers=hdrs)

    def common_faults(self, key):
        with self.st.lock:
            t = self.st.last_429.pop(key, None)
            if t is not None:
                gap = int((time.monotonic() - t) * 1000)
                old = self.st.stats["retry_gap_ms"]
                self.st.stats["retry_gap_ms"] = gap if old < 0 else min(old, gap)
        if self.st.fault("500", key):
            self.error(500, None, "internal error (injected)")
            return True
        if self.st.fault("429", key):
            # Taken before the answer leaves: the client's wait starts when
            # it reads it, and this thread may wait for the GIL after
            # sending (a later stamp would shorten the measured gap).
            with self.st.lock:
                self.st.last_429[key] = time.monotonic()
            self.error(429, None, "rate limited (injected)", [("Retry-After", "1")])
            return True
        return False

    def drop(self):
        """Ends the connection with a reset, as a dying peer would."""
        try:
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True

    def serve_file(self, full, key, headers):
        size = os.path.getsize(full)
        start, end, code = 0, size - 1, 200
        rng = self.headers.get("Range")
        if rng and not self.st.fault("norange", key):
            try:
                unit, spec = rng.split("=", 1)
                a, b = spec.split("-", 1)
                start = int(a)
                end = min(int(b), size - 1) if b else size - 1
                if unit != "bytes" or start > end:
                    raise ValueError
            except ValueError:
                self.send(416, b"", headers=[("Content-Range", "bytes */%d" % size)])
                return
            code = 206
            with self.st.lock:
                self.st.stats["ranges"] += 1
        length = end - start + 1
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if code == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.st.count(key, 0, 1)
        if self.command == "HEAD":
            return
        reset = self.st.fault("reset", key)
        wrong = self.st.fault("wrong", key)
        rate = self.st.rate(key)
        limit = length // 2 if reset else length
        sent = 0
        with open(full, "rb") as f:
            f.seek(start)
            while sent < limit:
                chunk = f.read(min(65536 if not rate else 16384, limit - sent))
                if not chunk:
                    break
                if wrong and sent <= length // 2 < sent + len(chunk):
                    i = length // 2 - sent
                    chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1:]
                try:
                    self.wfile.write(chunk)
                except OSError:
                    self.close_connection = True
                    return
                sent += len(chunk)
                self.st.count(key, len(chunk), 0)
                if rate:
                    time.sleep(len(chunk) / rate)
        if reset:
            self.drop()

    # ---- hub ----
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        try:
            self.route()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        raw = url.path.split("/")[1:]
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if self.server.is_cdn:
            return self.cdn(raw)
        if raw[0] == "_control":
            return self.control(query)
        if raw[0] == "_stats":
            with self.st.lock:
                if "sum" in query:
                    # Plain-text answers spare a shell test a JSON parser.
                    suffix = query.get("sum", [""])[0]
                    body = str(sum(v["bytes"] for k, v in self.st.stats["files"].items()
                                   if k.endswith(suffix))).encode()
                elif "field" in query:
                    body = str(self.st.stats[query["field"][0]]).encode()
                else:
                    body = json.dumps(self.st.stats).encode()
            if "reset" in query:
                self.st.reset_stats()
            return self.send(200, body)
        if raw[0] == "api" and len(raw) >= 6 and raw[1] == "models":
            with self.st.lock:
                self.st.stats["api"] += 1
            return self.api(raw[2], raw[3], raw[4], urllib.parse.unquote(raw[5]), query)
        if len(raw) >= 5 and raw[2] == "resolve":
            path = "/".join(urllib.parse.unquote(p) for p in raw[4:])
            return self.resolve(raw[0], raw[1], urllib.parse.unquote(raw[3]), path)
        self.error(404, None, "no such route")

    def control(self, q):
        if "clear" in q:
            with self.st.lock:
                self.st.faults.clear()
        if "page_size" in q:
            self.st.page_size = int(q["page_size"][0])
        if "mode" in q:
            with self.st.lock:
                self.st.faults[q["mode"][0]] = [int(q.get("count", ["1"])[0]),
                                                q.get("match", [""])[0],
                                                int(q.get("rate", ["0"])[0])]
        self.send(200, b"{}")

    def authorize(self, org, name):
        """None if the caller may see the repo, else the error already sent."""
        repo = os.path.join(self.st.root, org, name)
        if not os.path.isdir(repo) or "." in (org[:1], name[:1]):
            self.error(404, "RepoNotFound", "Repository not found")
            return False
        if os.path.exists(os.path.join(repo, ".gated")):
            auth = self.headers.get("Authorization")
            if not auth:
                self.error(401, "GatedRepo", "Access to this gated repo requires a token")
                return False
            if auth != "Bearer " + self.st.token:
                self.error(403, "GatedRepo", "This token has no access to the gated repo")
                return False
        return True

    def api_json(self, obj, headers=()):
        body = json.dumps(obj).encode()
        if self.st.fault("truncjson", self.path):
            body = body[: len(body) // 2]
        self.send(200, body, headers=headers)

    def listing(self, files, key):
        out = list(files)
        if self.st.fault("malicious", key):
            out += [(p, 4, "0" * 40, None) for p in MALICIOUS]
        if self.st.fault("hugesize", key):
            out.append(("huge.safetensors", 2 ** 64 - 32 * 2 ** 20 + 2, "0" * 40, "ab" * 32))
        if self.st.fault("dotpath", key):
            out.append((".git/config", 4, "1" * 40, None))
        return out

    def api(self, org, name, kind, rev, query):
        if self.common_faults(self.path) or not self.authorize(org, name):
            return
        snap = self.st.snapshot(org, name, rev)
        if snap is None:
            return self.error(404, "RevisionNotFound", "Invalid rev id: %s" % rev)
        commit, _, files = snap
        files = self.listing(files, "%s/%s" % (org, name))
        if kind == "revision":
            sib = []
            for path, size, git, sha in files:
                e = {"rfilename": path, "size": size, "blobId": git}
                if sha:
                    e["blobId"], psize = pointer(sha, size)
                    e["lfs"] = {"sha256": sha, "size": size, "pointerSize": psize}
                sib.append(e)
            return self.api_json({"id": "%s/%s" % (org, name), "sha": commit, "siblings": sib})
        if kind != "tree":
            return self.error(404, None, "no such route")
        entries, dirs = [], set()
        for path, size, git, sha in files:
            parts = path.split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    entries.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": d})
            e = {"type": "file", "oid": git, "size": size, "path": path}
            if sha:
                e["oid"], psize = pointer(sha, size)
                e["lfs"] = {"oid": sha, "size": size, "pointerSize": psize}
            entries.append(e)
        cursor = int(query.get("cursor", ["0"])[0])
        page = entries[cursor:cursor + self.st.page_size]
        headers = []
        here = "http://%s/api/models/%s/%s/tree/%s?recursive=true&expand=false" % (
            self.headers.get("Host"), org, name, urllib.parse.quote(rev, safe=""))
        key = "%s/%s" % (org, name)
        if self.st.fault("repeatcursor", key):
            # The next page is this page again (count=-1: forever).
            headers.append(("Link", '<%s&cursor=%d>; rel="next"' % (here, cursor)))
            return self.api_json(page, headers)
        if self.st.fault("endless", key):
            # A fresh cursor and one fresh folder on every page, forever.
            page = [{"type": "directory", "oid": "0" * 40, "size": 0,
                     "path": "d%d" % cursor}]
            headers.append(("Link", '<%s&cursor=%d>; rel="next"' % (here, cursor + 1)))
            return self.api_json(page, headers)
        if cursor + self.st.page_size < len(entries):
            nxt = "http://%s/api/models/%s/%s/tree/%s?recursive=true&expand=false&cursor=%d" % (
                self.headers.get("Host"), org, name, urllib.parse.quote(rev, safe=""),
                cursor + self.st.page_size)
            headers.append(("Link", '<%s>; rel="next"' % nxt))
        self.api_json(page, headers)

    def resolve(self, org, name, rev, path):
        key = "%s/%s/%s" % (org, name, path)
        if self.common_faults(key) or not self.authorize(org, name):
            return
        snap = self.st.snapshot(org, name, rev)
        if snap is None:
            return self.error(404, "RevisionNotFound", "Invalid rev id: %s" % rev)
        commit, branch, files = snap
        entry = next((f for f in files if f[0] == path), None)
        if entry is None or self.st.fault("gone", key):
            return self.error(404, "EntryNotFound", "Entry not found: %s" % path,
                              [("X-Repo-Commit", commit)])
        _, size, git, sha = entry
        full = os.path.join(self.st.root, org, name, branch, path)
        if sha:
            ptr, _ = pointer(sha, size)
            base = self.st.cdn_url or "http://127.0.0.1:%d" % self.server.cdn_port
            loc = "%s/%s/%s/%s/%s" % (base, org, name, branch,
                                      urllib.parse.quote(path))
            if self.st.fault("signed", "%s/%s" % (org, name)):
                loc += "?Expires=1&X-Amz-Signature=SECRETSIGNATURE"
            return self.send(302, b"", headers=[
                ("Location", loc), ("X-Repo-Commit", commit), ("ETag", '"%s"' % ptr),
                ("X-Linked-Etag", '"%s"' % sha), ("X-Linked-Size", str(size))])
        self.serve_file(full, key, [("X-Repo-Commit", commit), ("ETag", '"%s"' % git)])

    # ---- the CDN ----
    def cdn(self, raw):
        if self.headers.get("Authorization"):
            with self.st.lock:
                self.st.stats["auth_leaks"] += 1
        parts = [urllib.parse.unquote(p) for p in raw]
        if len(parts) < 4 or any(p in ("", ".", "..") for p in parts):
            return self.error(404, None, "not found")
        org, name, branch, path = parts[0], parts[1], parts[2], "/".join(parts[3:])
        key = "%s/%s/%s" % (org, name, path)
        if self.common_faults(key):
            return
        full = os.path.join(self.st.root, org, name, branch, path)
        if not os.path.isfile(full):
            return self.error(404, None, "not found")
        self.serve_file(full, key, [("ETag", '"cdn-%d"' % os.path.getsize(full))])


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    root, token, cdn_url, page_size = args[0], "hf_test_token", None, 1000
    i = 1
    while i < len(args):
        if args[i] == "--token":
            token = args[i + 1]
        elif args[i] == "--cdn-url":
            cdn_url = args[i + 1].rstrip("/")
        elif args[i] == "--page-size":
            page_size = int(args[i + 1])
        else:
            sys.exit(__doc__)
        i += 2
    state = State(root, token, cdn_url, page_size)
    servers = []
    for is_cdn in (False, True):
        s = Server(("127.0.0.1", 0), Handler)
        s.state, s.is_cdn = state, is_cdn
        servers.append(s)
    servers[0].cdn_port = servers[1].server_address[1]
    print(json.dumps({"hub": servers[0].server_address[1], "cdn": servers[1].server_address[1]}),
          flush=True)
    threading.Thread(target=servers[1].serve_forever, daemon=True).start()
    try:
        servers[0].serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
