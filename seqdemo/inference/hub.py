"""Where the checkpoints come from: a Hugging Face Hub repo when one is configured, else `checkpoints/<kind>`.

A checkpoint is a folder holding config.json, model.safetensors and tokenizer.model (README.md, the model card,
comes along when the repo has one). The repo for each model comes from the arguments, else from the environment:

    SEQDEMO_SENTIMENT_REPO=owner/name            # the default branch
    SEQDEMO_NEXTWORD_REPO=owner/name@v1.0        # a branch, a tag or a commit sha

Downloads go through huggingface_hub (its cache, its token, HF_ENDPOINT), restricted to the files above. When the
Hub cannot serve the checkpoint - no repo configured, HF_HUB_OFFLINE=1, the Hub unreachable or too slow, the repo
or the revision missing - the model loads from the local `checkpoints/<kind>` folder, and one line on the
"seqdemo" logger says why. A snapshot already in the cache is used when the Hub is unreachable, too slow, or
offline mode is on. "Too slow": the whole fetch of one checkpoint gets SEQDEMO_HUB_DEADLINE seconds (default 30),
however many times huggingface_hub retries inside it.

A checkpoint that is there but wrong - a truncated download, a config that does not parse, a repo with only
pickled weights - is a CheckpointError naming the file: only safetensors weights are ever loaded, never a pickle.
`load` then falls back to the local checkpoint with a warning that quotes the error, so a broken Hub repo (or a
broken snapshot in the cache) does not stop the app; `fetch_checkpoint` and `load_folder` raise it.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Mapping, overload

import httpx2
import torch
from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from seqdemo.core import weights
from seqdemo.core.models import NextWordLSTM, SentimentClassifier

if TYPE_CHECKING:  # imported on first load instead: `import seqdemo` stays light
    from seqdemo.inference.generation import NextWordPipeline
    from seqdemo.inference.sentiment import SentimentPipeline

logger = logging.getLogger("seqdemo")

CHECKPOINTS = Path(__file__).resolve().parent.parent.parent / "checkpoints"  # the local fallback: <CHECKPOINTS>/<kind>
REPO_ENV = {"sentiment": "SEQDEMO_SENTIMENT_REPO", "nextword": "SEQDEMO_NEXTWORD_REPO"}
MODEL_CLASS = {"sentiment": SentimentClassifier, "nextword": NextWordLSTM}
KINDS = tuple(REPO_ENV)

CONFIG = "config.json"
WEIGHTS = weights.WEIGHTS
TOKENIZER = "tokenizer.model"
REQUIRED_FILES = (CONFIG, WEIGHTS, TOKENIZER)
HUB_FILES = [*REQUIRED_FILES, "README.md", "metrics.json"]  # the only files ever downloaded
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")

DEADLINE_ENV = "SEQDEMO_HUB_DEADLINE"
DEFAULT_DEADLINE = 30.0  # seconds for the whole Hub fetch of one checkpoint
LOCAL_SOURCE = "local checkpoints/"  # how the source of a local checkpoint begins

_TRUE = {"1", "ON", "YES", "TRUE"}
# The Hub could not serve the checkpoint: no connection, timeout, offline mode, an HTTP error (not found, 5xx...).
_HUB_ERRORS = (httpx2.TransportError, OfflineModeIsEnabled, HfHubHTTPError, LocalEntryNotFoundError)


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded safely: missing, truncated or corrupt file, or pickled weights.
    The message names the file."""


def parse_repo(spec: str) -> tuple[str, str | None]:
    """`"owner/name"` -> ("owner/name", None); `"owner/name@rev"` -> ("owner/name", "rev").

    The revision is a branch, a tag or a commit sha, and may hold slashes (`owner/name@refs/pr/3`).
    """
    text = (spec or "").strip()
    repo_id, at, revision = text.partition("@")
    repo_id, revision = repo_id.strip(), revision.strip()
    owner, slash, name = repo_id.partition("/")
    bad_revision = at and (not revision or any(c.isspace() for c in revision))
    if not (slash and _valid_part(owner) and _valid_part(name)) or bad_revision:
        raise ValueError(
            f"{spec!r} is not a Hub repo: expected 'owner/name' or 'owner/name@revision' "
            "(a branch, a tag or a commit sha)"
        )
    return repo_id, (revision or None)


