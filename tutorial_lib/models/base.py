"""The model-adapter contract: what the engine, the exporter and the predictor may ask of a model family.

An adapter turns a config's ``Architecture`` section into a model and knows how that model is fed, read and
exported; nothing outside ``models/`` knows which family it is talking to. Two adapters implement it:
:class:`tutorial_lib.models.paddledet.PaddleDetAdapter` (Mask R-CNN, Cascade, SOLOv2 through ppdet) and
:class:`tutorial_lib.models.mask_rtdetr.adapter.MaskRTDETRAdapter` (this library's Mask-RT-DETR S-H). A new family
subclasses :class:`ModelAdapter`, implements every abstract method and registers in
:func:`tutorial_lib.models.adapters.adapter_class`; the attributes below have defaults that fit most models.

The call order during training (:mod:`tutorial_lib.engine.train`)::

    adapter = get_adapter(cfg)                       # __init__(cfg["Architecture"])
    model = adapter.build_model(num_classes)         # random weights, after the engine seeded everything
    adapter.load_pretrained(model, path, log)        # Train.pretrain_weight_path, unless resuming
    transforms, batch_transforms = adapter.compose("train", num_classes)
    outputs = model(adapter.to_inputs(batch))        # a dict with "loss" and its terms
    adapter.parse_outputs(outputs, n, shapes)        # evaluation: one Instances per image
    adapter.export(model, folder) + adapter.preprocess_spec()   # the static model and inference.yml
"""
import abc
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, List, Optional, Sequence, Tuple

from ..structures import Instances


class ModelAdapter(abc.ABC):
    """One model family. ``arch`` is the config's ``Architecture`` section (a dict)."""

    #: ``Architecture.adapter`` value and the ``adapter`` key of ``inference.yml``
    name: ClassVar[str]
    #: images per forward pass of the exported model (None: any number)
    batch_size_limit: ClassVar[Optional[int]] = None
    #: True: a forward pass of several images needs them all at one original size (the model returns one
    #: ``[N, H, W]`` mask tensor at that size); the predictor and the server's micro-batching group images by size
    batch_same_size: ClassVar[bool] = False
    #: R-CNN models: the model returns each detection's mask probabilities on its box, pasted with this threshold
    #: by :func:`tutorial_lib.models.outputs.paste_box_masks`; None when the model returns whole-image masks
    box_mask_threshold: Optional[float] = None
    #: the paddledet / Mask-RT-DETR architecture name (``inference.yml``'s ``arch``)
    architecture: str

    @abc.abstractmethod
    def __init__(self, arch: Dict[str, Any]) -> None:
        ...

    @abc.abstractmethod
    def build_model(self, num_classes: int) -> Any:
        """A new ``paddle.nn.Layer`` with random weights for ``num_classes`` classes."""

    @abc.abstractmethod
    def load_pretrained(self, model: Any, path: str, log: Callable[[str], Any] = print) -> Tuple[list, list]:
        """Load ``path`` (a ``.pdparams`` file, URL or official name already resolved) into ``model``; class-dependent
        layers that do not fit are re-initialised. Returns ``(loaded, skipped)`` tensor names."""

    @abc.abstractmethod
    def compose(self, mode: str, num_classes: int) -> Tuple[Any, Any]:
        """``(sample_transforms, batch_transforms)`` callables for ``mode`` in train / eval / test."""

    @abc.abstractmethod
    def to_inputs(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        """A collated numpy batch -> the model's input dict."""

    @abc.abstractmethod
    def parse_outputs(self, outputs: Dict[str, Any], batch_size: int,
                      origin_shapes: Sequence[Sequence[int]]) -> List[Instances]:
        """The model's outputs (dygraph tensors or the exported model's arrays) -> one Instances per image."""

    @abc.abstractmethod
    def export(self, model: Any, save_dir: Path, filename: str = "inference") -> List[str]:
        """Save the eval-mode model as a static Paddle Inference model; return its output names in order."""

    @abc.abstractmethod
    def preprocess_spec(self) -> List[Dict[str, Any]]:
        """The predictor's preprocessing ops (``inference.yml``'s ``Preprocess``)."""
