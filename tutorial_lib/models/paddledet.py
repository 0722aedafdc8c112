"""paddledet models: build one from the ``Architecture`` section, feed it batches, read its outputs, export it.

The ``Architecture`` section of a paddledet model config is complete in itself (paddledet ships no YAML)::

    Architecture:
      family: paddledet
      architecture: MaskRCNN          # a paddledet architecture class
      input_size: 256                 # optional: rescales every Resize/RandomResize of the readers
      components: {MaskRCNN: {...}, ResNet: {...}, FPN: {...}, RPNHead: {...}, ...}
      TrainReader: {sample_transforms: [...], batch_transforms: [...]}
      EvalReader: {...}
      TestReader: {...}
      optimizer: {type: Momentum, momentum: 0.9, weight_decay: 0.0001, clip_grad_norm: null}
      schedule: {type: PiecewiseDecay, milestones: [0.67, 0.89], gamma: 0.1, warmup_start_factor: 0.1}

``components`` uses paddledet's own YAML vocabulary (the keys of its registered classes), written as plain
YAML (no ``!Tags``). paddledet keeps its module registry in one process-wide dict; every build starts from
a pristine copy of it, so that two models built in one process never see each other's settings.
"""
import copy

import numpy as np

from ..errors import UserError
from .base import ModelAdapter
from .outputs import SEGM_ARCHS, output_names, parse_outputs
from .ppdet_ops import import_ppdet, predictor_ops, reader_ops, reset_workspace, resize_ops
from .weights import load_pretrained

def _box_mask_probabilities(mask_out, bboxes, bbox_num, origin_shape):
    """Stands in for paddledet's ``MaskPostProcess``: keep the (N, M, M) mask probabilities on their boxes."""
    return mask_out


class PaddleDetAdapter(ModelAdapter):
    name = "paddledet"
    # paddledet 2.6.0's R-CNN mask/box heads fail on a batch in which some image has no detection at all
    # (distribute_fpn_proposals on zero rois), and SOLOv2 predicts one image at a time: exported paddledet
    # models therefore run one image per forward pass.
    batch_size_limit = 1

    def __init__(self, arch):
        self.arch = copy.deepcopy(dict(arch))
        for key in ("architecture", "components", "TrainReader", "EvalReader", "TestReader"):
            if key not in self.arch:
                raise UserError(f"Architecture.{key} is missing from the model config (a paddledet model needs "
                                "architecture, components, TrainReader, EvalReader and TestReader)")
        self.architecture = str(self.arch["architecture"])

    # ------------------------------------------------------------------ model
    @property
    def masks_only(self):
        return self.architecture in SEGM_ARCHS

    @property
    def box_mask_threshold(self):
        """R-CNN models (a ``mask_post_process``): the model returns each detection's mask probabilities on its
        box and :func:`~tutorial_lib.models.outputs.paste_box_masks` pastes them with this threshold (paddledet's
        ``MaskPostProcess.binary_thresh``), in evaluation and in the exported model alike. None for the others."""
        if "mask_post_process" not in dict(self.arch["components"].get(self.architecture) or {}):
            return None
        return float(dict(self.arch["components"].get("MaskPostProcess") or {}).get("binary_thresh", 0.5))

    def build_model(self, num_classes):
        import_ppdet()
        from ppdet.core import workspace

        reset_workspace()
        components = copy.deepcopy(self.arch["components"])
        unknown = [k for k in components if k not in workspace.global_config]
        if unknown:
            raise UserError(f"Architecture.components names {unknown}, which paddledet 2.6.0 does not register")
        if self.architecture not in components:
            raise UserError(f"Architecture.components has no entry for architecture {self.architecture!r}")
        workspace.merge_config({"num_classes": int(num_classes), **components})
        model = workspace.create(self.architecture)
        model.load_meanstd(self.arch["TestReader"]["sample_transforms"])
        if self.box_mask_threshold is not None:
            model.mask_post_process = _box_mask_probabilities
        return model

    # ------------------------------------------------------------------ data
    def reader(self, mode):
        """``mode`` in train / eval / test -> (sample_transforms, batch_transforms) as op lists; ``input_size``
        rescales the sample ops' sizes relative to the EvalReader's."""
        sample, batch = reader_ops(self.arch, mode)
        size = self.arch.get("input_size")
        if size:
            sample = resize_ops(sample, int(size), self.reference_size())
        return sample, batch

    def reference_size(self):
        for op in self.arch["EvalReader"]["sample_transforms"]:
            (name, args), = op.items()
            if name == "Resize":
                target = args["target_size"]
                return float(min(target) if isinstance(target, (list, tuple)) else target)
        raise UserError("Architecture.EvalReader needs a Resize op")

    @staticmethod
    def load_pretrained(model, path, log=print):
        """Official or own ``.pdparams`` -> ``model`` by parameter name and shape (:func:`.weights.load_pretrained`);
        class-dependent layers that do not fit are re-initialised. Returns ``(loaded, skipped)``."""
        return load_pretrained(model, path, log=log)

    def compose(self, mode, num_classes):
        import_ppdet()
        from ppdet.data.reader import BatchCompose, Compose

        sample, batch = self.reader(mode)
        return Compose(sample, num_classes=num_classes), BatchCompose(batch, num_classes=num_classes,
                                                                      collate_batch=False)

    @staticmethod
    def to_inputs(batch):
        """A collated numpy batch -> the model's input dict (tensors; polygons stay numpy)."""
        import paddle

        inputs = {}
        for key, value in batch.items():
            if key in ("gt_poly", "im_file"):
                inputs[key] = value
            elif isinstance(value, np.ndarray):
                inputs[key] = paddle.to_tensor(value)
            elif isinstance(value, list) and value and isinstance(value[0], np.ndarray):
                inputs[key] = [paddle.to_tensor(v) for v in value]
            else:
                inputs[key] = value
        return inputs

    # ------------------------------------------------------------------ outputs
    def parse_outputs(self, outputs, batch_size, origin_shapes):
        """Model outputs (dict of tensors or numpy arrays) -> one :class:`tutorial_lib.structures.Instances` per
        image (:func:`tutorial_lib.models.outputs.parse_outputs`)."""
        return parse_outputs(self.architecture, outputs, batch_size, origin_shapes, self.box_mask_threshold)

    # ------------------------------------------------------------------ export
    def export(self, model, save_dir, filename="inference"):
        """Convert the (eval-mode) dygraph model to a static Paddle Inference model in ``save_dir``."""
        paddle = import_ppdet()
        from paddle.static import InputSpec

        model.eval()
        if hasattr(model, "deploy"):
            model.deploy = True
        batch = 1 if self.masks_only else None
        spec = [{"image": InputSpec(shape=[batch, 3, -1, -1], dtype="float32", name="image"),
                 "im_shape": InputSpec(shape=[batch, 2], dtype="float32", name="im_shape"),
                 "scale_factor": InputSpec(shape=[batch, 2], dtype="float32", name="scale_factor")}]
        static = paddle.jit.to_static(model, input_spec=spec, full_graph=True)
        paddle.jit.save(static, str(save_dir / filename), input_spec=spec)
        return output_names(self.architecture)

    def preprocess_spec(self):
        """The TestReader as the predictor's list of ops (Resize, NormalizeImage, Permute, PadStride)."""
        sample, batch = self.reader("test")
        stride = 0
        for op in batch:
            (name, args), = op.items()
            if name == "PadBatch":
                stride = int((args or {}).get("pad_to_stride", 0))
        return predictor_ops(sample, stride)
