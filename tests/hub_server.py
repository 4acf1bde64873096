"""A stand-in Hugging Face Hub for tests: a stdlib HTTP server on 127.0.0.1 (a free port), in a thread.

It serves model repos held in memory (or read from folders) and answers exactly what huggingface_hub 2.4 asks for
in `model_info`, `snapshot_download` and `hf_hub_download`:

    GET  /api/models/{owner}/{name}                     repo info at the default branch: id, sha, siblings
    GET  /api/models/{owner}/{name}/revision/{rev}      the same at a branch, tag or commit sha
    GET  /api/models/{owner}/{name}/tree/{rev}[/{dir}]  file listing (type, path, size, oid, lfs), ?recursive=
    HEAD /{owner}/{name}/resolve/{rev}/{path}           file metadata: X-Repo-Commit, ETag, Content-Length
    GET  /{owner}/{name}/resolve/{rev}/{path}           file bytes (Range: bytes=N- honoured, 206)

LFS-style files (weights, tokenizer models, pickles) carry an `lfs` entry in the listing and X-Linked-Etag /
X-Linked-Size headers, with the sha256 of the content as ETag, like the real Hub; other files get their git blob
sha1 as ETag. No Xet header (X-Xet-Hash, a Link `xet-auth`) or `xetHash` field is ever sent, so the client never
tries hf_xet and downloads over plain HTTP.

Errors follow the Hub: 404 with X-Error-Code RepoNotFound / RevisionNotFound / EntryNotFound (the last one with
X-Repo-Commit, which the client uses to cache the file's absence). Anything else is a plain 404, including
GET /api/agent-harnesses, which huggingface_hub 2.4 asks for once per process when telemetry is on (conftest turns
it off); on a 404 the client just detects no agent.

`cut_transfer()` makes a file's GET stop short of its Content-Length, like a dropped connection; `stall()` makes
it send nothing at all until the server stops (a Hub that hangs); `stall_mid_body()` sends the headers and the
first bytes, then nothing until the server stops; `drip()` sends the body one byte every few seconds (no read
timeout ever fires); `fail_file()` answers one file with an error.

Every request is recorded in `hub.requests` as (method, path). The server answers HTTP/1.0, so no connection
outlives its request: after `stop()` nothing answers on the port, which is what a test of the cache needs.

    with FakeHub() as hub:
        sha = hub.add_repo("owner/name", folder)          # or {"config.json": b"...", ...}
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url) ...
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".model", ".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".h5", ".onnx")


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def files_from_folder(folder: str | Path) -> dict[str, bytes]:
    """Every file under `folder`, by its '/'-separated path relative to it."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class _Revision:
    def __init__(self, sha: str, files: dict[str, bytes]):
        self.sha = sha
        self.files = dict(files)

    def entry(self, path: str) -> dict:
        data = self.files[path]
        if path.endswith(LFS_SUFFIXES):
            sha256 = hashlib.sha256(data).hexdigest()
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {len(data)}\n".encode()
            return {
                "type": "file",
                "oid": git_blob_oid(pointer),
                "size": len(data),
                "path": path,
                "lfs": {"oid": sha256, "size": len(data), "pointerSize": len(pointer)},
            }
        return {"type": "file", "oid": git_blob_oid(data), "size": len(data), "path": path}


class _Repo:
    def __init__(self, repo_id: str):
        self.repo_id = repo_id
        self.refs: dict[str, _Revision] = {}  # branch or tag -> revision
        self.default_branch = "main"

    def resolve(self, revision: str | None) -> _Revision | None:
        revision = revision or self.default_branch
        if revision in self.refs:
            return self.refs[revision]
        for rev in self.refs.values():  # a full commit sha
            if rev.sha == revision:
                return rev
        return None


