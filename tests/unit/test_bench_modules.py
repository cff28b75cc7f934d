"""Every benchmark module loads: `python -m bench all` runs each in a process of its own,
where an import broken by a change elsewhere (a name moved or removed) would only show as an
error in its JSON."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
MODULES = sorted(m.name for m in pkgutil.iter_modules([str(BENCH)]))


@pytest.mark.parametrize("name", MODULES)
def test_a_benchmark_module_loads(name: str) -> None:
    importlib.import_module(f"bench.{name}")
