"""Trace downloads on the server's disk, bounded: each file capped in size, all of them together under a quota,
each deleted after a few minutes (by the next export and by a timer), and all of them when the server stops.

The app puts the store inside gradio's cache folder, so gradio serves each file from where it was written
instead of copying it into the cache (one copy per export, not two).
"""

from __future__ import annotations

import atexit
import json
import logging
import shutil
import threading
import time
import uuid
from pathlib import Path

from seqdemo.core import gates
from seqdemo.core import validate as valid

logger = logging.getLogger("seqdemo.web.exports")

FORMATS = ("json", "npz")
MAX_FILE_BYTES = 48 * 2**20  # one export; the largest real one (next word, 3 x 512 units, 256 steps) is ~20 MB
QUOTA_BYTES = 256 * 2**20  # every export the server holds at once
MAX_AGE = 600  # seconds a download waits for its visitor
SWEEP_EVERY = 60  # seconds between two timer sweeps
JSON_DECIMALS = 4  # gates live in [0, 1]: 1e-4 is finer than any plot; .npz keeps every float32 bit
JSON_BYTES_PER_VALUE = 10  # the most one rounded value takes in the JSON, "-12.3456," (a bound for refusing early)
STRAY_AGE = 6 * 3600  # another (stopped) server's folder is removed once this old


class ExportRefused(ValueError):
    """An export the store will not write now; the message says why and what to do."""


def round_floats(value, digits: int = JSON_DECIMALS):
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, list):
        return [round_floats(v, digits) for v in value]
    return value


def trace_values(traced: gates.TextTrace) -> int:
    return sum(tensor.numel() for values in traced.layers.values() for tensor in values.values())


class ExportStore:
    """Writes trace files under `folder` (a fresh folder of its own; stale siblings left by stopped servers are
    removed), within `max_file_bytes` each, `quota_bytes` in all, kept for `max_age` seconds."""

    def __init__(self, folder: str | Path, max_file_bytes: int = MAX_FILE_BYTES, quota_bytes: int = QUOTA_BYTES,
                 max_age: float = MAX_AGE, sweep_every: float = SWEEP_EVERY):
        self.folder = Path(folder)
        self.max_file_bytes, self.quota_bytes, self.max_age = max_file_bytes, quota_bytes, max_age
        self.sweep_every = sweep_every
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._remove_stray_siblings()
        atexit.register(self.close)

    # -- writing -------------------------------------------------------------------------------------------------

    def write(self, traced: gates.TextTrace, name: str, fmt: str) -> Path:
        """The trace as .npz (seqdemo.core.gates.to_npz) or compact JSON (values rounded to JSON_DECIMALS), in a fresh
        subfolder (two visitors never share a file). Raises ExportRefused when the file would pass the cap or the
        store is full."""
        fmt = valid.choice(fmt, "format", FORMATS)
        bytes_per_value = 4 if fmt == "npz" else JSON_BYTES_PER_VALUE
        estimate = trace_values(traced) * bytes_per_value
        if estimate > self.max_file_bytes:
            raise ExportRefused(f"This trace would take about {estimate / 2**20:.0f} MB as {fmt}, more than the "
                                f"{self.max_file_bytes / 2**20:.0f} MB a download may have: export a shorter text.")
        self._ensure_sweeper()
        with self._lock:  # the quota check and the write together: two exports never both squeeze in
            self.sweep()
            if self.used_bytes() + estimate > self.quota_bytes:
                raise ExportRefused("The server is holding as many trace downloads as it can right now; try again "
                                    f"in a few minutes (each is kept for {self.max_age / 60:.0f} minutes).")
            path = self.folder / uuid.uuid4().hex / name
            path.parent.mkdir(parents=True)
            try:
                self._write_file(traced, path, fmt)
                if path.stat().st_size > self.max_file_bytes:
                    raise ExportRefused("This trace is too large to download: export a shorter text.")
            except BaseException:
                shutil.rmtree(path.parent, ignore_errors=True)
                raise
        return path

    @staticmethod
    def _write_file(traced: gates.TextTrace, path: Path, fmt: str) -> None:
        if fmt == "npz":
            gates.to_npz(traced, str(path))
        else:
            with path.open("w", encoding="utf-8") as out:
                json.dump(round_floats(gates.to_json(traced)), out, separators=(",", ":"), ensure_ascii=False)

    # -- cleaning up ---------------------------------------------------------------------------------------------

    def files(self) -> list[Path]:
        return [p for p in self.folder.glob("*/*") if p.is_file()]

    def used_bytes(self) -> int:
        total = 0
        for path in self.files():
            try:
                total += path.stat().st_size
            except FileNotFoundError:  # swept meanwhile
                pass
        return total

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

    def _remove_stray_siblings(self) -> None:
        """Folders of servers that stopped without cleaning up (killed): removed once surely abandoned."""
        parent = self.folder.parent
        if not parent.is_dir():
            return
        cutoff = time.time() - STRAY_AGE
        for sibling in parent.iterdir():
            if sibling.is_dir() and sibling != self.folder:
                _remove_older_than(sibling, cutoff)
                if not any(sibling.iterdir()):
                    _remove_quietly(sibling)


def _remove_older_than(folder: Path, cutoff: float) -> None:
    for path in folder.glob("*/*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                path.parent.rmdir()
        except OSError:  # gone already, or a sibling file not yet swept
            pass


def _remove_quietly(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass
