"""The main job on the built-in default: move a real model to a real new tokenizer with several
training-free methods and print bits per byte before and after, on real text.

Default: SmolLM2-135M moved to the Llama-3 tokenizer (`llama-bpe`, 128k tokens, 31% shared), on the
first 8 kB of English Wikipedia and of German fortunes. A few minutes on a laptop CPU. With ``donor``
set (a model that already uses the target tokenizer), OMP joins the table.
"""

from __future__ import annotations

import dataclasses
import time

import jax

from zett_jax.convert.load import LoadedModel, load_model
from zett_jax.data.text import read_documents, resolve_data_path, take_prefix
from zett_jax.eval.bpb import bits_per_byte
from zett_jax.tokenizers.load import resolve_tokenizer
from zett_jax.transplant.api import DONOR_METHODS, transplant
from zett_jax.transplant.plan import plan_tokens


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    model: str = "smollm2-135m"
    tokenizer: str = "llama-bpe"
    donor: str | None = None
    methods: tuple[str, ...] = ("zero", "mean", "fvt", "focus", "tokenadapt")
    corpora: tuple[str, ...] = ("wiki-en", "fortunes-de")
    max_bytes: int = 8000
    max_length: int = 512
    batch_size: int = 8
    k: int = 64


def run(cfg: DemoConfig, echo=print) -> list[dict]:
    texts = {c: take_prefix(read_documents(resolve_data_path(c)), max_bytes=cfg.max_bytes, cut=True) for c in cfg.corpora}
    source = load_model(cfg.model)
    donor = load_model(cfg.donor) if cfg.donor else None
    target = donor.tokenizer if donor is not None else resolve_tokenizer(cfg.tokenizer)

    def evaluate(loaded: LoadedModel) -> dict[str, float]:
        return {
            c: bits_per_byte(loaded, docs, max_length=cfg.max_length, batch_size=cfg.batch_size, progress=False).bits_per_byte
            for c, docs in texts.items()
        }

    rows = [{"method": f"original ({cfg.model} tokenizer)", "seconds": 0.0, **evaluate(source)}]
    plan = plan_tokens(source.tokenizer, target)
    echo(
        f"{cfg.model} -> {cfg.donor or cfg.tokenizer} tokenizer: {target.vocab_size:,} tokens, "
        f"{plan.overlap.num_shared:,} shared with the source"
    )
    methods = [m for m in cfg.methods if m not in DONOR_METHODS or donor is not None]
    if donor is not None and "omp" not in methods:
        methods.append("omp")
    for method in methods:
        start = time.perf_counter()
        moved = transplant(source, target, method, donor=donor, k=cfg.k, plan=plan)
        jax.block_until_ready(moved.embeddings)
        seconds = time.perf_counter() - start
        rows.append({"method": method, "seconds": seconds, **evaluate(moved)})
        echo(f"  {method}: done in {seconds:.1f} s")
    echo(format_table(rows, cfg))
    return rows


def format_table(rows: list[dict], cfg: DemoConfig) -> str:
    head = "| method | transplant s | " + " | ".join(f"{c} bits/byte" for c in cfg.corpora) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(cfg.corpora)]
    base = rows[0]
    for r in rows:
        cells = []
        for c in cfg.corpora:
            rel = "" if r is base else f" ({r[c] / base[c] - 1:+.0%})"
            cells.append(f"{r[c]:.3f}{rel}")
        seconds = "" if r is base else f"{r['seconds']:.1f}"
        lines.append(f"| {r['method']} | {seconds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
