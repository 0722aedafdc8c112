"""Mask-RT-DETR (``tutorial_lib.models.mask_rtdetr``): build it from the ``Architecture`` section, feed it
batches made by paddledet's transform ops, read its outputs, export it.

It implements :class:`tutorial_lib.models.base.ModelAdapter`, as :class:`tutorial_lib.models.paddledet.PaddleDetAdapter` does, so that training, evaluation,
export and the predictor run it unchanged, and its outputs (``bbox`` (N, 6: class, score, x1, y1, x2, y2),
``bbox_num``, ``mask`` (N, H, W) at the original image size) have the paddledet layout. The section::

    Architecture:
      family: mask_rtdetr
      size: S                      # S, M, L, X or H
      input_size: 640              # square input; rescales every Resize / BatchRandomResize (recipe: 640)
      num_queries: 300             # optional knobs that change no weight shape (defaults: the recipe's)
      num_denoising: 100
      num_sample_points: 12544     # points per mask in the matcher and the mask loss
      num_top_queries: 100         # detections kept per image
      backbone_lr_mult: [0.0, 0.1, 0.1, 0.1, 0.1]   # stem, stage 1..4 (PPHGNetV2 lr_mult_list)
      TrainReader: {sample_transforms: [...], batch_transforms: [...]}
      EvalReader: {...}
      TestReader: {...}
      optimizer: {type: AdamW, weight_decay: 0.0001, clip_grad_norm: 0.1}
      schedule: {type: Constant, warmup_start_factor: 0.001}

Readers use paddledet 2.6.0's own ops. Where 2.6.0 differs from the PaddleDetection the recipe was written
for (``configs/mask_rtdetr/_base_/mask_rtdetr_reader.yml`` at commit 666f597):

* the recipe runs ``Poly2Mask`` right after ``Decode``; 2.6.0's ``RandomExpand`` (``Pad``) moves polygons and
  boxes but not ``gt_segm`` masks, so the bundled configs rasterise the polygons *after* the geometric
  augmentations (``RandomCrop`` crops the polygons with ``is_mask_crop: true``). Neither ``Pad`` nor
  ``RandomCrop`` updates ``im_shape``, so this family sets ``im_shape`` to the image's current size just
  before ``Poly2Mask`` (which draws the masks at ``im_shape``);
* 2.6.0's ``RandomDistort`` and ``RandomCrop`` take no ``prob``: this family applies such an op with
  probability ``prob`` itself (the later releases' test). 2.6.0's ``RandomDistort`` also distorts colours
  in numpy where the later one uses PIL (same four distortions and ranges).

The batch the model trains on is what its loss expects: ``gt_class`` list of (n, 1) int64, ``gt_bbox`` list of
(n, 4) cx cy w h normalised to [0, 1] (``NormalizeBox`` + ``BboxXYXY2XYWH``), ``gt_segm`` list of (n, H, W).

Not done here: the recipe's weight EMA (decay 0.9999) -- the engine keeps no EMA copy of the weights.
"""
import copy
from pathlib import Path

import numpy as np

from ...errors import UserError
from ..base import ModelAdapter
from ..ppdet_ops import import_ppdet, predictor_ops, reader_ops, resize_ops
from ..outputs import parse_outputs as _parse_outputs

ARCHITECTURE = "MaskRTDETR"  # inference.yml ``arch``; outputs read like paddledet's box+mask models
OUTPUTS = ["bbox", "bbox_num", "mask"]
REFERENCE_SIZE = 640  # the recipe's eval size; ``input_size`` rescales reader sizes relative to it
SIZES = ("S", "M", "L", "X", "H")
# model knobs that change no weight shape (official checkpoints load whatever they are): name -> the recipe's value
KNOBS = {"num_queries": 300, "num_denoising": 100, "num_sample_points": 12544, "num_top_queries": 100}


class _SyncImShape:
    """``im_shape`` := the image's current (h, w); put before ``Poly2Mask`` (see the module docstring)."""

    def __call__(self, sample):
        sample["im_shape"] = np.array(sample["image"].shape[:2], dtype=np.float32)
        return sample

    def __repr__(self):
        return "SyncImShape"


class _WithProb:
    """Apply ``op`` with probability ``prob``, skipping it otherwise: the ``prob`` argument that PaddleDetection
    added to ``RandomDistort`` and ``RandomCrop`` after 2.6.0 (same test: ``random.random() > prob`` skips)."""

    def __init__(self, op, prob):
        self.op, self.prob = op, float(prob)

    def __call__(self, sample):
        import random

        return sample if random.random() > self.prob else self.op(sample)

    def __repr__(self):
        return f"{self.op!r} (prob {self.prob})"


