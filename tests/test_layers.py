"""The import layering of docs/architecture.md: lower layers never import higher ones."""

import subprocess
import sys

import pytest

BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"layer violation: {{name}} imported")
sys.meta_path.insert(0, Block())
import {module}
"""

ABOVE_CORE = {"probes", "cli", "vinfo.experiments"}


@pytest.mark.parametrize(
    ("module", "blocked"),
    [
        ("bdrate", {"vinfo", "probes", "cli", "torch"}),
        ("bdrate.plot", {"vinfo", "probes", "cli", "torch"}),
        ("vinfo.io", ABOVE_CORE),
        ("vinfo.lock", ABOVE_CORE | {"torch", "vinfo.models", "vinfo.data", "vinfo.train"}),
        ("vinfo.registry", ABOVE_CORE),
        ("vinfo.metrics", ABOVE_CORE),
        ("vinfo.data", ABOVE_CORE),
        ("vinfo.models", ABOVE_CORE),
        ("vinfo.coding", ABOVE_CORE),
        ("vinfo.train", ABOVE_CORE),
        ("probes", {"cli", "vinfo.experiments"}),
        ("probes.report", {"cli", "vinfo.experiments"}),
        ("vinfo.experiments.rd", {"cli"}),
        ("vinfo.experiments.analysis", {"cli"}),
        ("vinfo.experiments.report", {"cli"}),
        ("vinfo.experiments.reproduce", {"cli"}),
    ],
)
def test_module_imports_without_higher_layers(module, blocked):
    code = BLOCKER.format(blocked=sorted(blocked), module=module)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]
