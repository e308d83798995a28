"""The import layering of docs/architecture.md: lower layers never import higher ones."""

import subprocess
import sys

import pytest

BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"layer violation: {{name}} imported")
sys.meta_path.insert(0, Block())
import {module}
"""


@pytest.mark.parametrize(
    ("module", "blocked"),
    [
        ("bdrate", {"vinfo", "probes", "cli", "torch"}),
        ("bdrate.plot", {"vinfo", "probes", "cli", "torch"}),
        ("vinfo.io", {"probes", "cli"}),
        ("vinfo.registry", {"probes", "cli"}),
        ("vinfo.metrics", {"probes", "cli"}),
    ],
)
def test_module_imports_without_higher_layers(module, blocked):
    code = BLOCKER.format(blocked=sorted(blocked), module=module)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]
