import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two pytest-xdist workers, whole files each (--dist loadfile): each worker's paddle (and the
    # notebook kernels and servers it starts, which inherit this) gets its share of the cores instead of all of them
    _workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // _workers))


def built_once(tmp_path_factory, name, build):
    """``<run temp>/name``, made by ``build(folder)`` once for the whole test run: under pytest-xdist the first
    worker to ask builds it under a file lock and the others wait for it, so session data is not made twice."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            build(folder)
            done.touch()
    return folder


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

    folder = built_once(tmp_path_factory, "sample", lambda f: generate_sample(f / "remote_sense_sample", preset="ci",
                                                                              seed=0, progress=False))
    return folder / "remote_sense_sample"


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """8 train / 4 val generated images at 128 px (seed 0): the training tests' data, made once per session."""
    from tutorial_lib.data.sample import generate_sample

    folder = built_once(tmp_path_factory, "tiny", lambda f: generate_sample(
        f / "tiny_sample", num_train=8, num_val=4, image_size=128, seed=0, progress=False))
    return folder / "tiny_sample"


@pytest.fixture(scope="session", autouse=True)
def tutorial_lib_home(tmp_path_factory):
    """A fresh model cache for the session (never the user's ~/.cache); notebook kernels inherit it."""
    home = tmp_path_factory.mktemp("tutorial_lib_home")
    os.environ["TUTORIAL_LIB_HOME"] = str(home)
    return home


@pytest.fixture(scope="session")
def quickstart_model(tutorial_lib_home):
    """The quick-start model trained the way create_pipeline() does for settings it ships no weights for, but tiny
    (4 epochs, 32 images): the pipeline and serving tests' model, trained once per worker."""
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

    def build(root):
        quickstart.export_shipped(root / "inference")
        generate_sample(root / "data", preset="ci", num_train=quickstart.DEFAULT_TRAIN, seed=quickstart.SEED,
                        progress=False)

    root = built_once(tmp_path_factory, "shipped", build)
    return root / "inference", root / "data"


@pytest.fixture(scope="session")
def rtdetr_export(tmp_path_factory):
    """Mask-RT-DETR-S-Smoke exported with seeded random weights (the operators matter here, not the accuracy)."""
    from tutorial_lib.engine.export import export_untrained

    return built_once(tmp_path_factory, "rtdetr_export", lambda f: export_untrained("Mask-RT-DETR-S-Smoke", f))


def tiny_sample(tmp_path_factory, num_train, seed):
    """A tiny generated dataset (96 px, 4 val images) that a module's tests copy before breaking it."""
    from tutorial_lib.data.sample import generate_sample

    out = tmp_path_factory.mktemp("tiny") / "ds"
    generate_sample(out, num_train=num_train, num_val=4, image_size=96, seed=seed, progress=False)
    return out


# ----------------------------------------------------------------------------- backend parity
PARITY_BOX_TOL, PARITY_SCORE_TOL = 0.05, 1e-4  # px, score: an inference backend against Paddle Inference


def mask_iou(a, b):
    union = np.logical_or(a, b).sum()
    return np.logical_and(a, b).sum() / union if union else 1.0


def compare_detections(reference, other):
    """Match every detection of the result ``reference`` to one of ``other`` (same class, box within
    PARITY_BOX_TOL, score within PARITY_SCORE_TOL; near-equal scores may swap places). Returns the unmatched
    reference detections and, over the matched ones, the largest box and score deviations and the smallest best
    mask IoU."""
    unmatched, box_dev, score_dev, ious = [], 0.0, 0.0, []
    for ref_box, ref_mask in zip(reference.boxes, reference.masks):
        hits = [i for i, b in enumerate(other.boxes) if b["cls_id"] == ref_box["cls_id"]
                and np.abs(np.subtract(b["coordinate"], ref_box["coordinate"])).max() < PARITY_BOX_TOL
                and abs(b["score"] - ref_box["score"]) < PARITY_SCORE_TOL]
        if not hits:
            unmatched.append(ref_box)
            continue
        best = max(hits, key=lambda i: mask_iou(other.masks[i], ref_mask))
        box_dev = max(box_dev, float(np.abs(np.subtract(other.boxes[best]["coordinate"],
                                                        ref_box["coordinate"])).max()))
        score_dev = max(score_dev, abs(other.boxes[best]["score"] - ref_box["score"]))
        ious.append(mask_iou(other.masks[best], ref_mask))
    return unmatched, box_dev, score_dev, min(ious) if ious else float("nan")
