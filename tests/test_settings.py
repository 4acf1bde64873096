"""seqdemo.web.settings.Settings: every SEQDEMO_* variable read once, and a bad one named with what it accepts."""

from __future__ import annotations

import pytest

from seqdemo.web.settings import QUEUE_SIZE, Settings, SettingsError


def test_unset_variables_give_the_defaults():
    settings = Settings.from_env({})
    assert (settings.concurrency, settings.queue_size, settings.device) == (None, QUEUE_SIZE, None)
    assert (settings.sentiment_repo, settings.nextword_repo, settings.hub_deadline) == (None, None, 30.0)


def test_good_values_are_read():
    settings = Settings.from_env({
        "SEQDEMO_CONCURRENCY": " 3 ", "SEQDEMO_QUEUE_SIZE": "50", "SEQDEMO_DEVICE": "cuda:1",
        "SEQDEMO_SENTIMENT_REPO": "owner/name@v1.0", "SEQDEMO_NEXTWORD_REPO": "owner/lm", "SEQDEMO_HUB_DEADLINE": "2.5",
    })
    assert (settings.concurrency, settings.model_concurrency, settings.queue_size) == (3, 3, 50)
    assert (settings.device, settings.repo("sentiment"), settings.repo("nextword")) == ("cuda:1", "owner/name@v1.0",
                                                                                      "owner/lm")
    assert settings.hub_deadline == 2.5


@pytest.mark.parametrize("name, value, says", [
    ("SEQDEMO_CONCURRENCY", "0", "SEQDEMO_CONCURRENCY must be a whole number from 1 to 64"),
    ("SEQDEMO_CONCURRENCY", "four", "SEQDEMO_CONCURRENCY must be a whole number from 1 to 64"),
    ("SEQDEMO_CONCURRENCY", "2.5", "SEQDEMO_CONCURRENCY must be a whole number from 1 to 64"),
    ("SEQDEMO_CONCURRENCY", "65", "SEQDEMO_CONCURRENCY must be a whole number from 1 to 64"),
    ("SEQDEMO_QUEUE_SIZE", "-1", "SEQDEMO_QUEUE_SIZE must be a whole number from 1 to 100000"),
    ("SEQDEMO_DEVICE", "gpu", "SEQDEMO_DEVICE must be one of cpu, cuda, mps"),
    ("SEQDEMO_SENTIMENT_REPO", "no-slash", "SEQDEMO_SENTIMENT_REPO must be a Hub repo"),
    ("SEQDEMO_NEXTWORD_REPO", "a/b/c", "SEQDEMO_NEXTWORD_REPO must be a Hub repo"),
    ("SEQDEMO_HUB_DEADLINE", "0", "SEQDEMO_HUB_DEADLINE must be a number of seconds above 0"),
    ("SEQDEMO_HUB_DEADLINE", "nan", "SEQDEMO_HUB_DEADLINE must be a number of seconds above 0"),
])
def test_a_bad_value_names_the_variable_and_the_accepted_range(name, value, says):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({name: value})
    assert str(raised.value).startswith(says)
    assert f"not {value!r}" in str(raised.value)


def test_build_demo_takes_its_limit_and_queue_from_the_settings(pipelines):
    import app
    from seqdemo.web import serving

    demo = app.build_demo(*pipelines, settings=Settings(concurrency=2, queue_size=77))
    limits = {f.concurrency_limit for f in demo.fns.values() if f.concurrency_id == serving.MODEL_QUEUE}
    assert limits == {2} and demo._queue.max_size == 77


def test_every_seqdemo_variable_the_package_reads_is_a_setting():
    """A SEQDEMO_* name read anywhere in the package appears in the settings' documentation."""
    import re
    from pathlib import Path

    import seqdemo
    import seqdemo.web.settings as settings_module

    root = Path(seqdemo.__file__).parent
    read = {name for path in root.rglob("*.py") if "experiments" not in path.parts
            for name in re.findall(r"SEQDEMO_[A-Z_]+", path.read_text())}
    assert read and read <= set(re.findall(r"SEQDEMO_[A-Z_]+", settings_module.__doc__))
