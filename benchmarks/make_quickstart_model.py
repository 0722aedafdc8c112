"""Make the shipped quick-start model (``tutorial_lib/assets/quickstart_MaskRCNN-ResNet18-FPN-S.npz``).

    TUTORIAL_LIB_HOME=/tmp/qs .venv/bin/python benchmarks/make_quickstart_model.py

Trains the quick-start model exactly as a first ``create_pipeline()`` without the shipped file would
(:func:`tutorial_lib.quickstart.quickstart_model_dir`: ``MaskRCNN-ResNet18-FPN-S``, the generated sample with 128
training images, 6 epochs, seed 0), packs its best weights 8-bit per row, and records the provenance and the mask /
box AP of the exported model before and after packing on the sample's val split. ``tests/test_quickstart.py``
re-measures the packed model and must find the recorded numbers.
"""
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tutorial_lib import quickstart  # noqa: E402
from tutorial_lib.paddle_env import import_paddle  # noqa: E402


def main():
    shipped = quickstart.SHIPPED
    if shipped.exists():
        shipped.rename(shipped.with_suffix(".old"))  # train for real, not from the shipped file
    model_dir = quickstart.quickstart_model_dir()
    root = model_dir.parents[2]
    best = root / "train" / "best_model" / "best_model"
    paddle = import_paddle()
    state = {k: v.numpy() for k, v in paddle.load(str(best) + ".pdparams").items()}
    meta = paddle.load(str(best) + ".pdstates")["meta"]
    dataset = root / "data"
    fp32 = quickstart.evaluate_exported(model_dir, dataset)
    info = {"meta": meta, "model": quickstart.MODEL,
            "command": "tutorial_lib.quickstart.quickstart_model_dir() (python -m tutorial_lib -c "
                       f"{quickstart.MODEL} -o Global.mode=train -o Global.seed=0 -o Train.epochs_iters=6 on "
                       "generate_sample(preset='ci', num_train=128, seed=0))",
            "seed": quickstart.SEED, "data": {"generator": "tutorial_lib.generate_sample", "preset": "ci",
                                              "num_train": 128, "seed": 0},
            "packing": "float tensors >= 4096 values: int8 per first-axis row, symmetric, scale = max|row| / 127",
            "metrics_float32": fp32}
    shipped.with_suffix(".old").unlink(missing_ok=True)
    quickstart.pack_weights(state, shipped, info)
    with tempfile.TemporaryDirectory() as tmp:
        packed = quickstart.evaluate_exported(quickstart.export_shipped(Path(tmp) / "inference"), dataset)
    info["metrics"] = packed
    quickstart.pack_weights(state, shipped, info)
    print(json.dumps({"file": str(shipped), "MB": round(os.path.getsize(shipped) / 2 ** 20, 2),
                      "float32": fp32, "packed": packed}, indent=2))


if __name__ == "__main__":
    main()
