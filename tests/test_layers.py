"""The package's layers point down: the web page (seqdemo.web, app.py) loads nothing from seqdemo.experiments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECK = ("import sys; import {module}; "
         "loaded = sorted(m for m in sys.modules if m.startswith('seqdemo.experiments')); print(loaded)")


@pytest.mark.parametrize("module", ["seqdemo.web", "seqdemo.web.page", "app"])
def test_the_web_layer_loads_nothing_from_experiments(module):
    done = subprocess.run([sys.executable, "-c", CHECK.format(module=module)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={"GRADIO_ANALYTICS_ENABLED": "False", "PATH": "/usr/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_check_would_see_an_experiments_import():
    """The same check run on a module that does import the experiments layer reports it."""
    done = subprocess.run([sys.executable, "-c", CHECK.format(module="seqdemo.experiments.data")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert "seqdemo.experiments.data" in done.stdout.strip().splitlines()[-1]
