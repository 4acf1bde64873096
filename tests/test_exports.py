"""Trace downloads stay bounded on disk and shared fairly: a size bound checked before writing (and true: checked
against real files), a share per visitor, a quota for all, one copy each (written inside gradio's cache, which then
serves it where it lies), deletion after max_age, when the store closes, and at the next start after a SIGKILL."""

from __future__ import annotations

import copy
import gzip
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import serve_locally

import app
from seqdemo.core import gates
from seqdemo.inference.generation import NextWordPipeline
from seqdemo.inference.sentiment import SentimentPipeline
from seqdemo.web import exports
from seqdemo.web.exports import ExportRefused, ExportStore, export_arrays, size_bound

TEXT = "The plot was thin but the acting saved it"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def traced(tiny_nextword, tiny_tokenizer):
    return gates.trace_text(tiny_nextword, tiny_tokenizer, TEXT)


def downloads(folder: Path) -> list[Path]:
    """Everything under a store's folder but its owner marker: what an export leaves on disk."""
    return [p for p in folder.rglob("*") if p.name != exports.OWNER_FILE]


def load_json(path: Path) -> dict:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def test_many_exports_stay_under_the_quota(tmp_path, traced):
    quota = 5 * size_bound(export_arrays(traced, "json"), "json", "trace-0.json.gz")
    store = ExportStore(tmp_path / "exports" / "server", quota_bytes=quota, share_bytes=quota, max_age=600)
    written, refused = [], []
    for i in range(40):
        try:
            written.append(store.write(traced, f"trace-{i}.json", "json"))
        except ExportRefused as error:
            refused.append(str(error))
        assert store.used_bytes() <= quota  # the stated bound, after every export
    assert len(written) >= 5 and refused  # the quota filled, then exports were refused ...
    assert "try again in a few minutes" in refused[0]  # ... with a sentence saying what to do
    assert written[0].name == "trace-0.json.gz"
    assert load_json(written[0])["tokens"] == traced.tokens

    store.sweep(now=time.time() + 601)  # the timer's sweep, ten minutes on: every download has expired
    assert store.files() == [] and downloads(store.folder) == []
    store.write(traced, "again.npz", "npz")  # room again
    store.close()
    assert not store.folder.exists()


def test_the_sweeper_runs_on_a_timer(tmp_path, traced):
    store = ExportStore(tmp_path / "exports" / "server", max_age=0.2, sweep_every=0.1)
    path = store.write(traced, "trace.npz", "npz")
    assert path.is_file()
    for _ in range(100):  # polled, not timed: the sweep runs within a few of its 0.1 s periods
        if not path.exists():
            break
        time.sleep(0.1)
    assert not path.exists()
    store.close()


@pytest.mark.parametrize("fmt", ["json", "npz"])
def test_a_refused_export_writes_nothing(tmp_path, traced, fmt):
    bound = size_bound(export_arrays(traced, fmt), fmt, f"trace.{fmt}" + (".gz" if fmt == "json" else ""))
    store = ExportStore(tmp_path / "exports" / "server", max_file_bytes=bound - 1)
    with pytest.raises(ExportRefused, match="more than the .* a download may have"):
        store.write(traced, f"trace.{fmt}", fmt)
    assert downloads(store.folder) == []  # refused before anything was written, not written then deleted

    full = ExportStore(tmp_path / "exports" / "full", quota_bytes=bound - 1)
    with pytest.raises(ExportRefused, match="as many trace downloads as it can"):
        full.write(traced, f"trace.{fmt}", fmt)
    assert downloads(full.folder) == []
    with pytest.raises(ValueError, match="format must be one of: json, npz"):
        store.write(traced, "trace.pkl", "pickle")
    store.close()
    full.close()


