"""vinfo.models and vinfo.coding import without the higher layers (cli, probes, experiments)."""

import subprocess
import sys

import pytest

BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {{"cli", "probes"}} or name.startswith("vinfo.experiments"):
            raise ImportError(f"layer violation: {{name}} imported")
sys.meta_path.insert(0, Block())
import {module}
"""


@pytest.mark.parametrize("module", ["vinfo.models", "vinfo.coding"])
def test_imports_only_lower_layers(module):
    code = BLOCKER.format(module=module)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]
