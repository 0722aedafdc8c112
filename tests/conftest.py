import hashlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def tree_digest(root):
    """sha256 over every file's relative path and bytes under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(Path(root).rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory):
    """The default CI sample (seed 0), generated once per test session."""
    from tutorial_lib.data.sample import generate_sample

    out = tmp_path_factory.mktemp("sample") / "remote_sense_sample"
    generate_sample(out, preset="ci", seed=0, progress=False)
    return out
