"""Atomic outputs: a crash leaves the previous file or directory, or nothing; never half of one."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from zett_jax.errors import ZettError


class atomic_directory:
    """Build a directory under a temporary name beside ``target`` and rename it into place on success.

    A crash leaves either the previous directory or nothing at ``target``; never a half-written one.
    """

    def __init__(self, target: str | os.PathLike, overwrite: bool = False):
        self.target = Path(target)
        self.overwrite = overwrite

    def __enter__(self) -> Path:
        if self.target.exists() and not self.overwrite and any(self.target.iterdir()):
            raise ZettError(f"{self.target}: exists and is not empty; pass --overwrite to replace it")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.partial-", dir=self.target.parent))
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        # mkdtemp makes a private (0700) directory; give the result ordinary permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o777 & ~umask)
        for f in self.tmp.iterdir():
            os.chmod(f, 0o666 & ~umask)
        old = None
        if self.target.exists():
            old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
            os.replace(self.target, old)
        os.replace(self.tmp, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def looks_like_hub_id(spec: str) -> bool:
    """``org/name`` that is not a local path: what we hand to the Hugging Face hub."""
    spec = str(spec)
    return spec.count("/") == 1 and not spec.startswith((".", "/", "~")) and not Path(spec).expanduser().exists()