def _valid_part(part: str) -> bool:
    return bool(part) and all(c.isalnum() or c in "-_." for c in part) and not part.startswith((".", "-"))


def _cached_or_local(kind: str, checkpoints, repo_id: str, revision: str | None, why: str) -> tuple[Path, str]:
    """The Hub's cached snapshot of the repo when there is one (the Hub is out of reach or too slow), else the local
    fallback, both logged with `why`."""
    cached = _cached_snapshot(repo_id, revision)
    if cached is None:
        return _local(kind, checkpoints, why)
    logger.warning("%s: %s; using the cached snapshot of %s", kind, why, f"{repo_id}@{revision}" if revision else repo_id)
    return cached, f"{repo_id}@{cached.name} (cache)"


def fetch_checkpoint(
    kind: str, repo_id: str | None = None, revision: str | None = None, checkpoints: str | Path | None = None
) -> tuple[Path, str]:
    """Returns (folder holding config.json, model.safetensors and tokenizer.model, where it came from).
    `checkpoints`: the folder whose <kind> subfolder is the local fallback (default: the project's checkpoints/).

    The source reads `owner/name@<commit sha>` for a Hub download, `owner/name@<commit sha> (cache)` for a cached
    snapshot used while the Hub is out of reach, and `local checkpoints/<kind> (<why>)` for the local fallback.
    """
    _check_kind(kind)
    env_name = REPO_ENV[kind]
    if repo_id is None:
        repo_id = os.environ.get(env_name, "").strip() or None
        where = env_name
    else:
        where = "repo_id"
    if repo_id is None:
        hint = f"no Hub repo configured (set {env_name}=owner/name to load from the Hub)"
        return _local(kind, checkpoints, "no Hub repo configured", detail=hint, level=logging.INFO)
    try:
        repo_id, spec_revision = parse_repo(repo_id)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    revision = revision or spec_revision
    label = f"{repo_id}@{revision}" if revision else repo_id

    if _offline():
        cached = _cached_snapshot(repo_id, revision)
        if cached is not None:
            logger.info("%s: HF_HUB_OFFLINE=1, using the cached snapshot of %s", kind, label)
            return cached, f"{repo_id}@{cached.name} (cache)"
        return _local(kind, checkpoints, "HF_HUB_OFFLINE=1",
                      detail=f"HF_HUB_OFFLINE=1 and {label} is not in the Hub cache")

    deadline = hub_deadline()
    try:
        folder, siblings = _within(deadline, _download, repo_id, revision, label)
    except _HubTooSlow:
        why = f"the Hub did not deliver {label} within {deadline:g} s ({DEADLINE_ENV})"
        return _cached_or_local(kind, checkpoints, repo_id, revision, why)
    except _HUB_ERRORS as error:
        if isinstance(error, httpx2.RemoteProtocolError) and "/resolve/" in _url(error):
            # The Hub answered, then a file stopped short of its announced length (huggingface_hub retried first).
            name = _url(error).rsplit("/", 1)[-1]
            raise CheckpointError(
                f"{name} from {label} arrived truncated ({_first_line(error)}); the partial file was discarded, "
                "try again"
            ) from error
        why = _hub_failure(error, repo_id, revision)
        if _unreachable(error):
            return _cached_or_local(kind, checkpoints, repo_id, revision, why)
        return _local(kind, checkpoints, why)
    except CheckpointError:
        raise
    except OSError as error:  # e.g. "Consistency check failed: file should be of size ..." (names the file)
        raise CheckpointError(f"downloading {label} failed: {_first_line(error, 400)}") from error
    present = {p.name for p in folder.iterdir()}
    _check_repo_files(sorted(present | set(siblings or ())), label, present=present)
    return folder, f"{repo_id}@{folder.name}"


