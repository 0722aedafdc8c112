"""``make demo``: the whole tutorial on the embedded synthetic sample, with the small CPU model.

Step 4 generates and checks the data, step 5 trains, evaluates and exports, step 6 predicts the demo scene,
step 7 runs the pipeline on a 2 x 2 mosaic of it with sliced inference. Every step writes into ``output``;
``demo_summary.json`` collects the key numbers and paths.
"""
import json
from pathlib import Path

import cv2
import numpy as np

from .data.sample import generate_sample
from .models.registry import CPU_MODEL as MODEL
from .modes import run
DEMO_IMAGE = Path(__file__).resolve().parent.parent / "data" / "remotesensing_demo.png"


def run_demo(output="output/demo", dataset_dir="data/remote_sense_sample", seed=0, epochs=4, threshold=0.3):
    """Steps 4-7; ``threshold`` is low because a 4-epoch model from random weights is unsure of itself."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)

    def step(mode, sub, **overrides):
        return run(MODEL, {"Global.mode": mode, "Global.dataset_dir": str(dataset_dir), "Global.seed": seed,
                           "Global.output": str(output / sub), **overrides})

    print(f"[step 4] synthetic remote-sensing sample in {dataset_dir} (seed {seed})")
    sample = generate_sample(dataset_dir, "ci", seed=seed)
    check = step("check_dataset", "check")
    print(f"[step 5] training {MODEL} for {epochs} epochs on the CPU (a few minutes)")
    step("train", "train", **{"Train.epochs_iters": epochs, "Train.eval_interval": epochs})
    best = output / "train" / "best_model"
    evaluation = step("evaluate", "evaluate", **{"Evaluate.weight_path": str(best / "best_model.pdparams")})
    print("[step 6] predicting the demo scene with the exported model")
    step("predict", "predict", **{"Predict.model_dir": str(best / "inference"), "Predict.input": str(DEMO_IMAGE),
                                  "Predict.threshold": threshold})

    print("[step 7] pipeline: sliced inference on a 2 x 2 mosaic of the demo scene")
    from .pipeline import SliceOptions, get_pipeline_config
    from .providers import LocalModel, create_pipeline

    pipeline = create_pipeline("instance_segmentation", model=LocalModel(best / "inference"))
    mosaic = np.tile(cv2.imread(str(DEMO_IMAGE))[..., ::-1], (2, 2, 1))
    sliced = pipeline.predict_sliced(mosaic, threshold=threshold, slicing=SliceOptions(slice_size=512,
                                                                                       overlap_ratio=0.2))
    sliced.save_to_img(output / "pipeline" / "mosaic_res.png")
    sliced.save_to_json(output / "pipeline" / "mosaic_res.json")
    get_pipeline_config("instance_segmentation", output / "pipeline")

    metrics = evaluation.get("metrics", {})
    summary = {"dataset": sample["splits"], "check_pass": check["check_pass"],
               "mask_AP": metrics.get("AP"), "mask_AP50": metrics.get("AP50"),
               "mosaic_instances": len(sliced.boxes), "outputs": str(output.resolve())}
    (output / "demo_summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(f"\nmask AP {summary['mask_AP']}, AP50 {summary['mask_AP50']} on the sample's val split "
          f"(small model, {epochs} epochs; see docs/benchmarks.md for a longer run)")
    print(f"results are in {output.resolve()}:")
    for path in sorted(output.glob("*/*")):
        print(f"  {path}")
    return summary
