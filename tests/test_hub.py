"""seqdemo.inference.hub against a stand-in Hub (tests/hub_server.py): downloads, the cache, every fallback, bad checkpoints.

Every test gets its own Hub cache under tmp_path, no token, and huggingface_hub pointed at the stand-in server.
huggingface_hub reads HF_ENDPOINT, HF_HUB_CACHE, HF_HUB_OFFLINE and the timeouts once, at import, into
huggingface_hub.constants, so the fixtures patch those constants (and set the variables too, for anything that
reads the environment later).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import socket
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from huggingface_hub import constants
from safetensors.torch import save_file

from seqdemo.core.models import NextWordLSTM, SentimentClassifier
from seqdemo.inference import hub
from seqdemo.inference.hub import (
    CheckpointError,
    fetch_checkpoint,
    load_model,
    parse_repo,
)

sys.path.insert(0, str(Path(__file__).parent))
from hub_server import FakeHub, files_from_folder  # noqa: E402

NEEDED = {"config.json", "model.safetensors", "tokenizer.model", "README.md"}


# -- fixtures ------------------------------------------------------------------------------------------------------


def point_hub_at(monkeypatch, url: str) -> None:
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")


@pytest.fixture
def hub_env(tmp_path, monkeypatch, tiny_checkpoints):
    """A private HF_HOME and cache, no token, online, short timeouts."""
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(home / ".agent_harnesses.json"))
    monkeypatch.setattr(constants, "HF_HUB_ETAG_TIMEOUT", 3)
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 3)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    unset = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", *hub.REPO_ENV.values())
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    return home / "hub"


@pytest.fixture
def local(tiny_checkpoints) -> Path:
    """The folder passed as `checkpoints`: its sentiment/ and nextword/ are the tiny local checkpoints."""
    return tiny_checkpoints["sentiment"].parent


@pytest.fixture
def fake_hub(hub_env, monkeypatch):
    with FakeHub() as server:
        point_hub_at(monkeypatch, server.url)
        yield server


@pytest.fixture
def seqdemo_log(caplog):
    caplog.set_level(logging.INFO, logger="seqdemo")

    def records():
        return [r for r in caplog.records if r.name == "seqdemo"]

    return records


def served(folder: Path, changes: dict[str, bytes | None]) -> dict[str, bytes]:
    """The files of a checkpoint folder, with some replaced (bytes) or removed (None)."""
    files = files_from_folder(folder)
    for name, data in changes.items():
        if data is None:
            files.pop(name, None)
        else:
            files[name] = data
    return files


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def sentiment_logits(model) -> torch.Tensor:
    ids = torch.tensor([[5, 9, 14, 3, 0], [7, 8, 0, 0, 0]])
    with torch.no_grad():
        return model(ids, torch.tensor([4, 2]))


def nextword_logits(model) -> torch.Tensor:
    ids = torch.tensor([[5, 9, 14, 3, 21, 2]])
    with torch.no_grad():
        return model(ids)[0]


# -- parse_repo ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("owner/name", ("owner/name", None)),
        ("owner/name@main", ("owner/name", "main")),
        ("Org-1/my_model.v2@v1.0", ("Org-1/my_model.v2", "v1.0")),
        ("owner/name@refs/pr/3", ("owner/name", "refs/pr/3")),
        (f"  owner/name@{'0123456789' * 4} ", ("owner/name", "0123456789" * 4)),
    ],
)
def test_parse_repo(spec, expected):
    assert parse_repo(spec) == expected


@pytest.mark.parametrize(
    "spec", ["", "name", "owner/", "/name", "owner/name@", "a/b/c", "own er/name", "owner/name@two words", "@main"]
)
def test_parse_repo_rejects(spec):
    with pytest.raises(ValueError, match="owner/name"):
        parse_repo(spec)


# -- downloads and the cache ---------------------------------------------------------------------------------------


def test_first_download_loads_the_served_weights(fake_hub, hub_env, tiny_checkpoints, tiny_sentiment, seqdemo_log,
                                                  local):
    files = served(tiny_checkpoints["sentiment"], {})
    files["pytorch_model.bin"] = b"a pickle that must never be fetched"
    files["extras/notes.txt"] = b"not part of a checkpoint"
    sha = fake_hub.add_repo("owner/sentiment", files)

    folder, source = fetch_checkpoint("sentiment", "owner/sentiment", checkpoints=local)

    assert source == f"owner/sentiment@{sha}"
    assert folder.name == sha and hub_env in folder.parents  # a snapshot in the Hub cache
    assert {p.name for p in folder.iterdir()} == NEEDED & set(files)
    fetched = {path.rsplit("/", 1)[-1] for method, path in fake_hub.requests if "/resolve/" in path}
    assert fetched == NEEDED & set(files)  # only the checkpoint's files, never the pickle or the rest
    model = load_model(SentimentClassifier, folder)
    assert same_weights(model, tiny_sentiment)
    assert torch.equal(sentiment_logits(model), sentiment_logits(tiny_sentiment))
    assert seqdemo_log() == []  # a Hub load is not worth a line


def test_cache_is_reused_when_the_server_is_down(fake_hub, tiny_checkpoints, tiny_sentiment, seqdemo_log, local):
    sha = fake_hub.add_repo("owner/sentiment", tiny_checkpoints["sentiment"])
    first, _ = fetch_checkpoint("sentiment", "owner/sentiment", checkpoints=local)
    fake_hub.stop()

    started = time.monotonic()
    folder, source = fetch_checkpoint("sentiment", "owner/sentiment", checkpoints=local)

    assert time.monotonic() - started < 5
    assert folder == first
    assert source == f"owner/sentiment@{sha} (cache)"
    assert same_weights(load_model(SentimentClassifier, folder), tiny_sentiment)
    [record] = seqdemo_log()
    assert record.levelno == logging.WARNING and "unreachable" in record.getMessage()
    assert "cached snapshot" in record.getMessage()


def test_second_load_with_server_up_downloads_nothing(fake_hub, tiny_checkpoints, local):
    sha = fake_hub.add_repo("owner/sentiment", tiny_checkpoints["sentiment"])
    fetch_checkpoint("sentiment", "owner/sentiment", checkpoints=local)
    fake_hub.requests.clear()

    folder, source = fetch_checkpoint("sentiment", "owner/sentiment", checkpoints=local)

    assert source == f"owner/sentiment@{sha}"  # the Hub confirmed the commit: no "(cache)"
    assert not [path for _, path in fake_hub.requests if "/resolve/" in path]


def test_env_var_with_revision(fake_hub, monkeypatch, tmp_path, tiny_checkpoints, tiny_sentiment, local):
    torch.manual_seed(1)
    other = SentimentClassifier(vocab_size=tiny_sentiment.embedding.num_embeddings, embed_dim=16, hidden_size=12)
    other_folder = tmp_path / "sentiment-main"
    shutil.copytree(tiny_checkpoints["sentiment"], other_folder)
    other.save_pretrained(other_folder)
    fake_hub.add_repo("owner/sentiment", other_folder)  # main holds other weights
    sha_v1 = fake_hub.add_repo("owner/sentiment", tiny_checkpoints["sentiment"], revision="v1", tags=("release",))
    monkeypatch.setenv("SEQDEMO_SENTIMENT_REPO", "owner/sentiment@v1")

    folder, source = fetch_checkpoint("sentiment", checkpoints=local)

    assert source == f"owner/sentiment@{sha_v1}"
    assert ("GET", "/api/models/owner/sentiment/revision/v1") in fake_hub.requests
    assert same_weights(load_model(SentimentClassifier, folder), tiny_sentiment)
    # an explicit revision overrides the one in the variable; a tag resolves to its commit
    assert fetch_checkpoint("sentiment", revision="release", checkpoints=local)[1] == f"owner/sentiment@{sha_v1}"


def test_commit_sha_revision_and_its_cache(fake_hub, tiny_checkpoints, local):
    sha = fake_hub.add_repo("owner/sentiment", tiny_checkpoints["sentiment"])
    folder, source = fetch_checkpoint("sentiment", f"owner/sentiment@{sha}", checkpoints=local)
    assert source == f"owner/sentiment@{sha}" and folder.name == sha
    fake_hub.stop()
    cached = fetch_checkpoint("sentiment", "owner/sentiment", revision=sha, checkpoints=local)
    assert cached == (folder, f"owner/sentiment@{sha} (cache)")


def test_bad_env_var_names_the_variable(hub_env, monkeypatch, local):
    monkeypatch.setenv("SEQDEMO_NEXTWORD_REPO", "just-a-name")
    with pytest.raises(ValueError, match="SEQDEMO_NEXTWORD_REPO"):
        fetch_checkpoint("nextword", checkpoints=local)


# -- fallbacks -----------------------------------------------------------------------------------------------------


def test_no_repo_configured(hub_env, tiny_checkpoints, seqdemo_log, local):
    folder, source = fetch_checkpoint("sentiment", checkpoints=local)
    assert folder == tiny_checkpoints["sentiment"]
    assert source == "local checkpoints/sentiment (no Hub repo configured)"
    [record] = seqdemo_log()
    assert record.levelno == logging.INFO and "SEQDEMO_SENTIMENT_REPO" in record.getMessage()


def test_wrong_revision_falls_back(fake_hub, tiny_checkpoints, seqdemo_log, local):
    fake_hub.add_repo("owner/sentiment", tiny_checkpoints["sentiment"])
    folder, source = fetch_checkpoint("sentiment", "owner/sentiment@no-such-branch", checkpoints=local)
    assert folder == tiny_checkpoints["sentiment"]
    assert source == "local checkpoints/sentiment (revision no-such-branch not found in owner/sentiment)"
    [record] = seqdemo_log()
    assert record.levelno == logging.WARNING
    assert "revision no-such-branch not found in owner/sentiment" in record.getMessage()


def test_missing_repo_falls_back(fake_hub, tiny_checkpoints, seqdemo_log, local):
    folder, source = fetch_checkpoint("nextword", "owner/nowhere", checkpoints=local)
    assert folder == tiny_checkpoints["nextword"]
    assert source == "local checkpoints/nextword (repo owner/nowhere not found on the Hub)"
    [record] = seqdemo_log()
    assert record.levelno == logging.WARNING and "owner/nowhere not found" in record.getMessage()


def test_unreachable_hub_falls_back_fast(hub_env, monkeypatch, tiny_checkpoints, seqdemo_log, local):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    point_hub_at(monkeypatch, f"http://127.0.0.1:{port}")

    started = time.monotonic()
    folder, source = fetch_checkpoint("sentiment", "owner/sentiment", checkpoints=local)

    assert time.monotonic() - started < 5
    assert folder == tiny_checkpoints["sentiment"]
    assert source.startswith("local checkpoints/sentiment (Hub unreachable: ")
    [record] = seqdemo_log()
    assert record.levelno == logging.WARNING and "unreachable" in record.getMessage()


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_failing_hub_uses_the_cached_snapshot(fake_hub, monkeypatch, tiny_checkpoints, seqdemo_log, local, status):
    """A 5xx or a 429 says nothing about the repo: the snapshot already in the cache is still the right one."""
    sha = fake_hub.add_repo("owner/sentiment", tiny_checkpoints["sentiment"])
    first, _ = fetch_checkpoint("sentiment", "owner/sentiment", checkpoints=local)
    fake_hub.fail_with(status)
    sleep_for_retries(monkeypatch)

    folder, source = fetch_checkpoint("sentiment", "owner/sentiment", checkpoints=local)

    assert (folder, source) == (first, f"owner/sentiment@{sha} (cache)")
    assert any(path == "/api/models/owner/sentiment" for _, path in fake_hub.requests[-3:])  # it did ask
    [record] = seqdemo_log()[-1:]
    assert record.levelno == logging.WARNING and "cached snapshot" in record.getMessage()


@pytest.mark.parametrize("status", [502, 429])
def test_a_failing_hub_without_a_cache_falls_back_to_local(fake_hub, monkeypatch, tiny_checkpoints, seqdemo_log,
                                                           local, status):
    fake_hub.add_repo("owner/sentiment", tiny_checkpoints["sentiment"])
    fake_hub.fail_with(status)
    sleep_for_retries(monkeypatch)

    folder, source = fetch_checkpoint("sentiment", "owner/sentiment", checkpoints=local)

    assert folder == tiny_checkpoints["sentiment"]
    assert source.startswith("local checkpoints/sentiment (")
    [record] = seqdemo_log()
    assert record.levelno == logging.WARNING and "loading local checkpoints/sentiment" in record.getMessage()


def sleep_for_retries(monkeypatch) -> None:
    """huggingface_hub may retry a 5xx or 429 after a pause: no real pauses in a test."""
    from huggingface_hub.utils import _http

    if hasattr(_http, "time"):
        monkeypatch.setattr(_http, "time", SimpleNamespace(sleep=lambda seconds: None, time=time.time,
                                                           monotonic=time.monotonic))


def test_offline_falls_back_without_any_request(fake_hub, monkeypatch, tiny_checkpoints, seqdemo_log, local):
    fake_hub.add_repo("owner/sentiment", tiny_checkpoints["sentiment"])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # set after huggingface_hub's import: read at call time

    folder, source = fetch_checkpoint("sentiment", "owner/sentiment", checkpoints=local)

    assert folder == tiny_checkpoints["sentiment"]
    assert source == "local checkpoints/sentiment (HF_HUB_OFFLINE=1)"
    assert fake_hub.requests == []
    [record] = seqdemo_log()
    assert record.levelno == logging.WARNING and "HF_HUB_OFFLINE=1" in record.getMessage()


def test_offline_uses_a_cached_snapshot(fake_hub, monkeypatch, tiny_checkpoints, local):
    sha = fake_hub.add_repo("owner/sentiment", tiny_checkpoints["sentiment"])
    first, _ = fetch_checkpoint("sentiment", "owner/sentiment", checkpoints=local)
    fake_hub.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    cached = fetch_checkpoint("sentiment", "owner/sentiment", checkpoints=local)
    assert cached == (first, f"owner/sentiment@{sha} (cache)")
    assert fake_hub.requests == []


def test_missing_local_folder_is_a_clear_error(hub_env, tmp_path):
    with pytest.raises(FileNotFoundError, match="no Hub repo configured"):
        fetch_checkpoint("sentiment", checkpoints=tmp_path / "nothing-here")


# -- bad checkpoints -----------------------------------------------------------------------------------------------


def test_truncated_weights_name_the_file(fake_hub, tiny_checkpoints, local):
    weights = (tiny_checkpoints["sentiment"] / "model.safetensors").read_bytes()
    half = weights[: len(weights) // 2]
    fake_hub.add_repo("owner/cut", served(tiny_checkpoints["sentiment"], {"model.safetensors": half}))
    folder, _ = fetch_checkpoint("sentiment", "owner/cut", checkpoints=local)
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_model(SentimentClassifier, folder)


def test_transfer_cut_short_names_the_file(fake_hub, monkeypatch, tiny_checkpoints, tmp_path, local):
    from huggingface_hub import file_download

    monkeypatch.setattr(file_download, "time", SimpleNamespace(sleep=lambda seconds: None))  # its 1 s retry pauses
    fake_hub.add_repo("owner/flaky", tiny_checkpoints["sentiment"])
    fake_hub.cut_transfer("owner/flaky", "model.safetensors", 1000)

    with pytest.raises(CheckpointError, match="model.safetensors from owner/flaky arrived truncated"):
        fetch_checkpoint("sentiment", "owner/flaky", checkpoints=local)
    gets = [p for m, p in fake_hub.requests if m == "GET" and p.endswith("/model.safetensors")]
    assert len(gets) > 1  # huggingface_hub resumed before giving up
    sha256 = hashlib.sha256((tiny_checkpoints["sentiment"] / "model.safetensors").read_bytes()).hexdigest()
    left = [p.name for p in (tmp_path / "hf" / "hub").rglob("*")]  # nothing half-written kept
    assert "model.safetensors" not in left and not [n for n in left if sha256 in n and not n.endswith(".lock")]


@pytest.mark.parametrize("size", [0, 5, 100])
def test_header_cut_short_names_the_file(tmp_path, tiny_checkpoints, size):
    folder = tmp_path / "cut"
    shutil.copytree(tiny_checkpoints["sentiment"], folder)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[:size])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_model(SentimentClassifier, folder)


@pytest.mark.parametrize("text", ['{"vocab_size": 4', "[1, 2]", '{"cell": "transformer"}'])
def test_bad_config_names_the_file(tmp_path, tiny_checkpoints, text):
    folder = tmp_path / "bad"
    shutil.copytree(tiny_checkpoints["sentiment"], folder)
    (folder / "config.json").write_text(text)
    with pytest.raises(CheckpointError, match="config.json"):
        load_model(SentimentClassifier, folder)


def test_missing_or_extra_weights_are_refused(tmp_path, tiny_checkpoints, tiny_sentiment):
    folder = tmp_path / "partial"
    shutil.copytree(tiny_checkpoints["sentiment"], folder)
    state = {k: v.contiguous() for k, v in tiny_sentiment.state_dict().items() if k != "classifier.bias"}
    save_file(state, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match="model.safetensors.*classifier.bias"):
        load_model(SentimentClassifier, folder)
    state["classifier.bias"] = tiny_sentiment.classifier.bias.detach().clone()
    state["surplus.weight"] = torch.zeros(2)
    save_file(state, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match="surplus.weight"):
        load_model(SentimentClassifier, folder)


def test_pickle_only_repo_is_refused(fake_hub, tiny_checkpoints, tiny_sentiment, local):
    buffer = io.BytesIO()
    torch.save(tiny_sentiment.state_dict(), buffer)
    files = served(tiny_checkpoints["sentiment"], {"model.safetensors": None})
    files["pytorch_model.bin"] = buffer.getvalue()
    files["weights.ckpt"] = b"another pickle"
    fake_hub.add_repo("owner/pickled", files)

    with pytest.raises(CheckpointError) as error:
        fetch_checkpoint("sentiment", "owner/pickled", checkpoints=local)

    message = str(error.value)
    assert "owner/pickled" in message and "pytorch_model.bin" in message and "only loads safetensors" in message
    assert not [path for _, path in fake_hub.requests if path.endswith((".bin", ".ckpt"))]  # never downloaded


def test_pickle_only_folder_is_refused(tmp_path, tiny_checkpoints):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_checkpoints["nextword"], folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="pytorch_model.bin.*only loads safetensors"):
        load_model(NextWordLSTM, folder)


def test_repo_without_tokenizer_is_refused(fake_hub, tiny_checkpoints, local):
    fake_hub.add_repo("owner/no-tok", served(tiny_checkpoints["nextword"], {"tokenizer.model": None}))
    with pytest.raises(CheckpointError, match="tokenizer.model"):
        fetch_checkpoint("nextword", "owner/no-tok", checkpoints=local)


# -- models --------------------------------------------------------------------------------------------------------


def test_load_model_restores_the_tied_decoder(tiny_checkpoints, tiny_nextword):
    saved = json.loads((tiny_checkpoints["nextword"] / "config.json").read_text())
    assert saved["tie_weights"] is True
    model = load_model(NextWordLSTM, tiny_checkpoints["nextword"])
    assert model.decoder.weight is model.embedding.weight
    assert not model.training
    assert same_weights(model, tiny_nextword)
    assert torch.equal(nextword_logits(model), nextword_logits(tiny_nextword))


def test_load_nextword_from_the_hub(fake_hub, tiny_checkpoints, tiny_nextword, tiny_tokenizer, local):
    from seqdemo.inference.generation import NextWordPipeline

    sha = fake_hub.add_repo("owner/nextword", tiny_checkpoints["nextword"])
    pipe = hub.load("nextword", "owner/nextword", device="cpu", checkpoints=local)

    assert isinstance(pipe, NextWordPipeline)
    assert pipe.source == f"owner/nextword@{sha}"
    assert pipe.device == torch.device("cpu")
    assert pipe.model.decoder.weight is pipe.model.embedding.weight
    assert not pipe.model.training
    assert torch.equal(nextword_logits(pipe.model), nextword_logits(tiny_nextword))
    assert pipe.tokenizer.encode("The plot was thin.") == tiny_tokenizer.encode("The plot was thin.")


def test_load_sentiment_falls_back_to_local(hub_env, tiny_sentiment, local):
    from seqdemo.inference.sentiment import SentimentPipeline

    pipe = hub.load("sentiment", device="cpu", checkpoints=local)
    assert isinstance(pipe, SentimentPipeline)
    assert pipe.source == "local checkpoints/sentiment (no Hub repo configured)"
    assert torch.equal(sentiment_logits(pipe.model), sentiment_logits(tiny_sentiment))


@pytest.mark.parametrize("tokenizer", [b"not sentencepiece", b""], ids=["garbage", "empty"])
def test_a_corrupt_hub_tokenizer_gives_way_to_the_local_checkpoint(fake_hub, tiny_checkpoints, seqdemo_log, local,
                                                                   tokenizer):
    """The app keeps starting: the local checkpoint loads, and the warning names the broken file."""
    fake_hub.add_repo("owner/bad-tok", served(tiny_checkpoints["sentiment"], {"tokenizer.model": tokenizer}))
    with pytest.raises(CheckpointError, match="tokenizer.model"):  # the folder itself is refused, naming the file
        hub.load_folder("sentiment", fetch_checkpoint("sentiment", "owner/bad-tok", checkpoints=local)[0])

    pipe = hub.load("sentiment", "owner/bad-tok", device="cpu", checkpoints=local)

    assert pipe.source == "local checkpoints/sentiment (the Hub checkpoint is broken)"
    assert pipe.predict("I loved it")[0]["label"] in pipe.labels
    [record] = seqdemo_log()[-1:]
    assert record.levelno == logging.WARNING
    assert "tokenizer.model" in record.getMessage() and "loading local checkpoints/sentiment" in record.getMessage()


def test_an_empty_tokenizer_file_is_named(tmp_path, tiny_checkpoints):
    """sentiencepiece takes 0 bytes without complaint and fails on the first encode, naming nothing."""
    folder = tmp_path / "empty-tok"
    shutil.copytree(tiny_checkpoints["nextword"], folder)
    (folder / "tokenizer.model").write_bytes(b"")
    with pytest.raises(CheckpointError, match=f"{folder / 'tokenizer.model'}.*no pieces"):
        hub.load_folder("nextword", folder)


def test_a_corrupt_cached_snapshot_with_the_hub_down_gives_way_to_local(fake_hub, tiny_checkpoints, seqdemo_log,
                                                                        local):
    weights = (tiny_checkpoints["sentiment"] / "model.safetensors").read_bytes()
    fake_hub.add_repo("owner/cut", served(tiny_checkpoints["sentiment"], {"model.safetensors": weights[:100]}))
    cached, _ = fetch_checkpoint("sentiment", "owner/cut", checkpoints=local)  # the broken file is now cached
    fake_hub.stop()

    pipe = hub.load("sentiment", "owner/cut", device="cpu", checkpoints=local)

    assert pipe.source == "local checkpoints/sentiment (the Hub checkpoint is broken)"
    messages = [r.getMessage() for r in seqdemo_log() if r.levelno == logging.WARNING]
    assert any("cached snapshot" in m for m in messages)  # the Hub was down: the cache was tried first
    assert str(cached / "model.safetensors") in messages[-1] and "loading local checkpoints/sentiment" in messages[-1]


def test_a_broken_local_checkpoint_still_raises(hub_env, tmp_path, tiny_checkpoints):
    broken = tmp_path / "checkpoints"
    shutil.copytree(tiny_checkpoints["sentiment"], broken / "sentiment")
    (broken / "sentiment" / "config.json").write_text("{")
    with pytest.raises(CheckpointError, match="config.json"):
        hub.load("sentiment", device="cpu", checkpoints=broken)


# -- the deadline --------------------------------------------------------------------------------------------------


def test_a_hanging_weight_file_falls_back_within_the_deadline(fake_hub, monkeypatch, tiny_checkpoints, seqdemo_log,
                                                               local):
    """The repo info answers, then model.safetensors never arrives: without the deadline huggingface_hub would wait
    its read timeout (60 s here) on each of its tries."""
    fake_hub.add_repo("owner/slow", tiny_checkpoints["sentiment"])
    fake_hub.stall("owner/slow", "model.safetensors")
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 60)
    monkeypatch.setenv("SEQDEMO_HUB_DEADLINE", "1.5")

    started = time.monotonic()
    folder, source = fetch_checkpoint("sentiment", "owner/slow", checkpoints=local)

    assert time.monotonic() - started < 1.5 + 10  # the deadline, plus a generous margin for a loaded machine
    assert folder == tiny_checkpoints["sentiment"]
    assert source == "local checkpoints/sentiment (the Hub did not deliver owner/slow within 1.5 s " \
                     "(SEQDEMO_HUB_DEADLINE))"
    assert ("GET", "/owner/slow/resolve/" + fake_hub.repos["owner/slow"].refs["main"].sha + "/model.safetensors") \
        in fake_hub.requests  # it did reach the weights
    [record] = seqdemo_log()
    assert record.levelno == logging.WARNING and "SEQDEMO_HUB_DEADLINE" in record.getMessage()
    end_abandoned_fetches(fake_hub, monkeypatch)


def end_abandoned_fetches(fake_hub, monkeypatch) -> None:
    """The fetch left behind by the deadline gets its connection closed and its retries refused (no pauses), and
    ends while the test still captures its log."""
    from huggingface_hub import file_download

    monkeypatch.setattr(file_download, "time", SimpleNamespace(sleep=lambda seconds: None))
    sleep_for_retries(monkeypatch)
    fake_hub.stop()
    for thread in threading.enumerate():
        if thread.name == "seqdemo-hub-fetch":
            thread.join(timeout=30)


def test_a_failing_weight_file_falls_back_within_the_deadline(fake_hub, monkeypatch, tiny_checkpoints, seqdemo_log,
                                                               local):
    """A 500 on the weights alone (the repo info answers): huggingface_hub's retries (pausing 1, 2, 4, 8 s) are
    cut short by the deadline, and the local checkpoint loads."""
    fake_hub.add_repo("owner/flaky", tiny_checkpoints["nextword"])
    fake_hub.fail_file("owner/flaky", "model.safetensors", 500)
    monkeypatch.setenv("SEQDEMO_HUB_DEADLINE", "3")

    started = time.monotonic()
    pipe = hub.load("nextword", "owner/flaky", device="cpu", checkpoints=local)

    assert time.monotonic() - started < 3 + 10
    assert pipe.source.startswith("local checkpoints/nextword (")
    assert any(path.endswith("/model.safetensors") for _, path in fake_hub.requests)
    [record] = seqdemo_log()
    assert record.levelno == logging.WARNING and "loading local checkpoints/nextword" in record.getMessage()
    end_abandoned_fetches(fake_hub, monkeypatch)


@pytest.mark.parametrize("value", ["0", "-3", "soon", "inf"])
def test_a_bad_deadline_names_the_variable(hub_env, monkeypatch, value, local):
    monkeypatch.setenv("SEQDEMO_HUB_DEADLINE", value)
    with pytest.raises(ValueError, match="SEQDEMO_HUB_DEADLINE must be a number of seconds"):
        fetch_checkpoint("sentiment", "owner/sentiment", checkpoints=local)


def test_unknown_kind(hub_env):
    with pytest.raises(ValueError, match="'sentiment', 'nextword'"):
        hub.load("translation")
    with pytest.raises(ValueError, match="'sentiment', 'nextword'"):
        fetch_checkpoint("translation")
