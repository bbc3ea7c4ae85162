"""Greedy decoding, enough to check that an imported model behaves (it completes "The capital of France is").

No KV cache: each step re-runs the jitted forward on a fixed-size buffer, so there is one compiled
shape per call and the cost is quadratic in the (short) length. Sampling and caching belong to a
serving library, not here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from zett_jax.convert.load import LoadedModel


def greedy(loaded: LoadedModel, prompt: str, max_new_tokens: int = 16, add_prefix: bool = True) -> str:
    ids = loaded.tokenizer.encode_batch([prompt])[0]
    if add_prefix:
        ids = [loaded.tokenizer.prefix_id()] + ids
    n_prompt = len(ids)
    total = n_prompt + max_new_tokens
    graphdef, state = nnx.split(loaded.model)

    @jax.jit
    def next_token(state, embeddings, tokens_1xT, last):
        model = nnx.merge(graphdef, state)
        h_1xTxD = model.hidden(embeddings, tokens_1xT)
        h_1x1xD = jax.lax.dynamic_slice_in_dim(h_1xTxD, last, 1, axis=1)
        return jnp.argmax(model.logits(embeddings, h_1x1xD)[0, 0])

    buf = np.zeros((1, total), np.int32)
    buf[0, :n_prompt] = ids
    eos = loaded.tokenizer.eos_id
    for pos in range(n_prompt, total):
        tok = int(next_token(state, loaded.embeddings, buf, pos - 1))
        buf[0, pos] = tok
        if tok == eos:
            total = pos
            break
    new_ids = buf[0, n_prompt:total].tolist()
    return loaded.tokenizer.tokenizer.decode(new_ids, skip_special_tokens=True)
