"""The PaddleX module-config schema: sections, keys and their defaults.

Every key a user may set is listed here; a key that is not here is a typo, and
``-o`` overrides or YAML files that use one are rejected with a suggestion.
Sections listed in ``FREEFORM_SECTIONS`` carry model-specific settings
(architecture, reader, optimizer) that are checked by the model that reads them.
"""

from typing import Any, Dict

MODES = ("check_dataset", "train", "evaluate", "export", "predict")
# Inference backends (tutorial_lib.predict.backends builds them): the one list, read by the config check and the predictor
RUN_MODES = ("paddle", "mkldnn", "onnxruntime", "openvino", "onnxruntime_int8", "openvino_int8", "trt_fp32", "trt_fp16")

FREEFORM_SECTIONS = ("Architecture",)

DEFAULTS: Dict[str, Any] = {
    "Global": {
        "model": None,
        "mode": "check_dataset",
        "dataset_dir": None,
        "device": "cpu",
        "output": "output",
        "seed": 42,
    },
    "CheckDataset": {
        "convert": {
            "enable": False,
            "src_dataset_type": None,
            # src_dataset_type=GeoTIFF only (tutorial_lib.data.geochips): rasters in Global.dataset_dir -> COCO chips
            "label_files": None,  # polygon files (GeoJSON/GeoPackage/Shapefile); None: those in Global.dataset_dir
            "class_column": None,  # the labels' class column ...
            "class_name": None,  # ... or one class for every polygon
            "bands": None,  # 3 band numbers (R, G, B) or 1 (grey); None: 1-3
            "chip_size": 512,
            "overlap": 0.0,  # fraction of chip_size shared by neighbouring chips
            "nodata_threshold": 0.5,  # chips with more no-data than this fraction are skipped
            "min_area_fraction": 0.25,  # a polygon piece cut by a chip border is kept from this share of the whole
            "image_format": "png",
            "split_by": "blocks",  # val = whole rasters, or spatial blocks of block_size pixels
            "block_size": 2048,
            "val_fraction": 0.2,
        },
        "split": {"enable": False, "train_percent": None, "val_percent": None},
    },
    "Train": {
        "num_classes": None,
        "epochs_iters": 10,
        "batch_size": 2,
        "learning_rate": 0.0001,
        "pretrain_weight_path": None,
        "warmup_steps": 0,
        "resume_path": None,  # a checkpoint, or auto: the newest in Global.output (none: a new run)
        "save_interval_iters": None,  # also a latest/ checkpoint every N iterations
        "log_interval": 10,
        "eval_interval": 1,
        "amp": None,
        "keep_last_epochs": 2,
        "export_every_epoch": False,
        "export_best": True,
    },
    "Evaluate": {"weight_path": None, "log_interval": 10, "score_threshold": 0.5},
    "Export": {"weight_path": None},
    "Predict": {
        "batch_size": 1,
        "model_dir": None,
        "input": None,
        "threshold": None,
        "kernel_option": {"run_mode": "paddle"},
    },
}

# Allowed values for keys whose value is one of a few words.
CHOICES = {
    "Global.mode": MODES,
    "CheckDataset.convert.src_dataset_type": (None, "COCO", "LabelMe", "VOC", "GeoTIFF"),
    "CheckDataset.convert.split_by": ("raster", "blocks"),
    "CheckDataset.convert.image_format": ("png", "jpg"),
    "Predict.kernel_option.run_mode": RUN_MODES,
    "Train.amp": (None, "OFF", "O1", "O2"),
}


def all_keys(tree=DEFAULTS, prefix=""):
    """Dotted paths of every leaf key in ``tree`` (``Train.learning_rate``, ...)."""
    keys = []
    for name, value in tree.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict) and value:
            keys.extend(all_keys(value, path + "."))
        else:
            keys.append(path)
    return keys
