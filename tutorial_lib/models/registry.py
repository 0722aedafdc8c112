"""Registered models (step 3): PaddleX names, their bundled configs, the published benchmark numbers and where the
official weights live.

The numbers are exactly the ones PaddleX 3.0 publishes in its instance-segmentation model list, the version the
remote-sensing tutorial shows (COCO val2017 mask AP 0.5:0.95; inference milliseconds on an NVIDIA Tesla T4 (GPU)
and an 8-thread Intel Xeon Gold 5117 (CPU), FP32, in PaddleX's normal mode and high-performance mode; model size
in MB), from https://paddlepaddle.github.io/PaddleX/3.0-rc1/module_usage/tutorials/cv_modules/instance_segmentation.html
(``tests/test_seed_commands.py`` holds the typed copy). ``None`` means PaddleX publishes no number there. What this
library measures on this machine is kept apart (notebook 03, ``benchmarks/``), never mixed into this table.

Weights: ``weights_url`` is PaddleDetection's COCO checkpoint (``.pdparams`` with PaddleDetection's parameter names;
it loads into this library's models and is what :func:`official_weights_url` gives training and the pipeline),
``paddlex_weights_url`` PaddleX's copy of the training weights, ``inference_url`` PaddleX's exported inference
model (built for Paddle 3.0; Paddle 2.6 cannot load it).
"""
from dataclasses import asdict, dataclass

from ..config.loader import BUNDLED_DIR as CONFIG_DIR
from ..errors import UserError

_DET = "https://paddledet.bj.bcebos.com/models/"
_PADDLEX = "https://paddle-model-ecology.bj.bcebos.com/paddlex/"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str  # the model family shown to users: Mask-RT-DETR, MaskRCNN, Cascade-MaskRCNN, SOLOv2
    mask_ap: float = None
    gpu_ms: float = None  # normal mode
    cpu_ms: float = None  # normal mode
    size_mb: float = None
    note: str = ""
    tutorial: bool = True  # one of the tutorial's models (False: an extra model of this library)
    gpu_ms_hp: float = None  # high-performance mode
    cpu_ms_hp: float = None  # high-performance mode
    description: str = ""
    weights_url: str = None  # PaddleDetection COCO .pdparams
    paddlex_weights_url: str = None
    inference_url: str = None

    def as_dict(self):
        return asdict(self)


def _paddlex(name, family, mask_ap, gpu, cpu, size_mb, description, det_weights):
    """One row of PaddleX's table; ``gpu``/``cpu`` are ``(normal, high-performance)`` milliseconds."""
    return ModelInfo(name, family, mask_ap, gpu[0], cpu[0], size_mb, gpu_ms_hp=gpu[1], cpu_ms_hp=cpu[1],
                     description=description, weights_url=_DET + det_weights + ".pdparams",
                     paddlex_weights_url=f"{_PADDLEX}official_pretrained_model/{name}_pretrained.pdparams",
                     inference_url=f"{_PADDLEX}official_inference_model/paddle3.0rc0/{name}_infer.tar")


_NONE = (None, None)
_RTDETR = ("Mask-RT-DETR: RT-DETR with a mask head; PP-HGNetV2-{} backbone, MaskHybridEncoder, IoU-aware query "
           "selection")
_MASKRCNN = "Mask R-CNN: two-stage detector (RPN + RoI heads) with a per-RoI mask branch; {} backbone"

