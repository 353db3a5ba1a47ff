"""The code type-checks (pyproject.toml [tool.mypy]: gateway/, the default strictness)."""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_mypy_finds_nothing():
    result = subprocess.run([sys.executable, "-m", "mypy"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
