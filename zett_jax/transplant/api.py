"""Training-free tokenizer transplantation: give a model a new tokenizer without training.

    from zett_jax.convert.load import load_model
    from zett_jax.tokenizers.load import load_tokenizer
    from zett_jax.transplant.api import transplant

    model = load_model("smollm2-135m")
    donor = load_model("gemma3-270m")
    moved = transplant(model, donor.tokenizer, "omp", donor=donor, k=64)

Methods (`METHODS`, chosen by name when the call is built, never inside traced code):
  zero, mean, fvt, focus, tokenadapt  (donor-free; `zett_jax.transplant.heuristics`)
  omp                                 (needs a donor that uses the target tokenizer; `omp_transplant`)
Every method copies the rows of shared tokens exactly and builds rows for the new ones.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable

from zett_jax.convert.load import LoadedModel
from zett_jax.errors import ZettError
from zett_jax.models.decoder import Embeddings
from zett_jax.tokenizers.core import LoadedTokenizer
from zett_jax.transplant import heuristics
from zett_jax.transplant.omp_transplant import omp
from zett_jax.transplant.plan import TokenPlan, TransplantOptions, check_source, plan_tokens

log = logging.getLogger(__name__)

Method = Callable[..., Embeddings]  # (source, plan, options, donor) -> Embeddings

METHODS: dict[str, Method] = {
    "zero": heuristics.zero,
    "mean": heuristics.mean,
    "fvt": heuristics.fvt,
    "focus": heuristics.focus,
    "tokenadapt": heuristics.tokenadapt,
    "omp": omp,
}
DONOR_METHODS = frozenset({"omp"})


def transplant_embeddings(
    source: Embeddings,
    source_tokenizer: LoadedTokenizer,
    target_tokenizer: LoadedTokenizer,
    method: str,
    *,
    donor: tuple[Embeddings, LoadedTokenizer] | None = None,
    options: TransplantOptions = TransplantOptions(),
    plan: TokenPlan | None = None,
) -> Embeddings:
    """Tables for ``target_tokenizer`` from the source tables (tied stays tied unless ``options.untie``).

    ``plan`` (overlap + decomposition) may be passed in to share it between several methods.
    """
    if method not in METHODS:
        raise ZettError(f"unknown transplant method {method!r} (expected one of {', '.join(METHODS)})")
    if donor is not None and method not in DONOR_METHODS:
        log.info("%s does not use a donor; ignoring it", method)
        donor = None
    check_source(source, source_tokenizer)
    if plan is None:
        plan = plan_tokens(source_tokenizer, target_tokenizer)
    elif plan.source is not source_tokenizer or plan.target is not target_tokenizer:
        raise ZettError("transplant: the given plan was made for other tokenizers")
    return METHODS[method](source, plan, options, donor)


def transplant(
    source: LoadedModel,
    target_tokenizer: LoadedTokenizer,
    method: str,
    donor: LoadedModel | None = None,
    k: int = 64,
    untie: bool = False,
    options: TransplantOptions | None = None,
    plan: TokenPlan | None = None,
) -> LoadedModel:
    """``source`` with new embedding tables for ``target_tokenizer`` (see the module docstring).

    ``k`` and ``untie`` override the fields of ``options``. The transformer body is shared, not copied.
    """
    options = dataclasses.replace(options or TransplantOptions(), k=k, untie=untie)
    donor_tables = None if donor is None else (donor.embeddings, donor.tokenizer)
    tables = transplant_embeddings(
        source.embeddings, source.tokenizer, target_tokenizer, method,
        donor=donor_tables, options=options, plan=plan,
    )
    return source.with_embeddings(tables, target_tokenizer)
