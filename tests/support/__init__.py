"""Helpers and fixtures shared by the test folders (no test module imports another)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: alembic.ini, clara_es, tests
