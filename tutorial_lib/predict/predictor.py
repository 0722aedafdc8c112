"""The predictor: an exported model (``inference.yml`` + the Paddle or ONNX files) run on images by the backend
``run_mode`` picks (:mod:`.backends`), one batch at a time, each result an :class:`~.result.InstanceSegResult`;
and ``-o Global.mode=predict`` (:func:`predict`), which saves every result in ``Global.output``."""
from pathlib import Path

import numpy as np
import yaml

from ..data.raster import RasterSettings
from ..errors import UserError
from ..models.outputs import parse_outputs
from .backends import ONNX_RUN_MODES, RUN_MODES, create_backend, default_run_mode
from .inputs import iter_sources
from .onnx_export import INT8_NAME
from .result import InstanceSegResult


def preprocess(image, ops):
    """RGB uint8 image -> (CHW float32 image, im_shape [h, w], scale_factor [sy, sx]) as paddledet's readers do."""
    import cv2

    im = image  # resized as uint8, like paddledet's readers (which decode to uint8 first)
    h0, w0 = image.shape[:2]
    im_shape = np.array([h0, w0], np.float32)
    scale = np.array([1.0, 1.0], np.float32)
    stride = 0
    chw = False
    for op in ops:
        kind = op["type"]
        if kind == "Resize":
            target = op["target_size"]
            if op.get("keep_ratio", True):
                s = min(min(target) / min(h0, w0), max(target) / max(h0, w0))
                sy = sx = s
                new_h, new_w = s * h0, s * w0
            else:
                new_h, new_w = target
                sy, sx = new_h / h0, new_w / w0
            im = cv2.resize(im, None, None, fx=sx, fy=sy, interpolation=int(op.get("interp", 1))).astype(np.float32)
            im_shape = np.array([new_h, new_w], np.float32)
            scale = np.array([sy, sx], np.float32)
        elif kind == "NormalizeImage":
            im = im.astype(np.float32)
            if op.get("is_scale", True):
                im *= 1.0 / 255.0
            if op.get("norm_type", "mean_std") == "mean_std":
                im -= np.array(op["mean"])[None, None, :]
                im /= np.array(op["std"])[None, None, :]
        elif kind == "Permute":
            im = im.transpose(2, 0, 1)
            chw = True
        elif kind == "PadStride":
            stride = int(op.get("stride", 0))
        else:
            raise UserError(f"inference.yml asks for preprocessing op {kind}, which this predictor does not know")
    im = im.astype(np.float32)
    if not chw:
        im = im.transpose(2, 0, 1)
    if stride > 0:
        c, h, w = im.shape
        ph, pw = int(np.ceil(h / stride) * stride), int(np.ceil(w / stride) * stride)
        padded = np.zeros((c, ph, pw), np.float32)
        padded[:, :h, :w] = im
        im = padded
    return np.ascontiguousarray(im, dtype=np.float32), im_shape, scale


def make_feed(images, ops):
    """A model's feed dict for a batch of RGB images: each preprocessed, padded at the bottom / right to the
    largest, with its ``im_shape`` and ``scale_factor`` rows."""
    prepared = [preprocess(img, ops) for img in images]
    max_h = max(p[0].shape[1] for p in prepared)
    max_w = max(p[0].shape[2] for p in prepared)
    batch = np.zeros((len(prepared), 3, max_h, max_w), np.float32)
    for i, (im, _, _) in enumerate(prepared):
        batch[i, :, :im.shape[1], :im.shape[2]] = im
    return {"image": batch, "im_shape": np.stack([p[1] for p in prepared]),
            "scale_factor": np.stack([p[2] for p in prepared])}


