"""Step 5: ``-o Global.mode=evaluate -o Evaluate.weight_path=...``: COCO metrics of a trained checkpoint.

Writes to ``Global.output``: ``evaluate_result.json`` (``done_flag``, ``metrics``: mask ``AP``, ``AP50``,
``AP75``, ``APs``/``APm``/``APl``, the same for boxes as ``bbox_*``, and ``per_class``), a confusion matrix
(``confusion_matrix.png``) and an error breakdown (``error_breakdown.png``) of the predictions scoring at
least ``Evaluate.score_threshold``, drawn by :mod:`tutorial_lib.figures` in one vocabulary (the matrix's
``background`` row is the breakdown's ``background`` bar). A checkpoint trained with EMA is evaluated with its
averaged weights, which its ``.pdparams`` holds (PaddleDetection's layout, see :mod:`.checkpoint`).
"""
import json
import time
from pathlib import Path

from ..data.coco import load_coco
from . import checkpoint
from .common import load_trained, predict_split, prepare
from .data import Split, check_num_classes, read_categories
from ..models.adapters import get_adapter
from .metrics import coco_metrics, confusion_data, error_analysis
from ..figures import plot_confusion, plot_errors, save


def evaluate(cfg):
    """Evaluate ``Evaluate.weight_path`` on the val split of ``Global.dataset_dir``; return the result dict."""
    get_adapter(cfg)  # a model this engine cannot run fails here, before anything is read
    prepare(cfg)
    start = time.time()
    g = cfg["Global"]
    prefix = checkpoint.resolve(cfg["Evaluate"]["weight_path"], "Evaluate.weight_path")
    categories = read_categories(g["dataset_dir"], "val")
    labels = [c["name"] for c in categories]
    adapter, model, meta = load_trained(prefix, cfg, dataset_labels=labels)
    check_num_classes(meta["num_classes"], categories, source="the model's number of classes (Train.num_classes)")
    split = Split(g["dataset_dir"], "val", allow_empty=True)
    coco_gt = load_coco(split.path)
    predictions = predict_split(model, adapter, split, meta["num_classes"])
    metrics = coco_metrics(coco_gt, predictions, split.clsid2catid)
    threshold = float(cfg["Evaluate"].get("score_threshold", 0.5))
    analysis = error_analysis(coco_gt, predictions, split.catid2clsid, meta["num_classes"], threshold)
    out = Path(g["output"])
    out.mkdir(parents=True, exist_ok=True)
    confusion = confusion_data(analysis, labels)
    figures = {  # the notebooks draw the same figures from the result (tl.plot_confusion, tl.plot_errors)
        "confusion_matrix": save(plot_confusion(confusion), out / "confusion_matrix.png"),
        "error_breakdown": save(plot_errors(analysis["counts"], confusion), out / "error_breakdown.png"),
    }
    result = {
        "done_flag": True,
        "model_name": meta["model_name"],
        "weight_path": str(prefix) + ".pdparams",
        "num_images": len(split),
        "metrics": metrics,
        "confusion_matrix": confusion,
        "errors": analysis["counts"],
        "figures": figures,
        "eval_time_s": round(time.time() - start, 2),
    }
    (out / "evaluate_result.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n",
                                              encoding="utf-8")
    ema = " (the EMA weights; the raw ones are in .pdema)" if Path(str(prefix) + ".pdema").is_file() else ""
    print(f"evaluated {meta['model_name']}{ema} on {len(split)} images: mask AP={metrics['AP']:.4f} "
          f"AP50={metrics['AP50']:.4f}, bbox AP={metrics['bbox_AP']:.4f}")
    return result
