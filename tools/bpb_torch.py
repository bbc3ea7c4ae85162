"""Bits per byte with transformers + PyTorch: an independent reference for `zett eval`.

Same protocol as ROADMAP.md (and zett_jax.eval.bpb), written separately on purpose: windows are scored
one at a time without padding, with the model's own PyTorch code and the HF tokenizer.

    python tools/bpb_torch.py --model HF_DIR --data wiki-en --max-bytes 40000 [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time


def torch_bits_per_byte(model_dir: str, documents: list[str], max_length: int = 1024, threads: int | None = None) -> dict:
    import torch
    import transformers

    if threads:
        torch.set_num_threads(threads)
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    nll, n_tokens = 0.0, 0
    start = time.perf_counter()
    with torch.inference_mode():
        for doc in documents:
            ids = tok(doc, add_special_tokens=False)["input_ids"]
            for s in range(0, len(ids), max_length - 1):
                window = torch.tensor([[prefix] + ids[s : s + max_length - 1]])
                logits = model(window[:, :-1]).logits.float()
                logp = torch.log_softmax(logits, dim=-1)
                nll -= logp[0].gather(-1, window[0, 1:, None]).sum().item()
                n_tokens += window.shape[1] - 1
    seconds = time.perf_counter() - start
    n_bytes = sum(len(d.encode("utf-8")) for d in documents)
    return {
        "bits_per_byte": nll / math.log(2) / n_bytes,
        "nll_nats": nll,
        "tokens": n_tokens,
        "bytes": n_bytes,
        "documents": len(documents),
        "seconds": seconds,
        "tokens_per_second": n_tokens / seconds,
    }


def main() -> int:
    from zett_jax.data.text import read_documents, resolve_data_path, take_prefix

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="HF model directory")
    p.add_argument("--data", required=True)
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--max-bytes", type=int, default=None)
    p.add_argument("--max-documents", type=int, default=None)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    docs = take_prefix(read_documents(resolve_data_path(args.data)), args.max_documents, args.max_bytes)
    out = torch_bits_per_byte(args.model, docs, args.max_length)
    print(json.dumps(out) if args.json else f"{out['bits_per_byte']:.6f} bits/byte ({out['tokens']} tokens)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