def hub_deadline(env: Mapping[str, str] | None = None) -> float:
    """SEQDEMO_HUB_DEADLINE of `env` (default: os.environ) in seconds, a positive number, else DEFAULT_DEADLINE; the
    web layer's Settings reads it here too, so the variable has one reader."""
    text = (os.environ if env is None else env).get(DEADLINE_ENV, "").strip()
    if not text:
        return DEFAULT_DEADLINE
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise ValueError(f"{DEADLINE_ENV} must be a number of seconds above 0, not {text[:40]!r}.")
    return seconds


class _HubTooSlow(Exception):
    """The Hub fetch did not finish within the deadline."""


def _download(repo_id: str, revision: str | None, label: str) -> tuple[Path, list[str] | None]:
    """The snapshot folder and the repo's file list, fetched from the Hub (no deadline of its own).

    The files come one after the other, on the calling thread: snapshot_download would fetch them on a
    ThreadPoolExecutor, whose worker threads the interpreter joins at exit, so a download hanging past the deadline
    (a stalled body, or one dripping a byte at a time, which no read timeout ends) would hold SIGTERM for as long as
    it hangs. Here it hangs in _within's daemon thread only, which ends with the process."""
    info = HfApi().model_info(repo_id, revision=revision, timeout=constants.HF_HUB_ETAG_TIMEOUT)
    siblings = None if info.siblings is None else [s.rfilename for s in info.siblings]
    if siblings is not None:
        _check_repo_files(siblings, label)  # before any download: a pickle is never fetched
    wanted = [name for name in HUB_FILES if siblings is None or name in siblings]
    folder = None
    for name in wanted:
        try:  # at the commit model_info resolved: one snapshot, and no request for a file already cached
            path = hf_hub_download(repo_id, name, revision=info.sha, etag_timeout=constants.HF_HUB_ETAG_TIMEOUT)
        except RemoteEntryNotFoundError:
            if siblings is None:  # no file list: an optional file (README.md) may be absent
                continue
            raise
        folder = Path(path).parent
    if folder is None:  # not one file: the repo is not a checkpoint
        raise CheckpointError(f"{label} has no {', '.join(REQUIRED_FILES)}: a checkpoint needs all of them")
    _remember_commit(folder, revision or constants.DEFAULT_REVISION, info.sha)
    return folder, siblings


def _remember_commit(snapshot: Path, revision: str, commit: str) -> None:
    """Records in the Hub cache which commit a branch or tag pointed at (`refs/<revision>`, as snapshot_download
    does), so that a later load while the Hub is out of reach finds this snapshot by the same name."""
    if revision == commit:
        return
    ref = snapshot.parent.parent / "refs" / revision
    if ref.is_file() and ref.read_text().strip() == commit:
        return
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text(commit)


