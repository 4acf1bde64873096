"""The server's settings: every SEQDEMO_* environment variable, read once, checked, and handed to build_demo.

    SEQDEMO_CONCURRENCY      model requests served at once (1 to 64; default: 1 on a GPU, else the CPU cores, at most 8);
                             each gets cores // concurrency torch threads (at least 1)
    SEQDEMO_QUEUE_SIZE       requests that may wait in the queue (1 to 100000; default 2000)
    SEQDEMO_DEVICE           where the models run: cpu, cuda, cuda:N, mps (default: cuda when there is one)
    SEQDEMO_SENTIMENT_REPO   Hub repo of the sentiment model, owner/name[@revision] (default: local checkpoints/)
    SEQDEMO_NEXTWORD_REPO    Hub repo of the next-word model, owner/name[@revision]
    SEQDEMO_HUB_DEADLINE     seconds the Hub may take to deliver one checkpoint (above 0; default 30)

A bad value stops the start with one sentence that names the variable and what it accepts (SettingsError).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import torch

from seqdemo.inference.hub import DEFAULT_DEADLINE, hub_deadline, parse_repo
from seqdemo.inference.pipeline import available_cores

QUEUE_SIZE = 2000  # events waiting at once, over every queue: 50 users x 20 requests fit with room to spare
CONCURRENCY_RANGE = (1, 64)
QUEUE_SIZE_RANGE = (1, 100_000)
DEVICES = ("cpu", "cuda", "mps")


class SettingsError(ValueError):
    """A SEQDEMO_* variable the server cannot use; the message names it and says what it accepts."""


def _whole(env: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    text = env.get(name, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise SettingsError(f"{name} must be a whole number from {low} to {high}, not {text[:40]!r}.")
    return value


def _seconds(env: Mapping[str, str]) -> float:
    """SEQDEMO_HUB_DEADLINE, read by the hub module that uses it (one reader), refused as a SettingsError."""
    try:
        return hub_deadline(env)
    except ValueError as error:
        raise SettingsError(str(error)) from None


def _repo(env: Mapping[str, str], name: str) -> str | None:
    text = env.get(name, "").strip()
    if not text:
        return None
    try:
        parse_repo(text)
    except ValueError:
        raise SettingsError(f"{name} must be a Hub repo as owner/name or owner/name@revision (a branch, a tag or "
                            f"a commit sha), not {text[:80]!r}.") from None
    return text


def _device(env: Mapping[str, str], name: str) -> str | None:
    text = env.get(name, "").strip()
    if not text:
        return None
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in DEVICES:
        raise SettingsError(f"{name} must be one of {', '.join(DEVICES)} (cuda:N for one GPU), not {text[:40]!r}.")
    return text


def default_concurrency() -> int:
    """1 on a GPU (one model copy, kernels already parallel), else the CPU cores this process may use (its
    affinity and cgroup quota: seqdemo.inference.pipeline.available_cores), at most 8 (the interpreter's share of
    each request overlaps). build_demo then gives each handler cores // concurrency torch threads."""
    if torch.cuda.is_available():
        return 1
    return max(1, min(available_cores(), 8))


@dataclass(frozen=True)
class Settings:
    concurrency: int | None = None  # None: default_concurrency(), decided when the page is built
    queue_size: int = QUEUE_SIZE
    device: str | None = None
    sentiment_repo: str | None = None
    nextword_repo: str | None = None
    hub_deadline: float = DEFAULT_DEADLINE

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """The settings from `env` (default: os.environ), or a SettingsError naming the first bad variable."""
        env = os.environ if env is None else env
        return cls(
            concurrency=_whole(env, "SEQDEMO_CONCURRENCY", *CONCURRENCY_RANGE),
            queue_size=_whole(env, "SEQDEMO_QUEUE_SIZE", *QUEUE_SIZE_RANGE) or QUEUE_SIZE,
            device=_device(env, "SEQDEMO_DEVICE"),
            sentiment_repo=_repo(env, "SEQDEMO_SENTIMENT_REPO"),
            nextword_repo=_repo(env, "SEQDEMO_NEXTWORD_REPO"),
            hub_deadline=_seconds(env),
        )

    @property
    def model_concurrency(self) -> int:
        return self.concurrency or default_concurrency()

    def repo(self, kind: str) -> str | None:
        return {"sentiment": self.sentiment_repo, "nextword": self.nextword_repo}[kind]
