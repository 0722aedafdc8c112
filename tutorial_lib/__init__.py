"""Instance segmentation of remote-sensing images with PaddlePaddle: the tutorial library.

Every tutorial step is usable three ways with the same names: a notebook cell, the CLI
(``python -m tutorial_lib``) and this Python API::

    import tutorial_lib as tl
    tl.generate_sample("data/remote_sense_sample")             # step 4: the embedded sample dataset
    tl.run("Mask-RT-DETR-S", ["Global.mode=check_dataset",       # any mode, PaddleX-style overrides
                              "Global.dataset_dir=data/remote_sense_sample"])
    run = tl.train("MaskRCNN-ResNet18-FPN-S", "data/remote_sense_sample", epochs=10)   # typed steps (steps.py)
    print(run.command, run.best_mask_ap)
    for result in tl.create_pipeline("instance_segmentation").predict("data/remotesensing_demo.png"):
        result.print(); result.save_to_img("output/"); result.save_to_json("output/")

The notebooks import only this module. Names below ``_LAZY`` are re-exported on first use, so that
``import tutorial_lib`` (and the CLI) does not load paddle, the predictor or ipywidgets until a name is used.
"""
import importlib

from .config import load_config
from .data.sample import generate_sample
from .errors import UserError
from .models.registry import CPU_MODEL, list_models
from .modes import run
from .pipeline import get_pipeline_config, list_pipelines
from .providers import create_pipeline

__version__ = "0.1.0"

# name -> module it comes from (relative to this package); loaded on first attribute access
_LAZY = {
    # notebooks 04-06: the steps as typed functions (tl.steps.predict for step 6)
    "check_dataset": ".steps", "train": ".steps", "evaluate": ".steps", "export": ".steps",
    # notebook 01/04: data
    "load_coco": ".data.coco", "draw_coco_image": ".viz", "draw_instances": ".viz",
    "coco_to_labelme": ".data.convert", "coco_to_voc": ".data.convert",
    "download_dataset": ".data.download", "list_backups": ".data.split", "undo_split": ".data.split",
    "chip_dataset": ".data.geochips",  # GeoTIFF scenes + polygon labels -> COCO chips
    "make_geoscene": ".data.geoscene",  # a generated 4-band GeoTIFF scene and its polygon labels
    "scene_preview": ".data.geoview",  # a GeoTIFF and its labels, small, for plot_geoscene
    "broken_copy": ".data.faults",  # a dataset copy with three planted faults (notebook 04)
    "plot_class_histogram": ".data.analysis",  # annotations per class and split, as bars
    "write_geotiff": ".data.raster",  # an array -> a north-up GeoTIFF
    # notebook 02/07: the quick-start model
    "quickstart_model_dir": ".quickstart", "training_scene": ".quickstart",
    # where create_pipeline's model comes from (an explicit model=...)
    "LocalModel": ".providers", "OfficialWeights": ".providers", "ShippedModel": ".providers",
    # notebook 03: measuring models
    "count_parameters": ".bench", "measure_mask_rtdetr": ".bench", "median_ms": ".bench",
    "build_mask_rtdetr": ".models.mask_rtdetr",
    # notebooks 06/07: prediction, deployment
    "Instances": ".structures", "InstanceSegResult": ".predict", "Predictor": ".predict", "read_image": ".predict",
    "export_untrained": ".engine.export", "UnsupportedModelError": ".predict.onnx_export",
    "quantize_int8": ".predict.quantize", "int8_tradeoff": ".predict.quantize",
    "BackgroundServer": ".serving", "Client": ".serving", "decode_overlay": ".serving.client",
    "tile_grid": ".pipeline.sliced",
    "SliceOptions": ".pipeline.options", "MergeOptions": ".pipeline.options",  # sliced inference's options
    "evaluate_scene": ".pipeline.scene_eval", "TileGrid": ".pipeline.scene_eval",  # a merged scene vs its labels
    # one scene, every merge of its tiles, scored in map space (notebook 07)
    "compare_merge_modes": ".pipeline.merge_study", "oracle_predictor": ".pipeline.merge_study",
    "NO_MERGE": ".pipeline.merge_study",
    # the notebooks' browsers (ipywidgets)
    "DatasetBrowser": ".widgets", "RunComparer": ".widgets", "PredictionBrowser": ".widgets",
    "SceneViewer": ".widgets",
    # the lessons' helpers: run folders, the model 05 trained, sweeps, histories, tables
    "GPU_MODEL": ".lessons", "default_model": ".lessons", "run_dir": ".lessons", "trained_model_dir": ".lessons",
    "trained_model": ".lessons", "Sweep": ".lessons", "best_epoch": ".lessons", "history_frame": ".lessons",
    "val_examples": ".lessons", "error_summary": ".lessons", "compare_run_modes": ".lessons",
    "busiest_image": ".lessons", "table": ".lessons", "coco_value": ".lessons", "COCO_FOOTNOTE": ".lessons",
    "fold": ".lessons", "capture_output": ".lessons",
    # the lessons' figures (matplotlib; the engine's PNGs are drawn by the same functions)
    "plot_history": ".figures", "plot_confusion": ".figures", "plot_errors": ".figures", "error_grid": ".figures",
    "plot_lr_grid": ".figures", "plot_before_after": ".figures", "plot_accuracy_vs_size": ".figures",
    "plot_merge_modes": ".figures", "plot_ground_truth": ".figures", "plot_prediction": ".figures",
    "plot_latency": ".figures", "plot_images": ".figures", "plot_geoscene": ".figures",
    "plot_seam_zoom": ".figures",
}
_SUBMODULES = ("steps", "widgets", "predict", "pipeline", "serving", "data", "models", "engine", "viz", "structures", "bench")

__all__ = ["UserError", "create_pipeline", "generate_sample", "get_pipeline_config", "list_models", "list_pipelines",
           "load_config", "run", "CPU_MODEL", *sorted(_LAZY)]


# modules that import paddle at their top: paddle is imported through paddle_env first (thread count, no log chatter)
_PADDLE = {".models.mask_rtdetr", ".bench", ".engine.export"}


def __getattr__(name):
    if name in _LAZY:
        if _LAZY[name] in _PADDLE:
            from .paddle_env import import_paddle

            import_paddle()
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'tutorial_lib' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