_TABLE = [
    _paddlex("Mask-RT-DETR-H", "Mask-RT-DETR", 50.6, (172.36, 172.36), (1615.75, 1615.75), 449.9,
             _RTDETR.format("H") + "; the most accurate", "mask_rtdetr_hgnetv2_h_6x_coco"),
    _paddlex("Mask-RT-DETR-X", "Mask-RT-DETR", 47.5, (114.16, 114.16), (1240.92, 1240.92), 237.5,
             _RTDETR.format("X"), "mask_rtdetr_hgnetv2_x_6x_coco"),
    _paddlex("Mask-RT-DETR-L", "Mask-RT-DETR", 45.7, (88.18, 88.18), (1090.84, 1090.84), 113.6,
             _RTDETR.format("L"), "mask_rtdetr_hgnetv2_l_6x_coco"),
    _paddlex("Mask-RT-DETR-M", "Mask-RT-DETR", 42.7, (78.69, 78.69), _NONE, 66.6,
             _RTDETR.format("M"), "mask_rtdetr_hgnetv2_m_6x_coco"),
    _paddlex("Mask-RT-DETR-S", "Mask-RT-DETR", 41.0, (33.5007, None), _NONE, 51.8,
             _RTDETR.format("S") + "; the smallest and fastest", "mask_rtdetr_hgnetv2_s_6x_coco"),
    _paddlex("Cascade-MaskRCNN-ResNet50-FPN", "Cascade-MaskRCNN", 36.3, (141.69, 141.69), _NONE, 254.8,
             "Cascade Mask R-CNN: three box heads trained at rising IoU thresholds refine the boxes; ResNet-50 + FPN",
             "cascade_mask_rcnn_r50_fpn_1x_coco"),
    _paddlex("MaskRCNN-ResNet101-FPN", "MaskRCNN", 36.6, (148.14, 148.14), _NONE, 225.4,
             _MASKRCNN.format("ResNet-101 + FPN"), "mask_rcnn_r101_fpn_1x_coco"),
    _paddlex("MaskRCNN-ResNet50-vd-FPN", "MaskRCNN", 36.4, (118.34, 118.34), _NONE, 157.5,
             _MASKRCNN.format("ResNet-50-vd + FPN"), "mask_rcnn_r50_vd_fpn_1x_coco"),
    _paddlex("MaskRCNN-ResNet50-FPN", "MaskRCNN", 35.6, (118.30, 118.30), _NONE, 157.5,
             _MASKRCNN.format("ResNet-50 + FPN"), "mask_rcnn_r50_fpn_1x_coco"),
    _paddlex("SOLOv2", "SOLOv2", 35.5, _NONE, _NONE, 179.1,
             "SOLOv2: box-free, segments objects by location with dynamic mask kernels and Matrix NMS; ResNet-50 + FPN",
             "solov2_r50_fpn_1x_coco"),
]

# Models of this library that are not in the tutorial's table: a small Mask R-CNN that trains from scratch on a
# CPU in minutes (smoke runs, CI, the notebooks' small runs), and Mask-RT-DETR-S shrunk to a 128 px input for
# smoke runs of the Mask-RT-DETR engine path. No published numbers and no official weights: they are not PaddleX
# models.
_EXTRA = [
    ModelInfo("MaskRCNN-ResNet18-FPN-S", "MaskRCNN", note="small CPU model (ResNet-18, 256 px) for smoke runs",
              tutorial=False, description="Mask R-CNN with ResNet-18 + FPN at 256 px: learns the sample on a CPU"),
    ModelInfo("Mask-RT-DETR-S-Smoke", "Mask-RT-DETR",
              note="Mask-RT-DETR-S at 128 px with fewer queries for CPU smoke runs (official S weights load)",
              tutorial=False, description="Mask-RT-DETR-S at 128 px for smoke runs of the Mask-RT-DETR engine"),
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


def official_weights_url(name):
    """PaddleDetection's COCO ``.pdparams`` for ``name`` (``None`` for this library's own models, which have none).

    ``-o Train.pretrain_weight_path=official`` fine-tunes from it (downloaded once into the weights cache).
    """
    return get_model_info(name).weights_url


OFFICIAL = "official"  # Train.pretrain_weight_path value meaning "the official weights of Global.model"
GENERAL = "general"  # ... meaning "the general model this package ships for Global.model" (quickstart.general_weights)


def resolve_pretrain_weight(value, model_name):
    """``Train.pretrain_weight_path`` as training reads it: ``official`` -> :func:`official_weights_url` of
    ``model_name`` (a URL the weights loader downloads once); anything else unchanged."""
    if str(value).strip().lower() != OFFICIAL:
        return value
    url = official_weights_url(model_name) if model_name in MODELS else None
    if not url:
        raise UserError(f"Train.pretrain_weight_path=official: {model_name} has no official weights (models with "
                        f"them: {', '.join(m.name for m in _TABLE)}); give a .pdparams path or URL, or null")
    return url


def model_config_path(name):
    """Bundled YAML for a registered model name."""
    get_model_info(name)
    path = CONFIG_DIR / f"{name}.yaml"
    if not path.exists():
        raise UserError(f"model {name!r} is registered but its config {path} is missing from this install")
    return path
