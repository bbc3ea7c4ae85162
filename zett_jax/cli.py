"""The ``zett`` command. Thin: parse, log devices, call one library function, print.

Every user error is a :class:`~zett_jax.errors.ZettError`: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

from zett_jax.errors import ZettError

def _dtype(name: str):
    import jax.numpy as jnp

    table = {"float32": jnp.float32, "fp32": jnp.float32, "bfloat16": jnp.bfloat16, "bf16": jnp.bfloat16}
    if name not in table:
        raise ZettError(f"--dtype {name!r}: expected float32 or bfloat16")
    return table[name]


def _log_devices() -> None:
    import jax

    devs = jax.devices()
    logging.info("devices: %d x %s (%s)", len(devs), devs[0].device_kind, jax.default_backend())


# --------------------------------------------------------------------------------------------- assets
def cmd_assets(args) -> int:
    from zett_jax import assets

    if args.action == "list":
        rows = assets.list_assets()
        width = max(len(a.name) for a in rows)
        for a in rows:
            print(f"{a.name:<{width}}  {a.kind:<9}  {a.description}")
        return 0
    if not args.name:
        raise ZettError(f"zett assets {args.action}: expected an asset NAME (see `zett assets list`)")
    if args.action == "fetch":
        print(assets.fetch(args.name))
        return 0
    asset = assets.ASSETS.get(args.name)
    if asset is not None and asset.kind == "tokenizer":
        from zett_jax.tokenizers.load import converted_tokenizer_dir

        print(converted_tokenizer_dir(args.name))
    else:
        print(assets.path(args.name))
    return 0


# ----------------------------------------------------------------------------------------------- eval
def _load(args):
    from zett_jax.convert.load import load_model

    _log_devices()
    return load_model(args.model, dtype=_dtype(args.dtype), param_dtype=_dtype(args.dtype))


def _documents(args):
    from zett_jax.data.text import read_documents, resolve_data_path, take_prefix

    path = resolve_data_path(args.data)
    return take_prefix(read_documents(path), args.max_documents, args.max_bytes)


def cmd_eval(args) -> int:
    from zett_jax.eval.bpb import bits_per_byte

    docs = _documents(args)
    loaded = _load(args)
    result = bits_per_byte(
        loaded, docs, max_length=args.max_length, batch_size=args.batch_size, progress=not args.no_progress
    )
    out = {"model": args.model, "data": args.data, "dtype": args.dtype, **result.as_dict()}
    if args.max_bytes is not None:
        out["max_bytes"] = args.max_bytes
    if args.max_documents is not None:
        out["max_documents"] = args.max_documents
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"{args.model} on {args.data}: {result.bits_per_byte:.4f} bits/byte "
            f"({result.tokens} tokens, {result.bytes} bytes, {result.documents} documents, "
            f"{result.tokens_per_byte:.3f} tokens/byte, {result.seconds:.1f} s)"
        )
    return 0


def cmd_generate(args) -> int:
    from zett_jax.generate import greedy

    loaded = _load(args)
    print(args.prompt + greedy(loaded, args.prompt, args.max_new_tokens))
    return 0


def _write_hf(args, loaded) -> int:
    """Write ``loaded`` as an HF directory at ``--out`` (atomically) and print its path."""
    from zett_jax.convert.hf import save_hf

    out = save_hf(
        args.out, loaded.config, loaded.model, loaded.embeddings, loaded.tokenizer,
        dtype=_dtype(args.dtype), overwrite=args.overwrite,
    )
    print(out)
    return 0


def cmd_export(args) -> int:
    return _write_hf(args, _load(args))


def cmd_transplant(args) -> int:
    """Give ``--model`` the tokenizer ``--tokenizer`` with a training-free method; write an HF directory."""
    from zett_jax.convert.load import load_model
    from zett_jax.tokenizers.load import resolve_tokenizer
    from zett_jax.transplant.api import DONOR_METHODS, METHODS, transplant

    if args.method == "hypernet":
        return _transplant_hypernet(args)
    if args.method not in METHODS:
        raise ZettError(f"--method {args.method!r}: expected one of {', '.join(METHODS)} or hypernet")
    if args.method in DONOR_METHODS and not args.donor:
        raise ZettError(f"--method {args.method} needs --donor, a model that already uses the target tokenizer")
    target = resolve_tokenizer(args.tokenizer)
    source = _load(args)
    donor = load_model(args.donor) if args.donor else None
    return _write_hf(args, transplant(source, target, args.method, donor=donor, k=args.k, untie=args.untie))


def _transplant_hypernet(args) -> int:
    """ZeTT: the embeddings of any tokenizer predicted by a trained hypernetwork (no donor, no training)."""
    from zett_jax.hypernet.apply import predict_embeddings, pretrained_hypernet
    from zett_jax.hypernet.train import restore_hypernet
    from zett_jax.tokenizers.load import resolve_tokenizer

    hypernet_dir = args.hypernet or pretrained_hypernet(args.model)
    if not hypernet_dir:
        raise ZettError(f"--method hypernet needs --hypernet DIR (a directory written by `zett hypernet train` or "
                        f"`zett hypernet export`); none ships for --model {args.model}")
    target = resolve_tokenizer(args.tokenizer)
    source = _load(args)
    hypernet, _ = restore_hypernet(hypernet_dir, source)
    tables = predict_embeddings(hypernet, source.embeddings, source.tokenizer, target, copy_shared=args.copy_shared)
    return _write_hf(args, source.with_embeddings(tables, target))


def load_experiment_config(path: str, overrides: list[str]):
    """An experiment config from a Python file with ``get_config()`` or a JSON file, plus dotted overrides."""
    import importlib.util

    from zett_jax.hypernet.config import ExperimentConfig, apply_overrides, from_dict

    file = Path(path)
    if not file.is_file():
        raise ZettError(f"--config {path}: no such file")
    if file.suffix == ".json":
        try:
            config = from_dict(json.loads(file.read_text()))
        except json.JSONDecodeError as e:
            raise ZettError(f"{file}: not valid JSON ({e})") from None
    elif file.suffix == ".py":
        spec = importlib.util.spec_from_file_location(f"zett_config_{file.stem}", file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not hasattr(module, "get_config"):
            raise ZettError(f"{file}: expected a function get_config() returning an ExperimentConfig")
        config = module.get_config()
        if not isinstance(config, ExperimentConfig):
            raise ZettError(f"{file}: get_config() returned {type(config).__name__}, expected ExperimentConfig")
    else:
        raise ZettError(f"--config {path}: expected a .py file with get_config() or a .json file")
    return apply_overrides(config, overrides)


def cmd_hypernet_train(args) -> int:
    from zett_jax.hypernet.train import train_from_config

    config = load_experiment_config(args.config, args.overrides)
    _log_devices()
    metrics = train_from_config(config)
    if metrics:
        print(json.dumps(metrics[-1]))
    return 0


def cmd_hypernet_export(args) -> int:
    from zett_jax.convert.load import load_model
    from zett_jax.hypernet.train import export_compact, read_metadata

    base = load_model(read_metadata(args.hypernet)["base_model"])
    out = export_compact(args.hypernet, base, args.out, args.dtype)
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"{out} ({size / 2**20:.1f} MiB)")
    return 0


def cmd_demo(args) -> int:
    """The main job on the built-in default: a real model moved to a real new tokenizer, bits per byte."""
    from zett_jax.demo import DemoConfig, run

    _log_devices()
    cfg = DemoConfig()
    overrides = {
        "model": args.model, "tokenizer": args.tokenizer, "donor": args.donor,
        "max_bytes": args.max_bytes, "max_length": args.max_length,
        "methods": tuple(args.methods) if args.methods else None,
        "corpora": tuple(args.corpora) if args.corpora else None,
    }
    cfg = dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    run(cfg)
    return 0


# --------------------------------------------------------------------------------------------- parser
def _model_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--model", required=required, help="asset name, .gguf file, HF directory or hub id")
    p.add_argument("--dtype", default="float32", help="float32 or bfloat16 (parameters and compute)")


def _data_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--data", required=required, help="corpus asset name, .jsonl or text file")
    p.add_argument("--max-length", type=int, default=1024, help="window length L, prefix included")
    p.add_argument("--batch-size", type=int, default=8, help="windows of length L per batch")
    p.add_argument("--max-bytes", type=int, default=None, help="evaluate the documents of this prefix only")
    p.add_argument("--max-documents", type=int, default=None, help="evaluate the first N documents only")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zett", description="Free language models from their tokenizers.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("assets", help="list, fetch or locate real models, tokenizers and corpora")
    p.add_argument("action", choices=["list", "fetch", "path"])
    p.add_argument("name", nargs="?")
    p.set_defaults(func=cmd_assets)

    p = sub.add_parser("eval", help="bits per byte of a model on a text (ROADMAP.md protocol)")
    _model_args(p)
    _data_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("generate", help="greedy continuation of a prompt")
    _model_args(p)
    p.add_argument("--prompt", required=True)
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("export", help="write a Hugging Face PyTorch checkpoint directory")
    _model_args(p)
    p.add_argument("--out", required=True)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("hypernet", help="the ZeTT tokenizer hypernetwork")
    hsub = p.add_subparsers(dest="hypernet_command", required=True)
    h = hsub.add_parser("train", help="train (or resume) a hypernetwork from an experiment config")
    h.add_argument("--config", required=True, help="experiments/hypernet/*.py (get_config()) or a .json file")
    h.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.steps=10 data.batch_size=4")
    h.set_defaults(func=cmd_hypernet_train)
    h = hsub.add_parser("export", help="a run's hypernetwork as bf16 safetensors + metadata (no optimizer state)")
    h.add_argument("--hypernet", required=True, help="a directory written by `zett hypernet train`")
    h.add_argument("--dtype", default="bfloat16", help="bfloat16 or float32")
    h.add_argument("--out", required=True)
    h.set_defaults(func=cmd_hypernet_export)

    p = sub.add_parser("demo", help="the main job: a real model moved to a new tokenizer, bits per byte before/after")
    p.add_argument("--model", default=None, help="source model (default smollm2-135m)")
    p.add_argument("--tokenizer", default=None, help="target tokenizer (default llama-bpe)")
    p.add_argument("--donor", default=None, help="a model using the target tokenizer; adds OMP")
    p.add_argument("--methods", nargs="+", default=None)
    p.add_argument("--corpora", nargs="+", default=None, help="corpus assets (default wiki-en fortunes-de)")
    p.add_argument("--max-bytes", type=int, default=None, help="bytes of each corpus (default 8000)")
    p.add_argument("--max-length", type=int, default=None, help="window length (default 512)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("transplant", help="give a model a new tokenizer without training")
    _model_args(p)
    p.add_argument("--tokenizer", required=True, help="tokenizer asset name, tokenizer.json, .gguf, .tiktoken or HF dir")
    p.add_argument("--method", required=True, help="zero, mean, fvt, focus, tokenadapt, omp or hypernet")
    p.add_argument("--hypernet", default=None, help="hypernet: a directory written by `zett hypernet train`")
    p.add_argument("--copy-shared", action="store_true",
                   help="hypernet: tokens the two vocabularies share keep the base rows (default: predict all)")
    p.add_argument("--donor", default=None, help="omp: a model that uses the target tokenizer")
    p.add_argument("--k", type=int, default=64, help="omp: anchors per new token")
    p.add_argument("--untie", action="store_true", help="give a tied model separate input/output tables")
    p.add_argument("--out", required=True)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_transplant)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="zett: %(message)s", stream=sys.stderr
    )
    try:
        return args.func(args)
    except ZettError as e:
        print(f"zett: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `zett assets list | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 — silence the flush at exit
        return 0
    except KeyboardInterrupt:
        print("zett: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