def hot(model: torch.nn.Module) -> torch.nn.Module:
    """The model with its input, forget and candidate gates pinned open (nn.LSTM's bias order: i, f, g, o), the
    candidate +1 for half the units and -1 for the others: each cell state climbs to +-t after t steps, giving
    values of three integer digits and a sign, the widest numbers a 256-token trace can hold."""
    hot = copy.deepcopy(model)
    with torch.no_grad():
        for name, bias in hot.named_parameters():
            if name.startswith("rnn.bias_ih"):
                h = bias.numel() // 4
                bias[:2 * h] = 30.0
                bias[2 * h:3 * h] = torch.where(torch.arange(h) % 2 == 0, 30.0, -30.0)
    return hot


@pytest.mark.parametrize("model_name", ["tiny_sentiment", "tiny_nextword", "hot_nextword"])
def test_the_size_bound_holds_for_real_files(tmp_path, request, tiny_tokenizer, model_name):
    """The bound is checked against the files themselves, for several lengths, and against their uncompressed
    contents too (the compressed files alone sit far below any bound that counts raw bytes)."""
    model = hot(request.getfixturevalue("tiny_nextword")) if model_name == "hot_nextword" \
        else request.getfixturevalue(model_name)
    store = ExportStore(tmp_path / "exports" / "server")
    widest = 0.0
    for words in (1, 7, 60, 400):  # up to 256 tokens, the most a trace holds
        traced = gates.trace_text(model, tiny_tokenizer, " ".join((TEXT.split() * 60)[:words]), max_tokens=256)
        for fmt in ("json", "npz"):
            arrays = export_arrays(traced, fmt)
            path = store.write(traced, f"t{words}.{fmt}", fmt)
            assert path.stat().st_size <= size_bound(arrays, fmt, path.name)
            if fmt == "json":
                raw = gzip.decompress(path.read_bytes())
                assert len(raw) <= exports.json_bound(arrays)
            else:
                stored = tmp_path / f"stored{words}.npz"
                np.savez(stored, **arrays)  # the same members, uncompressed
                assert stored.stat().st_size <= exports.npz_raw_bound(arrays) + exports._CONTAINER
        widest = max(widest, max(float(t.abs().max()) for v in traced.layers.values() for t in v.values()))
    if model_name == "hot_nextword":
        assert widest >= 100  # the widest numbers were tried
    store.close()


def test_downloads_hold_the_traced_values(tmp_path, traced):
    """JSON to 3 decimals and .npz as float16, against the trace's own float32 tensors."""
    store = ExportStore(tmp_path / "exports" / "server")
    as_json = load_json(store.write(traced, "t.json", "json"))
    with np.load(store.write(traced, "t.npz", "npz"), allow_pickle=False) as arrays:
        assert arrays["tokens"].tolist() == traced.tokens == as_json["tokens"]
        for (layer, direction), values in traced.layers.items():
            for name, tensor in values.items():
                key = f"layer{layer}_{gates.DIRECTIONS[direction]}/{name}"
                expected = tensor.float().numpy()
                np.testing.assert_allclose(as_json[key], expected, rtol=0, atol=5e-4 + 1e-9)
                assert arrays[key].dtype == np.float16
                np.testing.assert_allclose(arrays[key].astype(np.float32), expected, rtol=2**-11, atol=1e-7)
    store.close()


def test_one_visitor_cannot_exceed_their_share(tmp_path, traced):
    bound = size_bound(export_arrays(traced, "npz"), "npz", "trace.npz")
    share = 3 * bound
    store = ExportStore(tmp_path / "exports" / "server", share_bytes=share, quota_bytes=100 * bound)
    written, refused = [], []
    for _ in range(20):
        try:
            written.append(store.write(traced, "trace.npz", "npz", visitor="session-a"))
        except ExportRefused as error:
            refused.append(str(error))
        assert store.visitor_bytes("session-a") <= share  # never past the share, after every export
    assert written and refused and "You already hold as many trace downloads as one visitor may" in refused[0]
    assert all(path.is_file() for path in written)  # their downloads stay until they expire

    other = store.write(traced, "trace.npz", "npz", visitor="session-b")  # another visitor still gets theirs
    anonymous = store.write(traced, "trace.npz", "npz")  # and so does a caller that names no visitor
    assert store.files("session-b") == [other] and anonymous in store.files(None) and other.is_file()
    assert "session-a" not in str(written[0])  # the session hash never appears in a path
    store.close()