class Predictor:
    """Predictor over an exported model folder (Paddle Inference, ONNX Runtime or OpenVINO, by ``run_mode``).

    ``run_mode``: ``paddle`` (plain CPU/GPU kernels), ``mkldnn`` (oneDNN on CPU), ``onnxruntime`` (ONNX Runtime
    on ``inference.onnx``, converted with paddle2onnx on first use: Mask-RT-DETR models), ``openvino`` (OpenVINO's
    CPU plugin on the same ``inference.onnx``), ``trt_fp32`` /
    ``trt_fp16`` (GPU with TensorRT); default ``mkldnn`` on the CPU, ``paddle`` on a GPU; see
    :mod:`tutorial_lib.predict.backends`.
    ``threshold``: minimum score of the instances kept (default: ``draw_threshold`` of ``inference.yml``).
    ``batch_size``: images read and predicted together; the forward pass takes at most ``batch_size_limit`` of
    ``inference.yml`` at once (1 for paddledet models: their R-CNN heads fail on a batch in which one image has
    no detection, and SOLOv2 handles one image only; also 1 for Mask-RT-DETR models exported before their
    post-process decoded the masks of every image). A model with ``batch_same_size: true`` (Mask-RT-DETR: its masks
    come as one tensor at one original size) gets forward batches of images of one size only: the images read
    together are grouped by size (results still come in input order), so every image gets exactly the result it
    would get alone.
    ``raster_settings``: the :class:`~tutorial_lib.data.raster.RasterSettings` of a model trained on GeoTIFF chips
    (``RasterInput`` of ``inference.yml``: bands, dtype, training stretch), None for other models.
    """

    def __init__(self, model_dir, device="cpu", run_mode=None, batch_size=1, threshold=None, cpu_threads=None):
        from ..config import validate_device

        self.model_dir = Path(str(model_dir))
        self.device = validate_device(device)
        run_mode = run_mode or default_run_mode(self.device)
        if run_mode not in RUN_MODES:
            raise UserError(f"run_mode={run_mode!r} is not one of {', '.join(RUN_MODES)}")
        onnx = INT8_NAME if run_mode.endswith("int8") else "inference.onnx"
        needed = ["inference.yml"] + ([onnx] if (self.model_dir / onnx).is_file() and run_mode in ONNX_RUN_MODES
                                      else ["inference.pdmodel", "inference.pdiparams"])
        missing = [n for n in needed if not (self.model_dir / n).is_file()]
        if missing:
            raise UserError(f"{self.model_dir} is not an exported model (missing {', '.join(missing)}); export one "
                            "with -o Global.mode=export -o Export.weight_path=...")
        self.info = yaml.safe_load((self.model_dir / "inference.yml").read_text(encoding="utf-8"))
        self.model_name = self.info.get("Global", {}).get("model_name")
        self.labels = list(self.info.get("label_list") or [])
        self.arch = self.info.get("arch")
        self.output_names = list(self.info.get("outputs") or ["bbox", "bbox_num", "mask"])
        self.box_mask_threshold = self.info.get("box_mask_threshold")  # None: masks come at the image size
        raster = self.info.get("RasterInput")  # bands, dtype and stretch of GeoTIFF training chips (else absent)
        self.raster_settings = RasterSettings.from_dict(raster, "inference.yml RasterInput") if raster else None
        if batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {batch_size}")
        limit = self.info.get("batch_size_limit")
        self.batch_size_limit = int(limit) if limit else None  # None: any number of images per forward pass
        if run_mode.startswith("trt"):  # the TensorRT engines are built with max_batch_size=1 (backends.py)
            self.batch_size_limit = 1
        self.batch_same_size = bool(self.info.get("batch_same_size", False))  # forward batches of one image size
        self.batch_size = int(batch_size)  # images read and yielded together
        self.forward_batch = self._forward_batch(self.batch_size)
        self.threshold = float(self.info.get("draw_threshold", 0.5) if threshold is None else threshold)
        self.run_mode = run_mode
        self.backend = create_backend(str(self.model_dir), self.device, run_mode, cpu_threads)

    def _forward_batch(self, batch_size):
        """Images per forward pass when ``batch_size`` images are read together."""
        return min(batch_size, self.batch_size_limit) if self.batch_size_limit else batch_size

    def forward_groups(self, shapes, forward_batch=None):
        """The forward passes for images of these ``(h, w)`` shapes: lists of their indices, each at most
        ``forward_batch`` long (default: the predictor's) and, for a ``batch_same_size`` model, of one shape."""
        forward_batch = self.forward_batch if forward_batch is None else int(forward_batch)
        groups = {}
        for i, shape in enumerate(shapes):
            key = tuple(int(v) for v in shape[:2]) if self.batch_same_size and forward_batch > 1 else None
            groups.setdefault(key, []).append(i)
        return [group[start:start + forward_batch] for group in groups.values()
                for start in range(0, len(group), forward_batch)]

    def _run(self, images):
        """Preprocess a list of RGB images, run one forward pass, return raw outputs by name."""
        raw = dict(zip(self.output_names, self.backend.run(make_feed(images, self.info["Preprocess"]))))
        return parse_outputs(self.arch, raw, len(images), [img.shape[:2] for img in images], self.box_mask_threshold)

    def _result(self, path, image, instances, threshold=None):
        kept = instances.filter(self.threshold if threshold is None else threshold)
        return InstanceSegResult(path, kept, self.labels, image=image, model_name=self.model_name)

    def predict(self, inputs, threshold=None, batch_size=None):
        """Generator of :class:`InstanceSegResult`, one per input image, reading images batch by batch.

        ``threshold`` and ``batch_size`` override the predictor's own for this call only.
        """
        batch_size = self.batch_size if batch_size is None else int(batch_size)
        if batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {batch_size}")
        if threshold is not None and not 0 <= threshold <= 1:
            raise UserError(f"threshold must lie in [0, 1], got {threshold}")
        pending = []
        for path, load in iter_sources(inputs):
            pending.append((path, load()))
            if len(pending) == batch_size:
                yield from self._flush(pending, threshold, self._forward_batch(batch_size))
                pending = []
        if pending:
            yield from self._flush(pending, threshold, self._forward_batch(batch_size))

    __call__ = predict

    def _flush(self, pending, threshold=None, forward_batch=None):
        images = [img for _, img in pending]
        parsed = [None] * len(images)
        for group in self.forward_groups([img.shape for img in images], forward_batch):
            for i, item in zip(group, self._run([images[i] for i in group])):
                parsed[i] = item
        for (path, image), item in zip(pending, parsed):
            yield self._result(path, image, item, threshold)


def predict(cfg):
    """``-o Global.mode=predict``: predict ``Predict.input`` with ``Predict.model_dir``; save images + JSON to
    ``Global.output``; return a list of result dicts (the JSON form, plus where each was saved)."""
    p = cfg["Predict"]
    if not p.get("model_dir"):
        raise UserError("Predict.model_dir is not set; pass -o Predict.model_dir=output/best_model/inference")
    predictor = Predictor(p["model_dir"], device=cfg["Global"]["device"], run_mode=p["kernel_option"]["run_mode"],
                          batch_size=p["batch_size"], threshold=p.get("threshold"))
    out = Path(cfg["Global"]["output"])
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for i, result in enumerate(predictor.predict(p.get("input"))):
        stem = Path(result.input_path).stem if result.input_path else f"array_{i}"
        image_path = result.save_to_img(out / f"{stem}_res.png")
        json_path = result.save_to_json(out / f"{stem}_res.json")
        result.print()
        results.append({**result.json["res"], "save_img": image_path, "save_json": json_path,
                        "num_instances": len(result)})
    return results
