"""The core never imports Qt: checked statically and in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import REPO

CORE = REPO / "cuelab" / "core"
QT = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "shiboken6", "superqt", "qtpy")


def test_no_qt_import_statement_in_core() -> None:
    offenders = []
    for py in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(py.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{py.name}: {n}" for n in names if n.split(".")[0] in QT]
    assert offenders == []


#: The model worker's folder: run as a script inside another environment, where its
#: modules import each other as top-level names (``import protocol``).
WORKER = CORE / "models" / "isolated" / "worker"


def test_importing_every_core_module_loads_no_qt() -> None:
    modules = sorted(
        "cuelab." + ".".join(p.relative_to(CORE.parent).with_suffix("").parts)
        for p in CORE.rglob("*.py")
        if p.name != "__init__.py" and WORKER not in p.parents
    )
    worker = sorted(p.stem for p in WORKER.glob("*.py") if p.name != "__init__.py")
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"sys.path.insert(0, {str(WORKER)!r})\n"
        f"for m in {worker!r}: importlib.import_module(m)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {QT!r}]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