def _split_prob(ops):
    """Drop ``prob`` from the ops whose paddledet 2.6.0 class does not take it; return (ops, probs or None)."""
    import inspect

    from ppdet.data import transform

    out, gates = [], []
    for op in ops:
        (name, args), = op.items()
        args = dict(args or {})
        prob = None
        cls = getattr(transform, name, None)
        if cls is None:
            raise UserError(f"Architecture reader op {name} is not a paddledet 2.6.0 transform")
        if "prob" in args and "prob" not in inspect.signature(cls.__init__).parameters:
            prob = args.pop("prob")
        out.append({name: args})
        gates.append(prob)
    return out, gates


class MaskRTDETRAdapter(ModelAdapter):
    name = "mask_rtdetr"
    architecture = ARCHITECTURE
    # any number of images per forward pass, all of one original size: the post-process takes each image's masks
    # with its own top-k queries but resizes them all to one (H, W) (a single [N, H, W] output). Models exported
    # before this (their post-process decoded image 0's masks only) say batch_size_limit: 1 and run one at a time.
    batch_size_limit = None
    batch_same_size = True
    masks_only = False

    def __init__(self, arch):
        self.arch = copy.deepcopy(dict(arch))
        size = str(self.arch.get("size") or "").upper()
        if size not in SIZES:
            raise UserError(f"Architecture.size={self.arch.get('size')!r} is not one of {', '.join(SIZES)} "
                            "(a Mask-RT-DETR config needs Architecture.size)")
        self.size = size
        for key in ("TrainReader", "EvalReader", "TestReader"):
            if not isinstance(self.arch.get(key), dict):
                raise UserError(f"Architecture.{key} is missing from the Mask-RT-DETR config")
        self.knobs = {}
        for key, default in KNOBS.items():
            value = self.arch.get(key, default)
            if value is None:
                value = default
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "num_denoising" else 1):
                raise UserError(f"Architecture.{key}={value!r} must be a positive integer")
            self.knobs[key] = int(value)
        mult = self.arch.get("backbone_lr_mult")
        if mult is not None and (not isinstance(mult, (list, tuple)) or len(mult) != 5):
            raise UserError(f"Architecture.backbone_lr_mult={mult!r} must list 5 factors (stem, stage 1..4) or be null")
        self.backbone_lr_mult = None if mult is None else [float(v) for v in mult]
        self.input_size = self.test_size()  # fails early on a TestReader without a fixed square Resize

    # ------------------------------------------------------------------ model
    def build_model(self, num_classes):
        import_ppdet()
        from . import build_mask_rtdetr
        from .configs import LOSS_CONFIG
        from .loss import MaskDINOLoss

        model = build_mask_rtdetr(self.size, int(num_classes), with_loss=True)
        tr = model.transformer
        tr.num_queries = self.knobs["num_queries"]
        tr.num_denoising = self.knobs["num_denoising"]
        model.post_process.num_top_queries = min(self.knobs["num_top_queries"],
                                                 self.knobs["num_queries"] * int(num_classes))
        if self.knobs["num_sample_points"] != LOSS_CONFIG["num_sample_points"]:
            model.loss = MaskDINOLoss(num_classes=int(num_classes),
                                      num_sample_points=self.knobs["num_sample_points"])
        if self.backbone_lr_mult is not None:
            for name, param in model.backbone.named_parameters():
                if param.stop_gradient:
                    continue
                part = name.split(".")
                index = 0 if part[0] == "stem" else int(part[1]) + 1
                param.optimize_attr["learning_rate"] = self.backbone_lr_mult[index]
        return model

    def load_pretrained(self, model, path, log=print):
        """Official (or own) Mask-RT-DETR ``.pdparams`` -> ``model`` through
        :func:`tutorial_lib.models.mask_rtdetr.load_pretrained`: every key must fit, except the class-dependent
        layers, which are re-initialised when the class count differs. Returns ``(loaded, skipped)`` names."""
        paddle = import_ppdet()
        from . import CLASS_DEPENDENT_KEYS, CheckpointMismatchError
        from . import load_pretrained as load_official

        from ..weights import weights_file

        file = weights_file(path)
        state = paddle.load(str(file))
        try:
            message = load_official(model, state)
        except CheckpointMismatchError as exc:
            raise UserError(f"Train.pretrain_weight_path={path} is not a Mask-RT-DETR-{self.size} checkpoint: "
                            f"{exc}") from None
        skipped = [k for k in CLASS_DEPENDENT_KEYS if "re-initialised" in message]
        loaded = [k for k in model.state_dict() if k not in skipped]
        log(f"pretrained weights {file.name}: {len(loaded)} tensors loaded; {message}")
        return loaded, skipped

    # ------------------------------------------------------------------ data
    def reader(self, mode):
        """``mode`` in train / eval / test -> (sample_transforms, batch_transforms) as op lists; ``input_size``
        rescales sample and batch ops' sizes relative to the recipe's 640 px."""
        sample, batch = reader_ops(self.arch, mode)
        size = self.arch.get("input_size")
        if size:
            names = ("Resize", "BatchRandomResize")
            sample = resize_ops(sample, int(size), REFERENCE_SIZE, names)
            batch = resize_ops(batch, int(size), REFERENCE_SIZE, names)
        return sample, batch

    def test_size(self):
        """The fixed (h, w) of the TestReader's Resize: the exported model's input size."""
        sample, _ = self.reader("test")
        for op in sample:
            (name, args), = op.items()
            if name == "Resize":
                args = args or {}
                target = args.get("target_size")
                target = [target, target] if isinstance(target, int) else list(target or [])
                if args.get("keep_ratio", True) or len(target) != 2:
                    raise UserError("Architecture.TestReader.Resize must have keep_ratio: false and a "
                                    "target_size [h, w] (the exported Mask-RT-DETR has a fixed input size)")
                return int(target[0]), int(target[1])
        raise UserError("Architecture.TestReader needs a Resize op")

    def compose(self, mode, num_classes):
        import_ppdet()
        from ppdet.data.reader import BatchCompose, Compose

        sample, batch = self.reader(mode)
        if mode == "train":
            names = [next(iter(op)) for op in sample + batch]
            needed = [n for n in ("Poly2Mask", "NormalizeBox", "BboxXYXY2XYWH", "Permute") if n not in names]
            if needed:
                raise UserError(f"Architecture.TrainReader lacks {', '.join(needed)}: Mask-RT-DETR trains on masks "
                                "(Poly2Mask) and on boxes as normalised cx, cy, w, h (NormalizeBox, BboxXYXY2XYWH)")
            if names.index("NormalizeBox") > names.index("BboxXYXY2XYWH"):
                raise UserError("Architecture.TrainReader: NormalizeBox must come before BboxXYXY2XYWH")
        sample, gates = _split_prob(sample)
        transforms = Compose(sample, num_classes=num_classes)
        ops = []
        for op, prob in zip(transforms.transforms_cls, gates):
            if type(op).__name__ == "Poly2Mask":
                ops.append(_SyncImShape())
            ops.append(op if prob is None else _WithProb(op, prob))
        transforms.transforms_cls = ops
        return transforms, BatchCompose(batch, num_classes=num_classes, collate_batch=False)

    @staticmethod
    def to_inputs(batch):
        """A batch (numpy; ground truth as per-image lists) -> the model's input dict of tensors."""
        import paddle

        inputs = {}
        for key in ("image", "im_shape", "scale_factor"):
            if key in batch:
                inputs[key] = paddle.to_tensor(np.asarray(batch[key], dtype=np.float32))
        if "gt_segm" in batch:  # a training batch (the TrainReader is checked to make these, see compose)
            h, w = (int(v) for v in inputs["image"].shape[2:])
            inputs["gt_class"] = [paddle.to_tensor(np.asarray(c, np.int64).reshape([-1, 1]))
                                  for c in batch["gt_class"]]
            inputs["gt_bbox"] = [paddle.to_tensor(np.asarray(b, np.float32).reshape([-1, 4]))
                                 for b in batch["gt_bbox"]]
            inputs["gt_segm"] = [paddle.to_tensor(np.asarray(s, np.float32).reshape([-1, h, w]))
                                 for s in batch["gt_segm"]]
        return inputs

    # ------------------------------------------------------------------ outputs
    def parse_outputs(self, outputs, batch_size, origin_shapes):
        """Model outputs -> one :class:`tutorial_lib.structures.Instances` per image."""
        return _parse_outputs(self.architecture, outputs, batch_size, origin_shapes)

    # ------------------------------------------------------------------ export
    def export(self, model, save_dir, filename="inference"):
        """Static Paddle Inference model with input ``image [None, 3, h, w]`` (h, w = the TestReader's size)."""
        import_ppdet()
        from .export import export_model

        height, width = self.test_size()
        model.eval()
        export_model(model, str(Path(save_dir) / filename), height=height, width=width)
        return list(OUTPUTS)

    def preprocess_spec(self):
        """The TestReader as the predictor's list of ops: a plain resize to the fixed export size, no padding."""
        sample, _ = self.reader("test")
        ops = predictor_ops(sample, stride=0)
        for entry in ops:
            if entry["type"] == "Resize":
                entry.update(keep_ratio=False, target_size=list(self.test_size()))
        return ops
