"""The public API: ``pimc_core.__all__``, importable names, listed in docs/API.md, cheap to import."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pimc_core

ROOT = Path(__file__).resolve().parent.parent


def test_every_public_name_resolves_to_what_its_module_defines():
    for name in pimc_core.__all__:
        value = getattr(pimc_core, name)
        assert value is not None, name
    from pimc_core import SeriesClassifier, recurrence_plot
    from pimc_core.estimators.series_classifier import SeriesClassifier as defined
    from pimc_core.series.recurrence import recurrence_plot as rp

    assert SeriesClassifier is defined and recurrence_plot is rp


def test_docs_api_lists_exactly_the_public_names():
    text = (ROOT / "docs" / "API.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `(\w+)` \|", text, flags=re.M))
    assert listed == set(pimc_core.__all__) - {"__version__"}


def test_importing_the_package_loads_no_torch():
    code = "import sys, pimc_core; pimc_core.open_series; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "False"


def test_the_example_of_docs_api_runs(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "API.md").read_text(encoding="utf-8")
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "docs/API.md", "exec"), scope)
    assert scope["plots"].shape == (100, 3, 12, 12)
    assert scope["clf"].classes_.tolist() == [0, 1]
