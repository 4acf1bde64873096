"""Trace downloads on the server's disk, bounded and shared fairly: each file refused before it is written when its
size bound passes the cap, each visitor held to a share of the store, all of them under a quota, each deleted after
a few minutes (by the next export and by a timer), all of them when the server stops, and a killed server's folder
removed by the next server once that process is gone.

The files are small (the largest trace, 256 tokens of the sentiment BiLSTM, is ~3 MB as .npz, ~7 MB as JSON where
it was 63 MB): .npz holds float16 values, zip-compressed; JSON holds values rounded to 3 decimals, gzip-compressed
(`.json.gz`). Three significant digits are more than any plot or comparison of gates needs (a gate lives in [0, 1]),
and they compress: the last bits of a float32 are noise that no compressor can shrink.

The app puts the store inside gradio's cache folder, so gradio serves each file from where it was written
instead of copying it into the cache (one copy per export, not two).
"""

from __future__ import annotations

import atexit
import gzip
import hashlib
import json
import logging
import math
import os
import shutil
import socket
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from seqdemo.core import gates
from seqdemo.core import validate as valid

logger = logging.getLogger("seqdemo.web.exports")

FORMATS = ("json", "npz")
MAX_FILE_BYTES = 32 * 2**20  # one export's size bound; the largest real one (256 tokens) is bounded by ~25 MB
QUOTA_BYTES = 256 * 2**20  # every export the server holds at once
VISITOR_SHARE_BYTES = 48 * 2**20  # what one visitor's exports may hold at once: several visitors always fit
MAX_AGE = 600  # seconds a download waits for its visitor
SWEEP_EVERY = 60  # seconds between two timer sweeps
JSON_DECIMALS = 3  # gates live in [0, 1]: 1e-3 is finer than any plot; see the module docstring
STRAY_AGE = 6 * 3600  # a folder whose owner cannot be checked (another host, no marker) is removed once this old
OWNER_FILE = ".owner.json"  # in each server's folder: the process that holds it
ANONYMOUS = "anonymous"  # the share of every caller that names no visitor
_NPY_HEADER = 512  # the most an .npy header takes for these arrays (numpy pads it to 64-byte blocks, ~128 bytes)
_ZIP_ENTRY = 256  # per .npz member: local header, central directory entry, zip64 extras, data descriptor
_CONTAINER = 1024  # gzip header and trailer, or the zip's end records


class ExportRefused(ValueError):
    """An export the store will not write now; the message says why and what to do."""


def trace_values(traced: gates.TextTrace) -> int:
    return sum(tensor.numel() for values in traced.layers.values() for tensor in values.values())


def export_arrays(traced: gates.TextTrace, fmt: str) -> dict[str, np.ndarray]:
    """The arrays a download holds (seqdemo.core.gates.to_json's names): float16 for the .npz, float32 for the JSON
    (rounded as it is written)."""
    arrays = gates._flat_arrays(traced)
    if fmt == "npz":
        arrays = {name: array.astype(np.float16) if array.dtype.kind == "f" else array for name, array in arrays.items()}
    return arrays


def size_bound(arrays: dict[str, np.ndarray], fmt: str, name: str = "") -> int:
    """An upper bound on the bytes of the file `write` makes of `arrays` as `fmt`, computed without writing it:
    the uncompressed bytes plus deflate's worst case (incompressible data grows by at most 1/8 + 1/64, the bound
    zlib's deflateBound gives for any level and memory setting) plus the container's headers."""
    raw = json_bound(arrays) if fmt == "json" else npz_raw_bound(arrays)
    return raw + raw // 8 + raw // 64 + _CONTAINER + 2 * len(name.encode()) + len(arrays) * 16


def json_bound(arrays: dict[str, np.ndarray], decimals: int = JSON_DECIMALS) -> int:
    """An upper bound on the uncompressed JSON `write` makes: each rounded value takes at most a sign, the digits of
    the array's largest magnitude, a point, `decimals` digits and a comma; rows add their brackets."""
    total = 2  # {}
    for name, array in arrays.items():
        total += len(json.dumps(name).encode()) + 2  # "name": and the comma after the value
        if array.dtype.kind != "f":
            total += len(json.dumps(array.tolist(), ensure_ascii=False).encode())
            continue
        values = array.astype(np.float64)
        if values.size and not np.isfinite(values).all():
            per_value = len("-Infinity,")
        else:
            biggest = float(np.abs(np.round(values, decimals)).max()) if values.size else 0.0
            digits = len(str(int(biggest)))
            per_value = int(values.size and bool((values < 0).any())) + digits + 1 + decimals + 1
        brackets = 2 * sum(math.prod(array.shape[:axis]) for axis in range(array.ndim))
        total += values.size * per_value + brackets
    return total


