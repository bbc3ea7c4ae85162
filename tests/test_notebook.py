"""The quickstart notebook stays in step with the library: its code compiles and every name it imports exists."""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def test_quickstart_code_compiles_and_imports_resolve():
    nb = json.loads(NOTEBOOK.read_text())
    source = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    tree = ast.parse(source)
    imported = [(node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names]
    assert imported, "the notebook should import from zett_jax"
    for module, name in imported:
        assert hasattr(importlib.import_module(module), name), f"{module}.{name}"
