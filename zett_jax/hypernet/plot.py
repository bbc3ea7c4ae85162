"""Loss curves of a hypernetwork run, drawn from its ``metrics.jsonl`` into ``loss_curves.png``.

Panels: the warm-up phase's distance to the base table; the LM phase's language-modelling loss (over the
step's subsampled vocabulary when ``data.token_subsample`` is set) and auxiliary loss; gradient norm and
learning rate. Raw values are drawn thin, an exponential moving average thick. The PNG is written to a
temporary name and renamed, so a crash never leaves half an image.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from zett_jax.errors import ZettError

PLOT = "loss_curves.png"


def read_metrics(path: str | Path) -> list[dict]:
    """The rows of a metrics log; for a step logged twice (a resumed run), the last row wins."""
    path = Path(path)
    if not path.is_file():
        raise ZettError(f"{path}: no metrics log")
    rows: dict[int, dict] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows[int(row["step"])] = row
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise ZettError(f"{path}:{n}: expected a JSON object with a 'step' field, got {line[:80]!r}") from None
    return [rows[s] for s in sorted(rows)]


def ema(values: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    out = np.empty_like(values, dtype=np.float64)
    acc = values[0] if len(values) else 0.0
    for i, v in enumerate(values):
        acc = alpha * v + (1 - alpha) * acc
        out[i] = acc
    return out


def plot_run(run_dir: str | Path) -> Path:
    """Draw ``run_dir/metrics.jsonl`` into ``run_dir/loss_curves.png``; returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    rows = read_metrics(run_dir / "metrics.jsonl")
    if not rows:
        raise ZettError(f"{run_dir / 'metrics.jsonl'}: empty")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))

    def curve(ax, phase, key, label, color):
        pts = [(r["step"], r[key]) for r in rows if r["phase"] == phase]
        if not pts:
            return
        x, y = (np.array(v, dtype=np.float64) for v in zip(*pts))
        ax.plot(x, y, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(x, ema(y), color=color, linewidth=2, label=label)

    curve(axes[0], "warmup", "aux", "warm-up: distance to base rows", "tab:purple")
    axes[0].set_yscale("log")
    curve(axes[1], "lm", "lm", "LM loss (nats / token)", "tab:blue")
    curve(axes[1], "lm", "aux", "auxiliary loss", "tab:orange")
    steps = np.array([r["step"] for r in rows])
    axes[2].plot(steps, [r["grad_norm"] for r in rows], color="tab:gray", linewidth=0.8, label="grad norm")
    axes[2].set_yscale("log")
    lr = axes[2].twinx()
    lr.plot(steps, [r["lr"] for r in rows], color="tab:green", label="learning rate")
    for ax, title in zip(axes, ("warm-up phase", "LM phase", "optimiser")):
        ax.set_xlabel("step")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right")
    lr.legend(loc="center right")
    fig.suptitle(f"{run_dir.name}: {len(rows)} steps")
    fig.tight_layout()
    out = run_dir / PLOT
    fd, tmp = tempfile.mkstemp(prefix=f".{PLOT}.", suffix=".png", dir=run_dir)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.chmod(tmp, 0o644)  # mkstemp's file is private; the figure is not
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
