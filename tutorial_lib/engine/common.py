"""What train, evaluate and export share: preparing paddle, the model's identity (meta), rebuilding a
trained model from its checkpoint, and running a model over a dataset split."""
import copy

import numpy as np

from ..errors import UserError
from . import checkpoint, distributed
from ..models.adapters import get_adapter
from ..models.ppdet_ops import import_ppdet


def prepare(cfg):
    paddle = import_ppdet()
    distributed.set_device(cfg["Global"]["device"])
    return paddle


def model_meta(cfg, num_classes, label_list):
    """Everything needed to rebuild the model later (stored in every ``.pdstates``), and for a GeoTIFF chip dataset
    the bands and stretch its rasters were read with (``raster_input``: every export of the model applies them)."""
    meta = {"model_name": cfg["Global"]["model"], "architecture": copy.deepcopy(cfg["Architecture"]),
            "num_classes": int(num_classes), "label_list": list(label_list)}
    raster = dataset_raster_settings(cfg)
    if raster is not None:
        meta["raster_input"] = raster.to_dict()
    return meta


def dataset_raster_settings(cfg):
    """The :class:`RasterSettings` of ``Global.dataset_dir`` when it is a GeoTIFF chip dataset, else None."""
    from ..data.geochips import raster_settings

    dataset_dir = cfg["Global"].get("dataset_dir")
    return raster_settings(dataset_dir) if dataset_dir else None


def meta_from_checkpoint(prefix, cfg, dataset_labels=None):
    """The meta saved with a checkpoint, or (official / foreign checkpoints) one made from ``cfg``."""
    states = checkpoint.load_states(prefix)
    meta = states.get("meta") if isinstance(states, dict) else None
    if meta:
        return meta
    labels = dataset_labels
    num_classes = cfg["Train"]["num_classes"] or (len(labels) if labels else None)
    if num_classes is None:
        raise UserError(f"{prefix}.pdparams has no .pdstates saying how many classes it has; "
                        "set -o Train.num_classes=N")
    if not labels or len(labels) != num_classes:
        labels = [str(i) for i in range(num_classes)]
    return model_meta(cfg, num_classes, labels)


def build_from_meta(meta):
    adapter = get_adapter({"Global": {"model": meta["model_name"]}, "Architecture": meta["architecture"]})
    model = adapter.build_model(meta["num_classes"])
    return adapter, model


def load_trained(prefix, cfg, dataset_labels=None):
    """Rebuild the model a checkpoint was trained as and load its weights (every tensor must fit)."""
    meta = meta_from_checkpoint(prefix, cfg, dataset_labels)
    adapter, model = build_from_meta(meta)
    state = checkpoint.load_params(prefix)
    checkpoint.load_matching(model, state, strict=True)
    model.eval()
    return adapter, model, meta


def predict_split(model, adapter, split, num_classes, progress=None):
    """Run ``model`` (eval mode, no grad) over every image of ``split``; ``{image_id: Instances}``."""
    paddle = import_ppdet()
    transforms, batch_transforms = adapter.compose("eval", num_classes)
    from .data import eval_batches

    was_training = model.training
    model.eval()
    predictions = {}
    with paddle.no_grad():
        for records, batch in eval_batches(split, transforms, batch_transforms, batch_size=1):
            outputs = model(adapter.to_inputs(batch))
            origin = [(int(r["h"]), int(r["w"])) for r in records]
            for record, inst in zip(records, adapter.parse_outputs(outputs, len(records), origin)):
                predictions[int(np.asarray(record["im_id"]).reshape(-1)[0])] = inst
            if progress is not None:
                progress.update(len(records))
    if was_training:
        model.train()
    return predictions
