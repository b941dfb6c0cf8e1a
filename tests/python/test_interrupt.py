"""Exceptions raised in a callback and Ctrl-C stop libcellar's long calls
cleanly: the call raises that very exception (not a CellarError), nothing
half-written is left, the store still verifies and a rerun completes."""
import _thread
import os
import signal
import subprocess
import sys
import threading

import pytest

import cellar
from cellar import _cellar, _hub
from conftest import SRC

BIG = "big/model"
BIG_FILE = "model.safetensors"
BIG_SIZE = 4 << 20


def verify_store(home):
    """`cellar verify` over every object of the store (the CLI is the
    independent check; CTest sets CELLAR_BIN)."""
    exe = os.environ.get("CELLAR_BIN")
    if not exe:
        pytest.skip("CELLAR_BIN not set (run through CTest)")
    p = subprocess.run([exe, "verify", "--all"], env={**os.environ, "CELLAR_HOME": str(home)},
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def files_under(d):
    return sorted(os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(d) for f in fs)


@pytest.fixture
def big_repo(hub):
    """A repo with one 4 MiB LFS file on the test Hub (read from disk per
    request, so it can be added to the running server's fixtures)."""
    d = hub.root / BIG / "main"
    d.mkdir(parents=True)
    (d / BIG_FILE).write_bytes(os.urandom(BIG_SIZE))
    (d / "config.json").write_text("{}\n")
    return d


def pull_args(hub, tmp_path, local, progress):
    return dict(repo="pipe/one", revision=None, include=None, exclude=None, to_dir=str(local),
                hf_cache=None, store=str(tmp_path / "store"), endpoint=hub.url, token="",
                progress=progress)


def test_callback_exception_stops_pull(hub, tmp_path):
    local = tmp_path / "local"
    boom = ValueError("boom from the callback")
    seen = []

    def progress(kind, path, done, total, nfiles):
        seen.append((kind, path))
        if kind == 3:  # PROGRESS: bytes of a file arrived
            raise boom

    with pytest.raises(ValueError) as ei:
        _cellar.pull(**pull_args(hub, tmp_path, local, progress))
    assert ei.value is boom                      # the very exception, not a CellarError
    assert ei.value.__traceback__ is not None    # with its traceback
    assert sum(1 for k, _ in seen if k == 3) == 1  # never called again after it raised
    assert not local.exists() or files_under(local) == []
    verify_store(tmp_path / "store")
    # A rerun completes; every file is the Hub's.
    _cellar.pull(**pull_args(hub, tmp_path, local, None))
    src = hub.root / "pipe/one/main"
    assert files_under(local) == files_under(src)
    for f in files_under(src):
        assert (local / f).read_bytes() == (src / f).read_bytes()
    verify_store(tmp_path / "store")


def test_callback_exception_through_snapshot_download(hub, tmp_path, monkeypatch):
    """The package's own progress display raising (a closed stderr...) stops
    snapshot_download with that exception."""
    class Broken(_hub._Progress):
        def __call__(self, *a):
            raise BrokenPipeError("stderr went away")
    orig = _hub._Progress
    monkeypatch.setattr(_hub, "_Progress", Broken)
    with pytest.raises(BrokenPipeError, match="stderr went away"):
        cellar.snapshot_download("pipe/two", local_dir=str(tmp_path / "l"))
    monkeypatch.setattr(_hub, "_Progress", orig)
    verify_store(tmp_path / "store")
    d = cellar.snapshot_download("pipe/two", local_dir=str(tmp_path / "l"))
    assert files_under(d) == files_under(hub.root / "pipe/two/main")


def test_interrupt_main_stops_pull_without_callback(hub, big_repo, tmp_path):
    """No Python callback at all: the binding's own one sees the pending
    SIGINT and the pull stops with KeyboardInterrupt, before the slow
    download could finish (a 4 MiB file at 64 KB/s takes a minute); the
    next pull resumes from the partial kept in the store."""
    hub.control(mode="slow", count=-1, match=BIG, rate=65536)
    local = tmp_path / "local"
    args = pull_args(hub, tmp_path, local, None)
    args["repo"] = BIG
    done = threading.Event()

    def interrupt_once_under_way():
        # 256 KiB in (the rest takes a minute), so the partial kept has bytes.
        while not done.wait(0.05):
            if hub.served(BIG_FILE) >= 256 << 10:
                done.wait(0.3)
                _thread.interrupt_main()
                return
    t = threading.Thread(target=interrupt_once_under_way)
    t.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            _cellar.pull(**args)
    finally:
        done.set()
        t.join()
    assert hub.served(BIG_FILE) < BIG_SIZE       # stopped mid-file
    assert not (local / BIG_FILE).exists()       # nothing half-written in the target
    verify_store(tmp_path / "store")
    hub.control(clear=1)
    hub.reset()
    _cellar.pull(**args)                         # resumes from the kept partial
    assert (local / BIG_FILE).read_bytes() == (big_repo / BIG_FILE).read_bytes()
    assert hub.served(BIG_FILE) < BIG_SIZE
    verify_store(tmp_path / "store")


def interrupted_child(code, args, started):
    """Runs code in a child Python with args, waits (generously) until
    started() or the child printing "go" says the long call is under way,
    sends SIGINT and returns the child's stderr. The child must end with
    KeyboardInterrupt promptly: 120 s, where the call left alone takes far
    longer."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.Popen([sys.executable, "-c", code] + [str(a) for a in args], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if started is None:
            assert p.stdout.readline().strip() == "go", p.communicate()
            # then until the child reads its file (64 MiB more read): the
            # SIGINT must land inside the C call, not before it
            def rchar():
                with open("/proc/%d/io" % p.pid) as f:
                    return int(next(l for l in f if l.startswith("rchar:")).split()[1])
            base = rchar()
            for _ in range(1200):
                if p.poll() is not None or rchar() > base + (64 << 20):
                    break
                threading.Event().wait(0.05)
        else:
            for _ in range(1200):
                if started() or p.poll() is not None:
                    break
                threading.Event().wait(0.05)
        assert p.poll() is None, p.communicate()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode != 0 and "finished" not in out
    assert "KeyboardInterrupt" in err.strip().splitlines()[-1], err
    return err


def test_sigint_stops_snapshot_download_in_a_process(hub, big_repo, tmp_path):
    """Ctrl-C on a process in snapshot_download: KeyboardInterrupt, no
    partial file in the target, the store intact."""
    hub.control(mode="slow", count=-1, match=BIG, rate=16384)  # about 4 minutes
    local = tmp_path / "local"
    interrupted_child("import sys, cellar\n"
                      "cellar.snapshot_download(sys.argv[1], local_dir=sys.argv[2])\n"
                      "print('finished')\n", [BIG, local], lambda: hub.served(BIG_FILE) > 0)
    assert hub.served(BIG_FILE) < BIG_SIZE
    assert not (local / BIG_FILE).exists()
    verify_store(tmp_path / "store")


@pytest.mark.parametrize("algorithm", ["blake3", "md5"])  # the threaded tree; one thread's pass
def test_sigint_stops_model_hash_in_a_process(tmp_path, algorithm):
    """Ctrl-C while model_hash reads a file: a 4 TiB sparse file takes
    most of an hour to hash; the call ends with KeyboardInterrupt at once."""
    p = tmp_path / "huge.safetensors"
    try:
        with open(p, "wb") as f:
            f.truncate(4 << 40)
    except OSError as e:  # a file system without sparse files this large
        pytest.skip(f"no 4 TiB sparse file here: {e}")
    interrupted_child("import sys, cellar\nprint('go', flush=True)\n"
                      "cellar.model_hash(sys.argv[1], sys.argv[2])\nprint('finished')\n",
                      [p, algorithm], None)
    small = tmp_path / "small.bin"
    small.write_bytes(b"abc")
    import hashlib
    assert cellar.model_hash(small, "md5") == "md5:" + hashlib.md5(b"abc").hexdigest()