class FakeHub:
    """The stand-in Hub. `start()` (or `with`) binds 127.0.0.1 on a free port; `stop()` closes it for good."""

    def __init__(self) -> None:
        self.repos: dict[str, _Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.cut: dict[tuple[str, str], int] = {}  # (repo_id, path) -> bytes sent before hanging up
        self.stalled: set[tuple[str, str]] = set()  # (repo_id, path) whose GET waits until stop()
        self.mid_body: dict[tuple[str, str], int] = {}  # (repo_id, path) -> bytes sent before waiting until stop()
        self.dripping: dict[tuple[str, str], float] = {}  # (repo_id, path) -> seconds between two bytes
        self.file_failures: dict[tuple[str, str], int] = {}  # (repo_id, path) -> HTTP status
        self._released = threading.Event()  # set by stop(): stalled requests end
        self.failure: int | None = None  # an HTTP status every request gets (the Hub down, or rate limiting)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- content ------------------------------------------------------------------------------------------------

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes] | str | Path,
        revision: str = "main",
        tags: tuple[str, ...] = (),
    ) -> str:
        """Adds (or replaces) branch `revision` of `repo_id` with `files` (a dict or a folder); `tags` point at the
        same commit. Returns the commit sha, derived from the content so it is stable across runs."""
        if not isinstance(files, dict):
            files = files_from_folder(files)
        digest = hashlib.sha1(f"{repo_id}@{revision}".encode())
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + hashlib.sha1(files[path]).digest())
        rev = _Revision(digest.hexdigest(), files)
        with self._lock:
            repo = self.repos.setdefault(repo_id, _Repo(repo_id))
            repo.refs[revision] = rev
            for tag in tags:
                repo.refs[tag] = rev
        return rev.sha

    def fail_with(self, status: int | None) -> None:
        """From now on every request gets `status` (e.g. 503 or 429) and no content; None serves again."""
        self.failure = status

    def cut_transfer(self, repo_id: str, path: str, nbytes: int) -> None:
        """From now on, GET of `path` announces the full Content-Length but hangs up after the file's first `nbytes`
        bytes (a transfer cut short; a Range request from past `nbytes` gets no byte at all)."""
        self.cut[(repo_id, path)] = nbytes

    def stall(self, repo_id: str, path: str) -> None:
        """From now on, GET of `path` (not HEAD: its metadata still arrives) gets no answer until stop()."""
        self.stalled.add((repo_id, path))

    def stall_mid_body(self, repo_id: str, path: str, nbytes: int = 16) -> None:
        """From now on, GET of `path` sends the headers (the full Content-Length) and the first `nbytes` bytes, then
        nothing more until stop(): the client waits inside the body."""
        self.mid_body[(repo_id, path)] = nbytes

    def drip(self, repo_id: str, path: str, every: float = 5.0) -> None:
        """From now on, GET of `path` sends the headers, then one byte of the body every `every` seconds until the
        body ends or stop(): each read gets a byte before any read timeout, so only a deadline ends the wait."""
        self.dripping[(repo_id, path)] = every

    def fail_file(self, repo_id: str, path: str, status: int) -> None:
        """From now on, HEAD and GET of `path` get `status`; the repo info and other files are served."""
        self.file_failures[(repo_id, path)] = status

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> "FakeHub":
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.hub = self  # type: ignore[attr-defined]
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops answering: the listening socket is closed, so a client now gets 'connection refused'."""
        server, self._server = self._server, None
        if server is None:
            return
        self._released.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> "FakeHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers after stop()
    server_version = "FakeHub/1.0"

    @property
    def hub(self) -> FakeHub:
        return self.server.hub  # type: ignore[attr-defined]

    def log_message(self, format, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    # -- routing ------------------------------------------------------------------------------------------------

    def _dispatch(self, head: bool) -> None:
        split = urlsplit(self.path)
        with self.hub._lock:
            self.hub.requests.append((self.command, split.path))
        # Split before unquoting: a revision such as refs/pr/1 arrives as refs%2Fpr%2F1, one segment.
        parts = [unquote(p) for p in split.path.split("/")[1:]]
        query = parse_qs(split.query)
        try:
            if self.hub.failure is not None:
                return self._error(self.hub.failure, None, f"stand-in Hub failing with {self.hub.failure}", head)
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                repo_id, rest = f"{parts[2]}/{parts[3]}", parts[4:]
                if not rest:
                    return self._repo_info(repo_id, None, head)
                if rest[0] == "revision" and len(rest) == 2:
                    return self._repo_info(repo_id, rest[1], head)
                if rest[0] == "tree" and len(rest) >= 2:
                    recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
                    return self._tree(repo_id, rest[1], "/".join(rest[2:]), recursive, head)
            elif len(parts) >= 5 and parts[2] == "resolve":
                return self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), head)
            self._error(404, None, "Not Found", head)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _lookup(self, repo_id: str, revision: str | None, head: bool):
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found", head)
            return None
        rev = repo.resolve(revision)
        if rev is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
            return None
        return rev

    # -- endpoints ----------------------------------------------------------------------------------------------

    def _repo_info(self, repo_id: str, revision: str | None, head: bool) -> None:
        rev = self._lookup(repo_id, revision, head)
        if rev is None:
            return
        body = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.split("/")[0],
            "sha": rev.sha,
            "private": False,
            "gated": False,
            "disabled": False,
            "tags": [],
            "library_name": "seqdemo",
            "siblings": [{"rfilename": path} for path in sorted(rev.files)],
        }
        self._json(body, head)

    def _tree(self, repo_id: str, revision: str, folder: str, recursive: bool, head: bool) -> None:
        rev = self._lookup(repo_id, revision, head)
        if rev is None:
            return
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        entries, folders = [], set()
        for path in sorted(rev.files):
            if not path.startswith(prefix):
                continue
            below = path[len(prefix):].split("/")
            for depth in range(1, len(below)):  # the folders on the way
                if recursive or depth == 1:
                    folders.add(prefix + "/".join(below[:depth]))
            if recursive or len(below) == 1:
                entries.append(rev.entry(path))
        if prefix and not entries and not folders:
            return self._error(404, "EntryNotFound", f"{folder} does not exist on {revision}", head, rev.sha)
        for path in sorted(folders):
            entries.append({"type": "directory", "oid": git_blob_oid(path.encode()), "size": 0, "path": path})
        self._json(entries, head)

    def _resolve(self, repo_id: str, revision: str, path: str, head: bool) -> None:
        rev = self._lookup(repo_id, revision, head)
        if rev is None:
            return
        if path not in rev.files:
            return self._error(404, "EntryNotFound", f"{path} does not exist on {revision}", head, rev.sha)
        status = self.hub.file_failures.get((repo_id, path))
        if status is not None:
            return self._error(status, None, f"stand-in Hub failing {path} with {status}", head)
        if not head and (repo_id, path) in self.hub.stalled:
            self.hub._released.wait()  # the client waits for bytes that never come
            return
        data = rev.files[path]
        entry = rev.entry(path)
        etag = entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]
        start = 0
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes=") and not head:
            first = ranged[len("bytes="):].split("-")[0]
            start = min(int(first or 0), len(data))
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{etag}"')
        self.send_header("X-Repo-Commit", rev.sha)
        if "lfs" in entry:
            self.send_header("X-Linked-Etag", f'"{etag}"')
            self.send_header("X-Linked-Size", str(len(data)))
        self.send_header("Content-Disposition", f"inline; filename*=UTF-8''{quote(path.split('/')[-1])}")
        self.end_headers()
        if not head:
            self._send_body(repo_id, path, data, start)

    def _send_body(self, repo_id: str, path: str, data: bytes, start: int) -> None:
        body = data[start:]
        key = (repo_id, path)
        if key in self.hub.mid_body:
            self.wfile.write(body[:self.hub.mid_body[key]])
            self.wfile.flush()
            self.hub._released.wait()
        elif key in self.hub.dripping:
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                if self.hub._released.wait(self.hub.dripping[key]):
                    return
        else:
            end = self.hub.cut.get(key, len(data))  # an offset in the whole file
            self.wfile.write(data[start:max(start, end)])

    # -- responses ----------------------------------------------------------------------------------------------

    def _json(self, body, head: bool) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _error(self, status: int, code: str | None, message: str, head: bool, commit: str | None = None) -> None:
        data = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.end_headers()
        if not head:
            self.wfile.write(data)
