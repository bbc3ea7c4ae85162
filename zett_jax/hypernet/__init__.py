"""The tokenizer hypernetwork (ZeTT, Minixhofer, Ponti & Vulić 2024): sample tokenizers, train, apply.

Data flow, one file each: ``sampler`` (UnigramLM tokenizers sampled from text) -> ``data`` (batches:
decompositions into base pieces and token ids, prefetched) -> ``model`` (the NNX hypernetwork) ->
``losses`` (LM + auxiliary loss, warm-up) -> ``train`` (resumable loop, ``train_from_config``) ->
``apply`` (``predict_embeddings`` for any tokenizer). ``config`` holds the typed experiment config.
Import the submodules directly; this package module stays import-light.
"""
