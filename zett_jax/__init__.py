"""zett_jax: free language models from their tokenizers."""

from zett_jax.errors import ZettError

__all__ = ["ZettError"]
__version__ = "0.1.0"
