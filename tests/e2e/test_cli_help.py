"""What `clara-es --help` imports, which only a fresh interpreter can tell."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("alembic", "eventsourcing", "fastapi", "livekit", "sqlalchemy", "uvicorn", "pydantic")


def test_help_imports_none_of_the_commands() -> None:
    """Only a fresh interpreter can tell what `--help` imports."""
    probe = (
        "import sys\n"
        "from clara_es.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('loaded:', *sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60, check=True)
    assert "Commands:" in result.stdout
    assert result.stdout.splitlines()[-1] == "loaded:"
