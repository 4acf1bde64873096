"""A git ref checked out into a temporary worktree, so a bench can run it beside the working tree in one run."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def checked_out(ref: str | None):
    """The folder of `ref` checked out under /tmp (None when ref is None), removed again on exit."""
    if not ref:
        yield None
        return
    tree = Path(tempfile.mkdtemp(prefix="seqdemo-ref-")) / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), ref],
                   check=True, capture_output=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
        shutil.rmtree(tree.parent, ignore_errors=True)
