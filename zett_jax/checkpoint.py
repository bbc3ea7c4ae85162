"""Orbax checkpoints: parameter pytrees, and train state saved together with the data position.

Restores go into an abstract target (``ShapeDtypeStruct`` leaves with shardings, see
:func:`zett_jax.sharding.abstract_sharded`), so a checkpoint written on one mesh loads onto another.
Saves are atomic by Orbax's design: a step is written under a temporary name
(``<step>.orbax-checkpoint-tmp-<n>``) and renamed when complete, so a killed save is never a "latest".
"""

from __future__ import annotations

import os
from typing import Any

import orbax.checkpoint as ocp


def save_params(path: str | os.PathLike, tree: Any, *, overwrite: bool = False) -> None:
    """Write a pytree of arrays (an ``nnx.State``, :class:`Embeddings`, ...) to a new directory ``path``."""
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(os.path.abspath(path), tree, force=overwrite)
        ckptr.wait_until_finished()


def restore_params(path: str | os.PathLike, abstract: Any) -> Any:
    """Read ``path`` into the structure, dtypes and shardings of ``abstract`` (resharding as needed)."""
    with ocp.StandardCheckpointer() as ckptr:
        return ckptr.restore(os.path.abspath(path), abstract)


class CheckpointManager:
    """Numbered checkpoints of a train state plus the data iterator's position (a JSON-able dict).

    Both are written in one step directory, so a resumed run continues on exactly the data it would have
    seen. Saves are asynchronous; :meth:`wait` or :meth:`close` (or ``with``) blocks until they land.
    """

    def __init__(self, directory: str | os.PathLike, *, keep: int = 3, save_interval_steps: int = 1):
        options = ocp.CheckpointManagerOptions(
            save_interval_steps=save_interval_steps,
            preservation_policy=ocp.checkpoint_managers.LatestN(keep),
            create=True,
        )
        self._manager = ocp.CheckpointManager(
            os.path.abspath(directory), options=options, item_names=("state", "data")
        )

    def save(self, step: int, state: Any, data_position: dict, *, force: bool = False) -> bool:
        """Save unless ``save_interval_steps`` says otherwise (``force`` saves anyway); True if saved."""
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_position))
        return self._manager.save(step, args=args, force=force)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def restore(self, abstract_state: Any, step: int | None = None) -> tuple[Any, dict]:
        """``(state, data_position)`` of ``step`` (default: the latest), the state laid out as ``abstract_state``."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"{self._manager.directory}: no complete checkpoint")
        args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore())
        restored = self._manager.restore(step, args=args)
        return restored.state, restored.data

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()

    def __enter__(self) -> "CheckpointManager":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
