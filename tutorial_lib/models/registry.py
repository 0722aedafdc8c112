"""Registered models (step 3): PaddleX names, their bundled configs, and the published benchmark numbers.

The numbers are the ones PaddleX publishes for COCO val2017 (mask AP 0.5:0.95, GPU/CPU inference
milliseconds, model size). ``None`` means PaddleX publishes no number. What this library measures
on this machine is kept apart (notebook 03, ``benchmarks/``), never mixed into this table.
"""
from dataclasses import asdict, dataclass

from ..config.loader import BUNDLED_DIR as CONFIG_DIR
from ..errors import UserError


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str  # "Mask-RT-DETR" (ours, tutorial_lib.models.mask_rtdetr) or a paddledet architecture
    mask_ap: float = None
    gpu_ms: float = None
    cpu_ms: float = None
    size_mb: float = None
    note: str = ""
    tutorial: bool = True  # one of the tutorial's models (False: an extra model of this library)

    def as_dict(self):
        return asdict(self)


_TABLE = [
    ModelInfo("Mask-RT-DETR-H", "Mask-RT-DETR", 50.6, 172.0, 1616.0, 450.0),
    ModelInfo("Mask-RT-DETR-X", "Mask-RT-DETR", 47.5, 114.0, 1241.0, 238.0),
    ModelInfo("Mask-RT-DETR-L", "Mask-RT-DETR", 45.7, 88.0, 1091.0, 114.0),
    ModelInfo("Mask-RT-DETR-M", "Mask-RT-DETR", 42.7, 79.0, None, 67.0),
    ModelInfo("Mask-RT-DETR-S", "Mask-RT-DETR", 41.0, 33.5, None, 52.0),
    ModelInfo("Cascade-MaskRCNN-ResNet50-FPN", "CascadeRCNN", 36.3, None, None, 254.8),
    ModelInfo("MaskRCNN-ResNet101-FPN", "MaskRCNN", 36.6, None, None, 225.4),
    ModelInfo("MaskRCNN-ResNet50-vd-FPN", "MaskRCNN", 36.4, None, None, 157.5),
    ModelInfo("MaskRCNN-ResNet50-FPN", "MaskRCNN", 35.6, None, None, 157.5),
    ModelInfo("SOLOv2", "SOLOv2", 35.5, None, None, 179.1),
]

# Models of this library that are not in the tutorial's table: a small Mask R-CNN that trains from scratch on a
# CPU in minutes (smoke runs, CI, the notebooks' small runs), and Mask-RT-DETR-S shrunk to a 128 px input for
# smoke runs of the Mask-RT-DETR engine path. No published numbers: they are not PaddleX models.
_EXTRA = [
    ModelInfo("MaskRCNN-ResNet18-FPN-S", "MaskRCNN", note="small CPU model (ResNet-18, 256 px) for smoke runs",
              tutorial=False),
    ModelInfo("Mask-RT-DETR-S-Smoke", "Mask-RT-DETR",
              note="Mask-RT-DETR-S at 128 px with fewer queries for CPU smoke runs (official S weights load)",
              tutorial=False),
]

MODELS = {info.name: info for info in _TABLE + _EXTRA}

# The model CI, ``make demo``, the quick-start model and the notebooks' CPU runs train: it learns the sample from
# random weights in minutes on two cores.
CPU_MODEL = "MaskRCNN-ResNet18-FPN-S"


def list_models(include_extra=False):
    """The registry as a list of dicts (one per model, in the tutorial's order: most accurate first).

    ``include_extra=True`` appends this library's extra models (e.g. the CPU smoke model).
    """
    return [info.as_dict() for info in (_TABLE + _EXTRA if include_extra else _TABLE)]


def get_model_info(name):
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; registered models: {', '.join(MODELS)}")
    return MODELS[name]


def model_config_path(name):
    """Bundled YAML for a registered model name."""
    get_model_info(name)
    path = CONFIG_DIR / f"{name}.yaml"
    if not path.exists():
        raise UserError(f"model {name!r} is registered but its config {path} is missing from this install")
    return path
