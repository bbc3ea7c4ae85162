"""Test session setup: 8 simulated CPU devices, so sharded code paths run on any machine.

The device count must be set before JAX first touches its backend, hence at import of this file,
which pytest loads before any test module. ``tests/`` is on ``sys.path`` through pytest's rootdir
insertion (``rootdir/tests`` has no ``__init__.py``), so ``from hf_tiny import ...`` works.
"""

import jax

jax.config.update("jax_num_cpu_devices", 8)