def npz_raw_bound(arrays: dict[str, np.ndarray]) -> int:
    """An upper bound on the uncompressed .npz: each array's bytes, its .npy header and its zip entry."""
    return sum(array.nbytes + _NPY_HEADER + _ZIP_ENTRY + 2 * len(name.encode()) for name, array in arrays.items())


def visitor_key(visitor: str | None) -> str:
    """The folder of a visitor's downloads: a hash of gradio's session hash (never the raw text in a path)."""
    if not visitor:
        return ANONYMOUS
    return "v" + hashlib.sha256(visitor.encode()).hexdigest()[:24]


class ExportStore:
    """Writes trace files under `folder` (a fresh folder of its own; the folders of stopped servers beside it are
    removed), within `max_file_bytes` each, `share_bytes` per visitor, `quota_bytes` in all, kept `max_age` s."""

    def __init__(self, folder: str | Path, max_file_bytes: int = MAX_FILE_BYTES, quota_bytes: int = QUOTA_BYTES,
                 max_age: float = MAX_AGE, sweep_every: float = SWEEP_EVERY,
                 share_bytes: int = VISITOR_SHARE_BYTES):
        self.folder = Path(folder)
        self.max_file_bytes, self.quota_bytes, self.max_age = max_file_bytes, quota_bytes, max_age
        self.share_bytes, self.sweep_every = share_bytes, sweep_every
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        remove_stopped_servers(self.folder.parent, keep=self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / OWNER_FILE).write_text(json.dumps(_owner(os.getpid())))
        atexit.register(self.close)

    # -- writing -------------------------------------------------------------------------------------------------

    def write(self, traced: gates.TextTrace, name: str, fmt: str, visitor: str | None = None) -> Path:
        """The trace as .npz (float16, compressed) or .json.gz (3 decimals), in a fresh subfolder of `visitor`'s
        (gradio's request.session_hash; two visitors never share a file). Raises ExportRefused, having written
        nothing, when the file's size bound passes the cap, the visitor's share or the store's quota."""
        fmt = valid.choice(fmt, "format", FORMATS)
        if fmt == "json" and not name.endswith(".gz"):
            name += ".gz"
        arrays = export_arrays(traced, fmt)
        bound = size_bound(arrays, fmt, name)
        if bound > self.max_file_bytes:
            raise ExportRefused(f"This trace could take up to {_mb(bound)} as {fmt}, more than the "
                                f"{_mb(self.max_file_bytes)} a download may have: export a shorter text.")
        self._ensure_sweeper()
        key = visitor_key(visitor)
        with self._lock:  # the checks and the write together: two exports never both squeeze in
            self.sweep()
            self._check_room(key, bound)
            path = self.folder / key / uuid.uuid4().hex / name
            path.parent.mkdir(parents=True)
            try:
                _write_file(arrays, path, fmt)
            except BaseException:
                shutil.rmtree(path.parent, ignore_errors=True)
                raise
        return path

    def _check_room(self, key: str, bound: int) -> None:
        kept = f"each is kept for {self.max_age / 60:.0f} minutes"
        if self.visitor_bytes(key, hashed=True) + bound > self.share_bytes:
            raise ExportRefused(f"You already hold as many trace downloads as one visitor may ({_mb(self.share_bytes)}"
                                f"); download them, then try again in a few minutes ({kept}).")
        if self.used_bytes() + bound > self.quota_bytes:
            raise ExportRefused(f"The server is holding as many trace downloads as it can right now; try again "
                                f"in a few minutes ({kept}).")

    # -- accounting ----------------------------------------------------------------------------------------------

    def files(self, visitor: str | None = None) -> list[Path]:
        """Every download held, or `visitor`'s only."""
        pattern = f"{visitor_key(visitor)}/*/*" if visitor is not None else "*/*/*"
        return [p for p in self.folder.glob(pattern) if p.is_file()]

    def used_bytes(self) -> int:
        return _bytes(self.folder.glob("*/*/*"))

    def visitor_bytes(self, visitor: str | None, hashed: bool = False) -> int:
        """What `visitor`'s downloads take on disk (`hashed`: `visitor` is already its visitor_key)."""
        return _bytes((self.folder / (visitor if hashed else visitor_key(visitor))).glob("*/*"))

    # -- cleaning up ---------------------------------------------------------------------------------------------

    def sweep(self, now: float | None = None) -> None:
        """Deletes the downloads older than max_age."""
        _remove_older_than(self.folder, (now or time.time()) - self.max_age)

    def close(self) -> None:
        """Stops the timer and deletes every download (at exit, or when the page is closed)."""
        self._stop.set()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _ensure_sweeper(self) -> None:
        """The timer starts with the first export: a page nobody exports from runs no thread for it."""
        if self._sweeper is None and not self._stop.is_set():
            self._sweeper = threading.Thread(target=self._sweep_until_closed, name="seqdemo-export-sweeper",
                                             daemon=True)
            self._sweeper.start()

    def _sweep_until_closed(self) -> None:
        while not self._stop.wait(self.sweep_every):
            try:
                self.sweep()
            except OSError:
                logger.exception("sweeping %s failed", self.folder)


