import hashlib
import os
from pathlib import Path

import numpy as np
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


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """8 train / 4 val generated images at 128 px (seed 0): the training tests' data, made once per session."""
    from tutorial_lib.data.sample import generate_sample

    out = tmp_path_factory.mktemp("tiny") / "tiny_sample"
    generate_sample(out, num_train=8, num_val=4, image_size=128, seed=0, progress=False)
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
