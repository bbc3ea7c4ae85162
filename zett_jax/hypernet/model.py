"""The tokenizer hypernetwork H_phi (ZeTT, Minixhofer, Ponti & Vulić 2024, §3.1 and Figure 2).

For a target token t, the base tokenizer decomposes t's text into base pieces ``T_a(t) = (a_1 .. a_S)``.
The hypernetwork embeds the pieces with the *frozen* base embedding table E_a (input and output tables
concatenated when the model does not tie them, the reference's ``hn_embed_using_source_embeddings``),
runs them through a small transformer encoder, and reads the new embeddings ``E_b[t]`` off the first
position:  ``E_b[t] = H_phi(E_a[T_a(t)])``.

Pieces:
- ids past the base table (added tokens without a row) take learned fallback embeddings;
- the input rescaler maps the base table to zero mean and std ``init_std`` per dimension, so the
  encoder sees well-conditioned inputs whatever the base model's scale;
- the output rescalers are initialised (:func:`init_rescalers`) so that predictions start with the per-
  dimension mean and std of the base table (reference ``Rescaler.scale_to``, ``zett/utils.py``).

Shape letters: V target tokens, S pieces per token, W base table rows, C base features (D or 2D),
H hypernetwork width, I its MLP width, N heads, K head width, D model width.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from zett_jax.errors import ZettError

_MASKED = -1e9  # finite: a token without pieces (a special) attends uniformly instead of producing NaN


@dataclasses.dataclass(frozen=True)
class HypernetConfig:
    """The encoder's shape. ``None`` widths default to the base model's width (the paper's choice:
    hidden size = the base model's, 3 layers, §4 "Hypernetwork architecture")."""

    num_layers: int = 3
    hidden_size: int | None = None
    intermediate_size: int | None = None  # default 2 x hidden (the reference's Mistral config: 8192 / 4096)
    num_heads: int = 4
    max_pieces: int = 7  # reference hn_surface_maxlen=7; longer decompositions are truncated
    readout: str = "first"  # "first" position (the reference) or "mean" over the pieces
    init_std: float = 0.02

    def __post_init__(self):
        if self.readout not in READOUTS:
            raise ZettError(f"hypernet.readout must be one of {sorted(READOUTS)}, got {self.readout!r}")
        if self.num_layers < 0 or self.max_pieces < 1 or self.num_heads < 1:
            raise ZettError("hypernet: num_layers >= 0, max_pieces >= 1 and num_heads >= 1 are required")
        if self.hidden_size is not None and self.hidden_size % self.num_heads:
            raise ZettError(f"hypernet.hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")

    def width(self, model_dim: int) -> int:
        return self.hidden_size or model_dim

    def mlp_width(self, model_dim: int) -> int:
        return self.intermediate_size or 2 * self.width(model_dim)


def _first(h_VxSxH: jax.Array, mask_VxS: jax.Array) -> jax.Array:
    return h_VxSxH[:, 0]


def _mean(h_VxSxH: jax.Array, mask_VxS: jax.Array) -> jax.Array:
    w_VxS = mask_VxS.astype(h_VxSxH.dtype)
    return jnp.einsum("vsh,vs->vh", h_VxSxH, w_VxS) / jnp.maximum(w_VxS.sum(-1, keepdims=True), 1.0)


READOUTS = {"first": _first, "mean": _mean}


class Projector(nnx.Module):
    """The reference's ``ProjectorBlock``: ``LayerNorm(x + gelu(W2 gelu(W1 x)))``."""

    def __init__(self, width: int, mlp_width: int, *, rngs: nnx.Rngs):
        self.up = nnx.Linear(width, mlp_width, rngs=rngs)
        self.down = nnx.Linear(mlp_width, width, rngs=rngs)
        self.norm = nnx.LayerNorm(width, rngs=rngs)

    def __call__(self, x_VxH: jax.Array) -> jax.Array:
        return self.norm(x_VxH + jax.nn.gelu(self.down(jax.nn.gelu(self.up(x_VxH)))))


class EncoderBlock(nnx.Module):
    """Pre-norm transformer encoder block over a token's pieces (bidirectional, padding masked)."""

    def __init__(self, width: int, mlp_width: int, num_heads: int, *, rngs: nnx.Rngs):
        self.num_heads = num_heads
        self.attn_norm = nnx.LayerNorm(width, rngs=rngs)
        self.qkv = nnx.Linear(width, 3 * width, rngs=rngs)
        self.attn_out = nnx.Linear(width, width, rngs=rngs)
        self.mlp_norm = nnx.LayerNorm(width, rngs=rngs)
        self.mlp_up = nnx.Linear(width, mlp_width, rngs=rngs)
        self.mlp_down = nnx.Linear(mlp_width, width, rngs=rngs)

    def __call__(self, x_VxSxH: jax.Array, mask_VxS: jax.Array) -> jax.Array:
        V, S, H = x_VxSxH.shape
        N = self.num_heads
        qkv_VxSx3xNxK = self.qkv(self.attn_norm(x_VxSxH)).reshape(V, S, 3, N, H // N)
        q_VxSxNxK, k_VxSxNxK, v_VxSxNxK = (qkv_VxSx3xNxK[:, :, i] for i in range(3))
        scores_VxNxSxS = jnp.einsum("vsnk,vtnk->vnst", q_VxSxNxK, k_VxSxNxK) / jnp.sqrt(H // N).astype(x_VxSxH.dtype)
        scores_VxNxSxS = jnp.where(mask_VxS[:, None, None, :], scores_VxNxSxS, _MASKED)
        att_VxNxSxS = jax.nn.softmax(scores_VxNxSxS, axis=-1)
        o_VxSxH = jnp.einsum("vnst,vtnk->vsnk", att_VxNxSxS, v_VxSxNxK).reshape(V, S, H)
        x_VxSxH = x_VxSxH + self.attn_out(o_VxSxH)
        return x_VxSxH + self.mlp_down(jax.nn.gelu(self.mlp_up(self.mlp_norm(x_VxSxH))))


class Hypernet(nnx.Module):
    """``hypernet(source_WxC, pieces_VxS, mask_VxS) -> (input_VxD, output_VxD | None)``.

    ``source_WxC`` is the frozen base table (``[in | out]`` when untied): an argument, not a parameter,
    so it is neither differentiated nor checkpointed with the hypernetwork.
    """

    def __init__(
        self, cfg: HypernetConfig, *, model_dim: int, base_rows: int, tied: bool, num_fallback: int = 1,
        rngs: nnx.Rngs,
    ):
        H, I, D = cfg.width(model_dim), cfg.mlp_width(model_dim), model_dim
        C = D if tied else 2 * D
        self.cfg = cfg
        self.base_rows = base_rows
        self.tied = tied
        normal = jax.nn.initializers.normal(cfg.init_std)
        self.in_scale = nnx.Param(jnp.ones((C,)))
        self.in_shift = nnx.Param(jnp.zeros((C,)))
        self.fallback_FxC = nnx.Param(normal(rngs.params(), (max(num_fallback, 1), C)))
        self.positions_SxH = nnx.Param(normal(rngs.params(), (cfg.max_pieces, H)))
        self.input_proj = nnx.Linear(C, H, rngs=rngs)
        self.input_block = Projector(H, I, rngs=rngs)
        self.layers = nnx.List([EncoderBlock(H, I, cfg.num_heads, rngs=rngs) for _ in range(cfg.num_layers)])
        self.final_norm = nnx.LayerNorm(H, rngs=rngs)
        self.head_in = nnx.Sequential(Projector(H, I, rngs=rngs), nnx.Linear(H, D, rngs=rngs))
        self.out_scale_in = nnx.Param(jnp.ones((D,)))
        self.out_shift_in = nnx.Param(jnp.zeros((D,)))
        if not tied:
            self.head_out = nnx.Sequential(Projector(H, I, rngs=rngs), nnx.Linear(H, D, rngs=rngs))
            self.out_scale_out = nnx.Param(jnp.ones((D,)))
            self.out_shift_out = nnx.Param(jnp.zeros((D,)))

    def encode(self, source_WxC: jax.Array, pieces_VxS: jax.Array, mask_VxS: jax.Array) -> jax.Array:
        """The readout ``[V, H]`` of the encoder over each token's pieces."""
        if source_WxC.shape[0] != self.base_rows:
            raise ZettError(
                f"hypernetwork made for a base table of {self.base_rows} rows, got {source_WxC.shape[0]}"
            )
        W, S = self.base_rows, pieces_VxS.shape[1]
        fallback_VxS = pieces_VxS >= W
        base_VxSxC = jnp.take(source_WxC, jnp.minimum(pieces_VxS, W - 1), axis=0)
        base_VxSxC = base_VxSxC * self.in_scale[...] + self.in_shift[...]
        extra_VxS = jnp.clip(pieces_VxS - W, 0, self.fallback_FxC.shape[0] - 1)
        x_VxSxC = jnp.where(fallback_VxS[..., None], jnp.take(self.fallback_FxC[...], extra_VxS, axis=0), base_VxSxC)
        h_VxSxH = self.input_block(self.input_proj(x_VxSxC)) + self.positions_SxH[:S]
        for block in self.layers:
            h_VxSxH = block(h_VxSxH, mask_VxS)
        return READOUTS[self.cfg.readout](self.final_norm(h_VxSxH), mask_VxS)

    def __call__(
        self, source_WxC: jax.Array, pieces_VxS: jax.Array, mask_VxS: jax.Array
    ) -> tuple[jax.Array, jax.Array | None]:
        h_VxH = self.encode(source_WxC, pieces_VxS, mask_VxS)
        in_VxD = self.head_in(h_VxH) * self.out_scale_in[...] + self.out_shift_in[...]
        if self.tied:
            return in_VxD, None
        return in_VxD, self.head_out(h_VxH) * self.out_scale_out[...] + self.out_shift_out[...]


def source_table(input_WxD: jax.Array, output_WxD: jax.Array | None) -> jax.Array:
    """The hypernetwork's piece table: the input table, with the output table beside it when untied."""
    return input_WxD if output_WxD is None else jnp.concatenate([input_WxD, output_WxD], axis=-1)


def identity_pieces(ids_V: jax.Array, max_pieces: int) -> tuple[jax.Array, jax.Array]:
    """Each base token as its own single piece (the warm-up's input, reference ``hn_surface_maxlen=1``)."""
    V = ids_V.shape[0]
    pieces_VxS = jnp.zeros((V, max_pieces), jnp.int32).at[:, 0].set(ids_V)
    mask_VxS = jnp.zeros((V, max_pieces), bool).at[:, 0].set(True)
    return pieces_VxS, mask_VxS


def _affine_to(x_NxD: jax.Array, target_NxD: jax.Array, eps: float = 1e-8) -> tuple[jax.Array, jax.Array]:
    """Per-dimension (scale, shift) taking ``x``'s mean/std to ``target``'s (reference ``scale_to``)."""
    scale_D = target_NxD.std(0) / (x_NxD.std(0) + eps)
    return scale_D, target_NxD.mean(0) - (x_NxD * scale_D).mean(0)


def init_rescalers(hypernet: Hypernet, input_WxD: jax.Array, output_WxD: jax.Array | None, sample: int = 4096) -> None:
    """Set the rescalers in place from the base table's statistics (see the module docstring).

    The output rescalers are fitted on the hypernetwork's own predictions for (up to ``sample``, evenly
    spaced) base tokens given as single pieces, so it starts out predicting at the base table's scale.
    """
    source_WxC = source_table(input_WxD, output_WxD)
    W = source_WxC.shape[0]
    std_C = jnp.full((source_WxC.shape[1],), hypernet.cfg.init_std)
    scale_C = std_C / (source_WxC.std(0) + 1e-8)
    hypernet.in_scale[...] = scale_C
    hypernet.in_shift[...] = -source_WxC.mean(0) * scale_C
    ids_N = jnp.linspace(0, W - 1, min(sample, W)).astype(jnp.int32)
    pieces_NxS, mask_NxS = identity_pieces(ids_N, hypernet.cfg.max_pieces)
    pred_in_NxD, pred_out_NxD = hypernet(source_WxC, pieces_NxS, mask_NxS)
    # The predictions above went through the still-identity output rescalers, so these are absolute.
    hypernet.out_scale_in[...], hypernet.out_shift_in[...] = _affine_to(pred_in_NxD, input_WxD[ids_N])
    if output_WxD is not None:
        hypernet.out_scale_out[...], hypernet.out_shift_out[...] = _affine_to(pred_out_NxD, output_WxD[ids_N])