def _within(seconds: float, fn, *args):
    """fn(*args), or _HubTooSlow once `seconds` have passed; its exception is raised here. A fetch that overruns
    goes on in a daemon thread, unwatched (a hung socket cannot be interrupted), and ends with the process."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = fn(*args)
        except BaseException as error:  # handed to the caller, who re-raises it
            outcome["error"] = error

    worker = threading.Thread(target=run, name="seqdemo-hub-fetch", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise _HubTooSlow
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def load_model(model_class, folder: Path, **overrides) -> torch.nn.Module:
    """Builds `model_class(**config.json)` and loads model.safetensors into it, strictly (every weight present,
    none left over; a tied decoder stays tied). Never unpickles anything. Returns the model on the CPU, in eval mode.
    `overrides` replace settings that shape no weight (dropout, weight storage), e.g. for a run that trains it on.
    """
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG, folder / WEIGHTS
    if not weights_path.is_file():
        pickles = sorted(p.name for p in folder.glob("*") if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise CheckpointError(_pickle_message(str(folder), pickles))
        raise CheckpointError(f"{weights_path} is missing: a checkpoint needs {', '.join(REQUIRED_FILES)}")
    config = _read_config(config_path)
    parameters = inspect.signature(model_class.__init__).parameters
    kwargs = {**{k: v for k, v in config.items() if k in parameters and k != "self"}, **overrides}
    try:
        model = model_class(**kwargs)
    except Exception as error:  # a wrong value in the config (e.g. cell="rnn", a negative size)
        raise CheckpointError(f"{config_path} does not describe a {model_class.__name__}: {error}") from error
    try:
        weights.load(model, weights_path)
    except Exception as error:  # truncated or corrupt file, missing/unexpected weights, shape mismatch
        raise CheckpointError(
            f"{weights_path} cannot be loaded into {model_class.__name__}: {_one_line(error, 600)}"
        ) from error
    return model.eval()


@overload
def load(kind: Literal["sentiment"], repo_id: str | None = ..., revision: str | None = ..., device=...,
         checkpoints: str | Path | None = ...) -> SentimentPipeline: ...
@overload
def load(kind: Literal["nextword"], repo_id: str | None = ..., revision: str | None = ..., device=...,
         checkpoints: str | Path | None = ...) -> NextWordPipeline: ...
def load(kind: str, repo_id: str | None = None, revision: str | None = None, device=None,
         checkpoints: str | Path | None = None) -> SentimentPipeline | NextWordPipeline:
    """The public entry point: the model and tokenizer for `kind` ('sentiment' or 'nextword'), wrapped in their
    pipeline, on `device` (see seqdemo.core.device.pick_device). `pipeline.source` says where the checkpoint came from;
    `checkpoints` is the local fallback's folder (see fetch_checkpoint). A broken Hub or cached checkpoint gives
    way to the local one, with a warning naming the broken file; a broken local checkpoint raises CheckpointError."""
    _check_kind(kind)
    from_local = False
    try:
        folder, source = fetch_checkpoint(kind, repo_id, revision, checkpoints=checkpoints)
        from_local = source.startswith(LOCAL_SOURCE)
        return load_folder(kind, folder, device=device, source=source)
    except CheckpointError as error:
        if from_local:  # nothing left to fall back to
            raise
        folder, source = _local(kind, checkpoints, "the Hub checkpoint is broken", detail=str(error))
    return load_folder(kind, folder, device=device, source=source)


@overload
def load_folder(kind: Literal["sentiment"], folder: str | Path, device=..., source: str | None = ...
                ) -> SentimentPipeline: ...
@overload
def load_folder(kind: Literal["nextword"], folder: str | Path, device=..., source: str | None = ...
                ) -> NextWordPipeline: ...
def load_folder(kind: str, folder: str | Path, device=None, source: str | None = None
                ) -> SentimentPipeline | NextWordPipeline:
    """The pipeline for `kind` from a checkpoint folder already on disk (what `load` does after fetching)."""
    _check_kind(kind)
    from seqdemo.core.device import pick_device
    from seqdemo.core.tokenizer import Tokenizer

    if kind == "sentiment":
        from seqdemo.inference.sentiment import SentimentPipeline as pipeline_class
    else:
        from seqdemo.inference.generation import NextWordPipeline as pipeline_class

    folder = Path(folder)
    device = pick_device(device)
    model = load_model(MODEL_CLASS[kind], folder)
    try:
        tokenizer = Tokenizer.load(folder)
    except ValueError as error:  # Tokenizer.load names the file
        raise CheckpointError(str(error)) from error
    rows = getattr(getattr(model, "embedding", None), "num_embeddings", None)
    if rows is not None and tokenizer.vocab_size > rows:
        raise CheckpointError(
            f"{folder / TOKENIZER} has {tokenizer.vocab_size} pieces but {folder / CONFIG} gives the model "
            f"vocab_size={rows}: the tokenizer does not belong to these weights"
        )
    model = model.to(device).eval()
    return pipeline_class(model, tokenizer, device=device, source=source or str(folder), folder=folder)


# -- helpers -------------------------------------------------------------------------------------------------------


def _check_kind(kind: str) -> None:
    if kind not in REPO_ENV:
        raise ValueError(f"unknown model kind {kind!r}: expected one of {', '.join(map(repr, KINDS))}")


def _offline() -> bool:
    """HF_HUB_OFFLINE read now: huggingface_hub reads it once, at import, into constants.HF_HUB_OFFLINE."""
    return constants.is_offline_mode() or os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in _TRUE


def _local(kind: str, checkpoints: str | Path | None, why: str, detail: str | None = None,
           level: int = logging.WARNING) -> tuple[Path, str]:
    """The local fallback and its one log line: `why` goes into the source string, `detail` (or `why`) into the log."""
    folder = Path(checkpoints if checkpoints is not None else CHECKPOINTS) / kind
    logger.log(level, "%s: %s; loading local checkpoints/%s", kind, detail or why, kind)
    if not folder.is_dir():
        raise FileNotFoundError(f"no {kind} checkpoint: {detail or why}, and the local folder {folder} does not exist")
    return folder, f"{LOCAL_SOURCE}{kind} ({why})"


def _cached_snapshot(repo_id: str, revision: str | None) -> Path | None:
    """The complete cached snapshot of repo_id@revision, without any request, or None."""
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILES, local_files_only=True))
    except (LocalEntryNotFoundError, OSError):
        return None
    if not all((folder / name).is_file() for name in REQUIRED_FILES):
        return None
    return folder


def _check_repo_files(files: list[str], label: str, present: set[str] | None = None) -> None:
    """Refuses a repo without safetensors weights (naming its pickles, which are never downloaded) or without
    one of the required files. `present`: what was actually downloaded, when checking a snapshot folder."""
    have = set(files) if present is None else present
    if WEIGHTS not in have:
        pickles = sorted(f for f in files if Path(f).suffix in PICKLE_SUFFIXES)
        if pickles:
            raise CheckpointError(_pickle_message(label, pickles))
    missing = [name for name in REQUIRED_FILES if name not in have]
    if missing:
        raise CheckpointError(f"{label} has no {', '.join(missing)}: a checkpoint needs {', '.join(REQUIRED_FILES)}")


def _pickle_message(where: str, pickles: list[str]) -> str:
    return (
        f"{where} holds only pickled weights ({', '.join(pickles)}) and no {WEIGHTS}: seqdemo only loads safetensors "
        f"weights, because unpickling a file can run arbitrary code. Save the model with save_pretrained(), which "
        f"writes {WEIGHTS}."
    )


def _read_config(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing: a checkpoint needs {', '.join(REQUIRED_FILES)}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} cannot be read: {error}") from error
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path} is not valid JSON (truncated or corrupt?): {error}") from error
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} must hold a JSON object, not {type(config).__name__}")
    return config


def _unreachable(error: Exception) -> bool:
    """A failure that says nothing about the repo itself: no connection, a timeout, offline mode, the Hub down."""
    if isinstance(error, (RepositoryNotFoundError, RevisionNotFoundError)):
        return False
    if isinstance(error, HfHubHTTPError):
        return error.response is None or error.response.status_code >= 500 or error.response.status_code == 429
    return True


def _hub_failure(error: Exception, repo_id: str, revision: str | None) -> str:
    """Why the Hub could not serve the checkpoint, in a few words."""
    if isinstance(error, RevisionNotFoundError):
        return f"revision {revision or 'main'} not found in {repo_id}"
    if isinstance(error, GatedRepoError):
        return f"repo {repo_id} is gated on the Hub and this token has no access"
    if isinstance(error, RepositoryNotFoundError):
        return f"repo {repo_id} not found on the Hub"
    if isinstance(error, OfflineModeIsEnabled):
        return "HF_HUB_OFFLINE=1"
    if isinstance(error, HfHubHTTPError) and error.response is not None and not _unreachable(error):
        return f"Hub refused {repo_id}: HTTP {error.response.status_code}"
    cause = error
    if isinstance(error, LocalEntryNotFoundError) and error.__cause__ is not None:
        cause = error.__cause__
    return f"Hub unreachable: {type(cause).__name__}: {_first_line(cause)}"


def _url(error: httpx2.RequestError) -> str:
    try:
        return str(error.request.url)
    except RuntimeError:  # no request attached to the error
        return ""


def _first_line(error: BaseException, limit: int = 200) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(error: BaseException, limit: int) -> str:
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
