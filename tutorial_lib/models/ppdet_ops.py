"""The paddledet operations both model adapters use: importing ppdet the project's way (with the 0-D tensor fixes
of :mod:`.paddledet_compat`), resetting its module registry, and reading / rescaling / translating its reader ops
(``TrainReader`` etc. in a config's ``Architecture`` section) for training and for the predictor."""
import copy

from ..errors import UserError
from ..paddle_env import import_paddle

_PRISTINE = None
_PPDET_READY = False


def import_ppdet():
    """Import paddle (:func:`tutorial_lib.paddle_env.import_paddle`), then ppdet with its chatter silenced and the
    0-D tensor fixes of :mod:`.paddledet_compat` applied; return the ``paddle`` module. Only the adapters and the
    training engine call this: deployment (exported models) never imports ppdet."""
    global _PPDET_READY
    paddle = import_paddle()
    if not _PPDET_READY:
        import contextlib
        import io
        import logging

        with contextlib.redirect_stdout(io.StringIO()):  # ppdet prints "Warning: Unable to use MOT ..." lines
            import ppdet  # noqa: F401  (registers modules)
            import ppdet.modeling  # noqa: F401

        for name in ("ppdet", "ppdet.utils.checkpoint", "ppdet.data.source.coco", "ppdet.utils.logger"):
            logging.getLogger(name).setLevel(logging.ERROR)
        from . import paddledet_compat

        paddledet_compat.apply()
        _PPDET_READY = True
    return paddle


def reset_workspace():
    """Put paddledet's global module config back to how it was after import."""
    global _PRISTINE
    from ppdet.core import workspace
    from ppdet.core.config.schema import SchemaDict

    config = workspace.global_config
    if _PRISTINE is None:
        _PRISTINE = {}
        for key, value in config.items():
            if isinstance(value, SchemaDict):
                _PRISTINE[key] = (value, {k: copy.deepcopy(dict.__getitem__(value, k)) for k in value.keys()})
            else:
                _PRISTINE[key] = (None, copy.deepcopy(value))
    for key in list(config.keys()):
        if key not in _PRISTINE:
            del config[key]
    for key, (schema_dict, items) in _PRISTINE.items():
        if schema_dict is None:
            config[key] = copy.deepcopy(items)
        else:
            dict.clear(schema_dict)
            for k, v in items.items():
                dict.__setitem__(schema_dict, k, copy.deepcopy(v))
            dict.__setitem__(config, key, schema_dict)


def scale_size(value, size, reference):
    """A reader size meant for ``reference`` px -> the same size for ``size`` px (multiples of 32 when ``size`` is
    one)."""
    if size % 32 == 0:
        return int(max(32, round(value * size / reference / 32.0) * 32))
    return int(round(value * size / reference))


def resize_ops(ops, size, reference, names=("Resize", "RandomResize")):
    """A copy of ``ops`` in which the ``target_size`` of the ops called ``names`` (a size, ``[h, w]`` or a list of
    those) is scaled so that ``reference`` becomes ``size``."""
    out = []
    for op in ops:
        (name, args), = op.items()
        args = copy.deepcopy(dict(args or {}))
        if name in names and "target_size" in args:
            target = args["target_size"]
            if isinstance(target, (list, tuple)) and target and isinstance(target[0], (list, tuple)):
                args["target_size"] = [[scale_size(v, size, reference) for v in t] for t in target]
            elif isinstance(target, (list, tuple)):
                args["target_size"] = [scale_size(v, size, reference) for v in target]
            else:
                args["target_size"] = scale_size(target, size, reference)
        out.append({name: args})
    return out


def reader_ops(arch, mode):
    """``mode`` in train / eval / test -> copies of the reader's (sample_transforms, batch_transforms)."""
    reader = arch[{"train": "TrainReader", "eval": "EvalReader", "test": "TestReader"}[mode]]
    return list(reader.get("sample_transforms") or []), list(reader.get("batch_transforms") or [])


def predictor_ops(sample_transforms, stride=0):
    """paddledet sample transforms -> the predictor's ops (``Decode`` dropped, defaults made explicit)."""
    ops = []
    for op in sample_transforms:
        (name, args), = op.items()
        if name == "Decode":
            continue
        if name not in ("Resize", "NormalizeImage", "Permute"):
            raise UserError(f"TestReader op {name} has no predictor equivalent")
        entry = {"type": name, **copy.deepcopy(args or {})}
        if name == "Resize":
            entry.setdefault("keep_ratio", True)
            entry.setdefault("interp", 1)
            target = entry["target_size"]
            entry["target_size"] = [target, target] if isinstance(target, int) else list(target)
        if name == "NormalizeImage":
            entry.setdefault("is_scale", True)
            entry.setdefault("norm_type", "mean_std")
        ops.append(entry)
    ops.append({"type": "PadStride", "stride": stride})
    return ops
