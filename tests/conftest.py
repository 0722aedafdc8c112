import hashlib
import os
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


@pytest.fixture(scope="session", autouse=True)
def tutorial_lib_home(tmp_path_factory):
    """A fresh model cache for the session (never the user's ~/.cache); notebook kernels inherit it."""
    home = tmp_path_factory.mktemp("tutorial_lib_home")
    os.environ["TUTORIAL_LIB_HOME"] = str(home)
    return home


@pytest.fixture(scope="session")
def quickstart_model(tutorial_lib_home):
    """The quick-start model trained the way create_pipeline() does on first use, but tiny (4 epochs, 32 images).
    The smoke runs of notebooks 02 and 07 ask for the same one and find it in the session's cache."""
    from tutorial_lib.quickstart import quickstart_model_dir

    return quickstart_model_dir(epochs=4, num_train=32), tutorial_lib_home


@pytest.fixture(scope="session")
def shipped_model(tmp_path_factory):
    """The shipped quick-start model, exported, and the generated sample it was trained on: ``(model_dir,
    dataset_dir)``. A model that learned its scenes, for tests that need real detections."""
    from tutorial_lib import quickstart
    from tutorial_lib.data.sample import generate_sample

    if not quickstart.SHIPPED.is_file():
        pytest.skip("no shipped quick-start model in this checkout")
    root = tmp_path_factory.mktemp("shipped")
    model_dir = quickstart.export_shipped(root / "inference")
    data = generate_sample(root / "data", preset="ci", num_train=quickstart.DEFAULT_TRAIN, seed=quickstart.SEED,
                           progress=False)["dataset_dir"]
    return model_dir, Path(data)


@pytest.fixture(scope="session")
def rtdetr_export(tmp_path_factory):
    """Mask-RT-DETR-S-Smoke exported with seeded random weights (the operators matter here, not the accuracy)."""
    from tutorial_lib.engine.export import export_untrained

    out = tmp_path_factory.mktemp("hpi") / "rtdetr"
    export_untrained("Mask-RT-DETR-S-Smoke", out)
    return out


def tiny_sample(tmp_path_factory, num_train, seed):
    """A tiny generated dataset (96 px, 4 val images) that a module's tests copy before breaking it."""
    from tutorial_lib.data.sample import generate_sample

    out = tmp_path_factory.mktemp("tiny") / "ds"
    generate_sample(out, num_train=num_train, num_val=4, image_size=96, seed=seed, progress=False)
    return out
