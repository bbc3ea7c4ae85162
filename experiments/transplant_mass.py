"""Where the bits go after a transplant: probability mass on new rows, loss on new vs shared tokens.

With a tied table every new row is also an output row. This diagnostic runs one transplanted model over
a small text and reports, per method: the share of the text's target tokens that are new, the mean
probability mass the model puts on ALL new tokens at a position, and the mean loss (nats) at positions
whose correct token is new vs shared.

    .venv/bin/python experiments/transplant_mass.py --target gpt-2 --corpora wiki-en fortunes-de
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from zett_jax import assets
from zett_jax.convert.load import load_model
from zett_jax.data.text import read_documents, resolve_data_path
from zett_jax.tokenizers.load import load_tokenizer
from zett_jax.transplant.api import transplant
from zett_jax.transplant.plan import plan_tokens

sys.path.insert(0, str(Path(__file__).parent))
from transplant_smollm2 import prefix_documents  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--target", default="gpt-2")
    p.add_argument("--methods", nargs="+", default=["zero", "mean", "fvt", "tokenadapt"])
    p.add_argument("--corpora", nargs="+", default=["wiki-en", "fortunes-de"])
    p.add_argument("--max-bytes", type=int, default=4000)
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--out", default="experiments/results/transplant_mass")
    args = p.parse_args(argv)

    source = load_model(args.model)
    target = load_tokenizer(assets.fetch(args.target))
    plan = plan_tokens(source.tokenizer, target)
    new_V = np.asarray(~plan.overlap.shared_V)
    rows = []
    for method in args.methods:
        moved = transplant(source, target, method, plan=plan)

        @jax.jit
        def stats(embeddings, tokens_1xT):
            logp_TxV = jax.nn.log_softmax(moved.model(embeddings, tokens_1xT)[0, :-1], axis=-1)
            mass_T = jnp.exp(jax.nn.logsumexp(jnp.where(jnp.asarray(new_V), logp_TxV, -jnp.inf), axis=-1))
            nll_T = -jnp.take_along_axis(logp_TxV, tokens_1xT[0, 1:, None], axis=-1)[:, 0]
            return mass_T, nll_T

        for corpus in args.corpora:
            text = "\n\n".join(prefix_documents(read_documents(resolve_data_path(corpus)), args.max_bytes))
            ids = target.encode_batch([text])[0]
            mass, nll, is_new = [], [], []
            for start in range(0, len(ids), args.length - 1):
                chunk = [target.prefix_id()] + ids[start : start + args.length - 1]
                chunk = chunk + [0] * (args.length - len(chunk))  # padding at the end is never scored
                n = len(ids[start : start + args.length - 1])
                m, l = stats(moved.embeddings, jnp.asarray([chunk], jnp.int32))
                mass.append(np.asarray(m)[:n])
                nll.append(np.asarray(l)[:n])
                is_new.append(new_V[np.asarray(ids[start : start + n])])
            mass, nll, is_new = map(np.concatenate, (mass, nll, is_new))
            rows.append({
                "method": method, "corpus": corpus, "new_token_share": float(is_new.mean()),
                "mass_on_new": float(mass.mean()), "nll_new": float(nll[is_new].mean()) if is_new.any() else None,
                "nll_shared": float(nll[~is_new].mean()), "tokens": int(is_new.size),
            })
            print(rows[-1], flush=True)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    lines = [
        f"# Probability mass on new rows: {args.model} -> {args.target} tokenizer",
        "",
        f"Command: `python experiments/transplant_mass.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        f"First {args.max_bytes:,} bytes of each corpus, windows of {args.length} tokens. `mass on new` = mean "
        "over positions of the total probability of all new (non-shared) target tokens; losses in nats per token.",
        "",
        "| method | corpus | new-token share of the text | mass on new | loss at new tokens | loss at shared tokens |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        nll_new = f"{r['nll_new']:.2f}" if r["nll_new"] is not None else "-"
        lines.append(f"| {r['method']} | {r['corpus']} | {r['new_token_share']:.1%} | {r['mass_on_new']:.1%} | "
                     f"{nll_new} | {r['nll_shared']:.2f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