def _write_file(arrays: dict[str, np.ndarray], path: Path, fmt: str) -> None:
    if fmt == "npz":
        np.savez_compressed(path, **arrays)
        if not path.exists() and path.with_name(path.name + ".npz").exists():  # numpy adds .npz to other names
            path.with_name(path.name + ".npz").rename(path)
        return
    # Written row by row: the whole trace never exists as one Python list or one string (memory, not just disk).
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as out:
        out.write("{")
        for i, (name, array) in enumerate(arrays.items()):
            out.write(("," if i else "") + json.dumps(name) + ":")
            if array.dtype.kind != "f":
                out.write(json.dumps(array.tolist(), ensure_ascii=False, separators=(",", ":")))
            elif array.ndim != 2:
                out.write(json.dumps(_rounded(array), separators=(",", ":")))
            else:
                out.write("[" + ",".join(json.dumps(_rounded(row), separators=(",", ":")) for row in array) + "]")
        out.write("}")


def _rounded(array: np.ndarray) -> list:
    """Values rounded to JSON_DECIMALS as Python floats, whose shortest repr has at most that many decimals."""
    return np.round(array.astype(np.float64), JSON_DECIMALS).tolist()


def _mb(nbytes: int) -> str:
    return f"{nbytes / 2**20:.0f} MB" if nbytes >= 2**20 else f"{nbytes / 2**10:.0f} KB"


def _bytes(paths) -> int:
    total = 0
    for path in paths:
        try:
            total += path.stat().st_size if path.is_file() else 0
        except FileNotFoundError:  # swept meanwhile
            pass
    return total


# -- the folders of stopped servers --------------------------------------------------------------------------------


def remove_stopped_servers(parent: Path, keep: Path | None = None) -> None:
    """Removes the export folders under `parent` whose server process is gone (killed: its atexit never ran). A
    folder whose owner cannot be checked (another host's, or one without OWNER_FILE) goes once STRAY_AGE old."""
    if not parent.is_dir():
        return
    for folder in parent.iterdir():
        if not folder.is_dir() or folder == keep:
            continue
        owner = _read_owner(folder)
        if owner is not None and owner.get("host") == socket.gethostname():
            if not _running(owner):
                shutil.rmtree(folder, ignore_errors=True)
            continue
        cutoff = time.time() - STRAY_AGE
        if _newest_change(folder) < cutoff:  # nothing in it changed for STRAY_AGE: abandoned
            shutil.rmtree(folder, ignore_errors=True)
        else:
            _remove_older_than(folder, cutoff)


def _owner(pid: int) -> dict:
    return {"pid": pid, "started": _start_time(pid), "host": socket.gethostname()}


def _read_owner(folder: Path) -> dict | None:
    try:
        owner = json.loads((folder / OWNER_FILE).read_text())
        return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else None
    except (OSError, ValueError):
        return None


def _running(owner: dict) -> bool:
    """Whether the process that wrote `owner` still runs: its pid exists, with the same start time (a pid reused
    by a later process has another)."""
    pid = owner["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    started = _start_time(pid)
    return started is None or owner.get("started") is None or started == owner["started"]


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat, field 22), or None off Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after the command name, which may hold spaces
    return fields[19] if len(fields) > 19 else None


def _remove_older_than(folder: Path, cutoff: float) -> None:
    """Deletes the downloads (<visitor>/<export>/<file>) older than `cutoff`, and the folders left empty."""
    for path in folder.glob("*/*/*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                path.parent.rmdir()
                path.parent.parent.rmdir()  # fails while the visitor holds another download
        except OSError:  # gone already, or a folder not yet empty
            pass


def _newest_change(folder: Path) -> float:
    newest = 0.0
    for path in [folder, *folder.rglob("*")]:
        try:
            newest = max(newest, path.stat().st_mtime)
        except OSError:
            pass
    return newest