# -- the folder of a stopped server --------------------------------------------------------------------------------

KILLED_SERVER = r"""
import sys, time, torch
from seqdemo.core import gates
from seqdemo.web.exports import ExportStore
store = ExportStore(sys.argv[1])
traced = gates.TextTrace(tokens=["a", "b"], ids=[1, 2], layers={(0, 0): {"h": torch.rand(2, 4)}}, truncated=False)
print("wrote", store.write(traced, "trace.npz", "npz", visitor="someone"), flush=True)
time.sleep(600)
"""


def run_until_written(folder: Path) -> tuple[subprocess.Popen, Path]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SERVER, str(folder)], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    seen = []
    while True:
        try:
            seen.append(lines.get(timeout=120).strip())
        except queue.Empty:
            proc.kill()
            raise AssertionError(f"the server never wrote its export: {seen}") from None
        if seen[-1].startswith("wrote "):
            return proc, Path(seen[-1][len("wrote "):])


def test_a_killed_servers_folder_is_removed_at_the_next_start(tmp_path, traced):
    parent = tmp_path / "exports"
    proc, left = run_until_written(parent / "killed")
    proc.send_signal(signal.SIGKILL)  # no atexit: the folder stays behind
    proc.wait(timeout=60)
    assert left.is_file()

    alive = ExportStore(parent / "alive")  # another server, still running (this process)
    kept = alive.write(traced, "trace.npz", "npz")
    elsewhere = parent / "other-host"  # a server on another host sharing the folder: its process cannot be checked
    (elsewhere / "v1" / "x").mkdir(parents=True)
    (elsewhere / exports.OWNER_FILE).write_text(json.dumps({"pid": 1, "started": None, "host": "elsewhere"}))
    (elsewhere / "v1" / "x" / "trace.npz").write_bytes(b"recent")

    ExportStore(parent / "new")

    assert not (parent / "killed").exists()  # the killed server's folder went at once, not hours later
    assert kept.is_file() and elsewhere.joinpath("v1", "x", "trace.npz").is_file()  # the others stay
    stale = time.time() - exports.STRAY_AGE - 60
    for path in elsewhere.rglob("*"):
        os.utime(path, (stale, stale))
    os.utime(elsewhere, (stale, stale))
    ExportStore(parent / "newer")
    assert not elsewhere.exists() and kept.is_file()  # unchecked folders go once STRAY_AGE old
    alive.close()


def test_the_served_page_keeps_one_copy_inside_gradios_cache(tmp_path, monkeypatch, tiny_tokenizer, tiny_sentiment,
                                                            tiny_nextword):
    from gradio_client import Client

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    cpu = torch.device("cpu")
    demo = app.build_demo(SentimentPipeline(tiny_sentiment, tiny_tokenizer, device=cpu, source="tiny"),
                          NextWordPipeline(tiny_nextword, tiny_tokenizer, device=cpu, source="tiny"))
    url = serve_locally(demo, **app.launch_options())
    try:
        client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
        paths = [client.predict(TEXT, kind, fmt, api_name="/export_trace")["path"]
                 for kind in ("sentiment", "nextword") for fmt in ("json", "npz")]
        files = [p for p in (tmp_path / "gradio").rglob("*") if p.is_file() and p.name != exports.OWNER_FILE]
        assert sorted(map(str, files)) == sorted(paths)  # one copy of each, served where it was written
        assert all("seqdemo-exports" in path for path in paths)
    finally:
        demo.close()
