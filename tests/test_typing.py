"""mypy (pinned in requirements.txt) finds no error in the typed surface listed in pyproject.toml's [tool.mypy]:
the step API and its results, Instances, the adapter contract, the stop logic, the geodata modules."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_is_clean_on_the_typed_modules():
    run = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "Success: no issues found" in run.stdout


def test_the_package_says_it_is_typed():
    assert (ROOT / "tutorial_lib" / "py.typed").is_file()
