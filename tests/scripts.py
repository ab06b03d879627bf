"""Import a script of ``benchmarks/`` or ``docs/gen/`` in a test, the way ``python <script>`` runs it.

``python benchmarks/sst2.py`` puts ``benchmarks/`` first on ``sys.path``, which is how the scripts
import their folder's helper module by its bare name (``from _common import ...`` in ``benchmarks/``,
``from _docgen import ...`` in ``docs/gen/``). Here that helper is imported from its file first, so a
test can load any script without anyone editing ``sys.path``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def _exec(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def load_script(path: Path, name: str) -> ModuleType:
    """The script at ``path``, imported as module ``name``, after its folder's helpers (``_*.py``)."""
    for helper in sorted(h for h in path.parent.glob("_*.py") if not h.name.startswith("__")):
        loaded = sys.modules.get(helper.stem)
        if loaded is None or Path(getattr(loaded, "__file__", "") or "").resolve() != helper.resolve():
            _exec(helper, helper.stem)
    return _exec(path, name)
