"""Issue 3's real transplant experiments: bits per byte before and after a tokenizer swap.

Pairs (source model -> target tokenizer [donor]):
  smollm2-135m -> gpt-2, llama-bpe           donor-free methods
  gemma3-270m  -> SmolLM2's tokenizer        OMP with smollm2-135m as donor, and donor-free methods
  smollm2-135m -> Gemma-3's tokenizer        OMP with gemma3-270m as donor, and donor-free methods
Each row is evaluated on the same fixed prefix of every corpus (``take_prefix(docs, max_bytes=...)``);
the original models are evaluated on the same prefixes with their own tokenizers.

Results go to ``<out>.json`` (appended row by row, so a killed run resumes where it stopped) and
``<out>.md`` (rewritten after every row).

    .venv/bin/python experiments/transplant_smollm2.py            # everything (hours on two CPU cores)
    .venv/bin/python experiments/transplant_smollm2.py --pairs smollm2-gpt2 --methods fvt
    .venv/bin/python experiments/transplant_smollm2.py --pairs smollm2-gpt2 --methods hypernet \
        --hypernet runs/hypernet-smollm2 --reuse experiments/results/transplant.json --out ...
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import jax

from zett_jax import assets
from zett_jax.convert.load import load_model
from zett_jax.data.text import read_documents, resolve_data_path, take_prefix
from zett_jax.eval.bpb import bits_per_byte
from zett_jax.hypernet.apply import copy_shared_rows, predict_embeddings
from zett_jax.hypernet.train import restore_hypernet
from zett_jax.tokenizers.load import load_tokenizer
from zett_jax.tokenizers.overlap import decompose
from zett_jax.transplant.api import DONOR_METHODS, METHODS, transplant
from zett_jax.transplant.plan import plan_tokens

log = logging.getLogger("transplant_experiment")

DONOR_FREE = ["zero", "mean", "fvt", "focus", "tokenadapt"]
# ZeTT (issue 4): every row predicted, or the rows of shared tokens copied from the base (``copy_shared``).
HYPERNET_METHODS = {"hypernet": False, "hypernet+copy": True}
# name: (source model, target tokenizer (asset), donor model or None); smallest first
PAIRS = {
    "smollm2-gpt2": ("smollm2-135m", "gpt-2", None),
    "smollm2-llama3": ("smollm2-135m", "llama-bpe", None),
    "gemma3-smollm2": ("gemma3-270m", "smollm2-135m", "smollm2-135m"),
    "smollm2-gemma3": ("smollm2-135m", "gemma3-270m", "gemma3-270m"),
}
CORPORA = ["wiki-en", "python-code", "fortunes-de", "fortunes-ru"]


def prefix_documents(docs: list[str], max_bytes: int) -> list[str]:
    """The corpus prefix every row is evaluated on: at most ``max_bytes``, the last document cut."""
    return take_prefix(docs, max_bytes=max_bytes, cut=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    p.add_argument("--methods", nargs="+", default=["omp", *DONOR_FREE], choices=[*METHODS, *HYPERNET_METHODS])
    p.add_argument("--hypernet", default=None, metavar="DIR",
                   help="a `zett hypernet train` directory for the methods hypernet and hypernet+copy")
    p.add_argument("--reuse", nargs="*", default=[], metavar="JSON",
                   help="copy rows (originals, pair x method) from other results files made with the same settings")
    p.add_argument("--title", default="Training-free tokenizer transplantation: bits per byte")
    p.add_argument("--corpora", nargs="+", default=CORPORA)
    p.add_argument("--max-bytes", type=int, default=16_000, help="UTF-8 bytes per corpus prefix")
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--k", type=int, default=64, help="OMP anchors per new token")
    p.add_argument("--k-for", nargs="*", default=[], metavar="PAIR=K",
                   help="per-pair k, e.g. smollm2-gemma3=8 where k=64 costs hours on a small CPU")
    p.add_argument("--time-omp-slice", type=int, default=0, metavar="N",
                   help="also time OMP phase 1 at --k on N real new tokens of each donor pair, projected to all")
    p.add_argument("--no-originals", action="store_true")
    p.add_argument("--out", default="experiments/results/transplant")
    return p.parse_args(argv)


def load_results(path: Path, settings: dict) -> dict:
    if path.exists():
        results = json.loads(path.read_text())
        if all(results.get("settings", {}).get(key) == value for key, value in settings.items()):
            return results
        log.warning("%s was made with other settings; starting a new results file", path)
    return {"settings": settings, "rows": []}


def save(results: dict, out: Path) -> None:
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, out.with_suffix(".json"))
    out.with_suffix(".md").write_text(render_markdown(results))


def render_markdown(results: dict) -> str:
    s = results["settings"]
    corpora = s["corpora"]
    lines = [
        f"# {s.get('title', 'Training-free tokenizer transplantation: bits per byte')}",
        "",
        "Lower is better. Each column is the same fixed prefix of the corpus for every row "
        f"(its first documents, the last one cut so that the prefix has at most {s['max_bytes']:,} UTF-8 "
        "bytes; see `bytes` below), "
        f"windows of at most {s['max_length']} tokens, prefix token BOS (else EOS), protocol of ROADMAP.md. "
        "In brackets: the change relative to the source model with its own tokenizer. "
        "`tok/B` = tokens per byte of the new tokenizer on that corpus (mean over corpora).",
        "",
        f"Command: `{s['command']}`",
        f"Machine: {s['machine']}; jax {s['jax']}.",
        "",
    ]
    rows = results["rows"]
    originals = {r["source"]: r for r in rows if r["method"] == "original"}
    if originals:
        lines += ["## Original models (own tokenizer)", "",
                  "| model | " + " | ".join(corpora) + " | tok/B |", "|---|" + "---|" * (len(corpora) + 1)]
        for name, r in originals.items():
            lines.append(f"| {name} | " + " | ".join(f"{r['bpb'][c]['bits_per_byte']:.3f}" for c in corpora)
                         + f" | {_tpb(r, corpora):.3f} |")
        lines.append("")
    for pair, (src, tgt, donor) in PAIRS.items():
        pair_rows = [r for r in rows if r.get("pair") == pair]
        if not pair_rows:
            continue
        first = pair_rows[0]
        lines += [
            f"## {src} -> {tgt} tokenizer" + (f" (OMP donor: {donor})" if donor else ""),
            "",
            f"Target vocabulary {first['target_size']:,}; shared with the source {first['shared']:,} "
            f"({first['shared'] / first['target_size']:.1%}); new {first['target_size'] - first['shared']:,}. "
            f"Overlap + decomposition took {first['plan_seconds']:.1f} s.",
            "",
            "| method | transplant s | " + " | ".join(corpora) + " | tok/B |",
            "|---|---:|" + "---|" * (len(corpora) + 1),
        ]
        base = originals.get(src)
        if base:
            lines.append(f"| original ({src}, own tokenizer) | | "
                         + " | ".join(f"{base['bpb'][c]['bits_per_byte']:.3f}" for c in corpora)
                         + f" | {_tpb(base, corpora):.3f} |")
        for r in sorted(pair_rows, key=lambda r: _mean_bpb(r, corpora)):
            cells = []
            for c in corpora:
                v = r["bpb"][c]["bits_per_byte"]
                rel = f" ({v / base['bpb'][c]['bits_per_byte'] - 1:+.0%})" if base else ""
                cells.append(f"{v:.3f}{rel}")
            name = f"{r['method']} (k={r['k']})" if r.get("k") else r["method"]
            if r.get("reused_from"):
                name += f" [{Path(r['reused_from']).stem}]"
            lines.append(f"| {name} | {r['transplant_seconds']:.1f} | " + " | ".join(cells)
                         + f" | {_tpb(r, corpora):.3f} |")
        lines.append("")
    for pair, t in results.get("omp_slices", {}).items():
        lines += [f"OMP phase 1 timing, {pair}: k={t['k']}, {t['targets_timed']:,} of {t['new_tokens']:,} new "
                  f"tokens over {t['anchors']:,} anchors took {t['seconds']:.1f} s; projected for all new tokens: "
                  f"{t['projected_seconds'] / 60:.0f} min (same machine, shared with other jobs).", ""]
    lines += ["`bytes` per corpus: " + ", ".join(f"{c} {n:,}" for c, n in s.get("corpus_bytes", {}).items()), ""]
    return "\n".join(lines)


def _mean_bpb(r, corpora):
    return sum(r["bpb"][c]["bits_per_byte"] for c in corpora) / len(corpora)


def _tpb(r, corpora):
    return sum(r["bpb"][c]["tokens"] / r["bpb"][c]["bytes"] for c in corpora) / len(corpora)


def time_omp_slice(donor, plan, k: int, n: int) -> dict:
    """Wall time of OMP phase 1 (the expensive part) on the first n new tokens, projected linearly to all
    new tokens (the solver's cost is linear in the number of targets)."""
    from zett_jax.transplant.omp_transplant import _phase1

    anchor_t, _ = plan.overlap.anchors()
    new_t = plan.overlap.new_target_ids
    _phase1(donor.embeddings.input_VxD, anchor_t, new_t[:256], k)  # compile outside the timing
    start = time.perf_counter()
    _phase1(donor.embeddings.input_VxD, anchor_t, new_t[:n], k)
    seconds = time.perf_counter() - start
    return {"k": k, "targets_timed": int(min(n, new_t.size)), "seconds": seconds, "new_tokens": int(new_t.size),
            "anchors": int(anchor_t.size), "projected_seconds": seconds * new_t.size / min(n, new_t.size)}


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout)
    documents = {c: prefix_documents(read_documents(resolve_data_path(c)), args.max_bytes) for c in args.corpora}
    settings = {
        "corpora": args.corpora,
        "max_bytes": args.max_bytes,
        "max_length": args.max_length,
        "corpus_bytes": {c: sum(len(d.encode()) for d in docs) for c, docs in documents.items()},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = load_results(out.with_suffix(".json"), dict(settings))  # a copy: the results' settings grow
    results["settings"].update(
        command="python experiments/transplant_smollm2.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs, {jax.devices()[0].platform}",
        jax=jax.__version__,
    )
    results["settings"]["title"] = args.title
    if args.hypernet:
        results["settings"]["hypernet"] = str(args.hypernet)
    k_for = {p: int(k) for p, k in (item.split("=") for item in args.k_for)}
    done = {(r.get("pair"), r["method"], r["source"]) for r in results["rows"]}
    wanted_sources = {PAIRS[p][0] for p in args.pairs}
    for other in args.reuse:
        theirs = load_results(Path(other), settings)
        for r in theirs["rows"]:
            key = (r.get("pair"), r["method"], r["source"])
            wanted = (r["method"] == "original" and r["source"] in wanted_sources) or (
                r.get("pair") in args.pairs and r["method"] in args.methods)
            if wanted and key not in done and r.get("bpb"):
                results["rows"].append({**r, "reused_from": r.get("reused_from", other)})
                done.add(key)
    save(results, out)
    models: dict[str, object] = {}

    def model(name):
        if name not in models:
            models[name] = load_model(name)
        return models[name]

    hypernets: dict[str, object] = {}
    predicted: dict[str, object] = {}

    def hypernet_for(src):
        if src not in hypernets:
            hypernets[src], _ = restore_hypernet(args.hypernet, model(src))
        return hypernets[src]

    def evaluate(loaded) -> dict:
        return {c: bits_per_byte(loaded, docs, max_length=args.max_length, batch_size=args.batch_size,
                                 progress=False).as_dict() for c, docs in documents.items()}

    if not args.no_originals:
        for src in dict.fromkeys(PAIRS[p][0] for p in args.pairs):
            if (None, "original", src) in done:
                continue
            bpb = evaluate(model(src))
            results["rows"].append({"pair": None, "source": src, "method": "original", "bpb": bpb})
            log.info("original %s: %s", src, {c: round(v["bits_per_byte"], 4) for c, v in bpb.items()})
            save(results, out)

    for pair in args.pairs:
        src, tgt, donor_name = PAIRS[pair]
        methods = [m for m in args.methods if (pair, m, src) not in done]
        methods = [m for m in methods if m not in DONOR_METHODS or donor_name]
        if any(m in HYPERNET_METHODS for m in methods) and not args.hypernet:
            raise SystemExit("--methods hypernet needs --hypernet DIR")
        if not methods:
            continue
        # With a donor, its own tokenizer object is the target (OMP checks they are the same vocabulary).
        target = model(donor_name).tokenizer if donor_name else load_tokenizer(assets.fetch(tgt))
        start = time.perf_counter()
        plan = plan_tokens(model(src).tokenizer, target)
        plan_seconds = time.perf_counter() - start
        if donor_name and args.time_omp_slice and pair not in results.setdefault("omp_slices", {}):
            results["omp_slices"][pair] = time_omp_slice(model(donor_name), plan, args.k, args.time_omp_slice)
            log.info("%s: OMP phase 1 slice timing %s", pair, results["omp_slices"][pair])
            save(results, out)
        for method in methods:
            donor = model(donor_name) if method in DONOR_METHODS else None
            k = k_for.get(pair, args.k)
            start = time.perf_counter()
            if method in HYPERNET_METHODS:
                if pair not in predicted:  # one prediction per pair; "+copy" only swaps the shared rows
                    predicted[pair] = predict_embeddings(hypernet_for(src), model(src).embeddings,
                                                         model(src).tokenizer, target)
                tables = predicted[pair]
                if HYPERNET_METHODS[method]:
                    tables = copy_shared_rows(tables, model(src).embeddings, decompose(model(src).tokenizer, target))
                moved = model(src).with_embeddings(tables, target)
            else:
                moved = transplant(model(src), target, method, donor=donor, k=k, plan=plan)
            jax.block_until_ready(moved.embeddings)
            seconds = time.perf_counter() - start
            log.info("%s %s: transplant %.1f s", pair, method, seconds)
            bpb = evaluate(moved)
            results["rows"].append({
                "pair": pair, "source": src, "target": tgt, "donor": donor_name if donor else None,
                "method": method, "k": k if method in DONOR_METHODS else None,
                "transplant_seconds": seconds, "plan_seconds": plan_seconds,
                "target_size": target.vocab_size, "shared": plan.overlap.num_shared, "bpb": bpb,
            })
            log.info("%s %s: %s", pair, method, {c: round(v["bits_per_byte"], 4) for c, v in bpb.items()})
            save(results, out)
            del moved


if __name__ == "__main__":
    main()
