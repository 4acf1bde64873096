"""Trace downloads stay bounded on disk: a size cap per file, a quota for all of them, one copy each (written inside
gradio's cache, which then serves it where it lies), deletion after max_age and when the store closes."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import torch

import app
from seqdemo.core import gates
from seqdemo.inference.generation import NextWordPipeline
from seqdemo.inference.sentiment import SentimentPipeline
from seqdemo.web.exports import ExportRefused, ExportStore, trace_values
from tests.conftest import serve_locally

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting.*"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated.*"),
]
TEXT = "The plot was thin but the acting saved it"


@pytest.fixture(scope="module")
def traced(tiny_nextword, tiny_tokenizer):
    return gates.trace_text(tiny_nextword, tiny_tokenizer, TEXT)


def disk_used(folder) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_many_exports_stay_under_the_quota(tmp_path, traced):
    one = len(json.dumps(gates.to_json(traced)))  # more than one compact JSON export takes
    quota = 5 * one
    store = ExportStore(tmp_path / "exports" / "server", quota_bytes=quota, max_age=600)
    written, refused = [], []
    for i in range(40):
        try:
            written.append(store.write(traced, f"trace-{i}.json", "json"))
        except ExportRefused as error:
            refused.append(str(error))
        assert disk_used(tmp_path) <= quota  # the stated bound, after every export
    assert len(written) >= 5 and refused  # the quota filled, then exports were refused ...
    assert "try again in a few minutes" in refused[0]  # ... with a sentence saying what to do
    assert json.loads(written[0].read_text())["tokens"] == traced.tokens

    store.sweep(now=time.time() + 601)  # the timer's sweep, ten minutes on: every download has expired
    assert store.files() == [] and disk_used(tmp_path) == 0
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


def test_a_file_over_the_cap_is_never_written(tmp_path, traced):
    store = ExportStore(tmp_path / "exports" / "server", max_file_bytes=trace_values(traced) * 4 - 1)
    with pytest.raises(ExportRefused, match="more than the .* MB a download may have"):
        store.write(traced, "trace.npz", "npz")
    assert disk_used(tmp_path) == 0
    with pytest.raises(ValueError, match="format must be one of: json, npz"):
        store.write(traced, "trace.pkl", "pickle")
    store.close()


def test_json_and_npz_agree_to_four_decimals(tmp_path, traced):
    store = ExportStore(tmp_path / "exports" / "server")
    as_json = json.loads(store.write(traced, "t.json", "json").read_text())
    with np.load(store.write(traced, "t.npz", "npz"), allow_pickle=False) as arrays:
        for name, value in arrays.items():
            if value.dtype.kind == "f":
                np.testing.assert_allclose(as_json[name], value, atol=5e-5)  # 4 decimals
    store.close()


def test_stray_folders_of_stopped_servers_are_removed(tmp_path, traced):
    old = ExportStore(tmp_path / "exports" / "killed")
    left = old.write(traced, "t.npz", "npz")
    stale = time.time() - 7 * 3600
    os.utime(left, (stale, stale))
    ExportStore(tmp_path / "exports" / "new")
    assert not left.exists() and not (tmp_path / "exports" / "killed").exists()


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
        files = [p for p in (tmp_path / "gradio").rglob("*") if p.is_file()]
        assert sorted(map(str, files)) == sorted(paths)  # one copy of each, served where it was written
        assert all("seqdemo-exports" in path for path in paths)
    finally:
        demo.close()
