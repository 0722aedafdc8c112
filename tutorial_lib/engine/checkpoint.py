"""Checkpoints in PaddleX's layout: ``NAME/NAME.pdparams`` (weights), ``.pdopt`` (optimizer), ``.pdstates``
(where training stands: epoch, step, random seeds' position, metric history, and the model's architecture,
classes and name, so that evaluate / export / resume rebuild exactly what was trained).

With weight EMA (``Architecture.use_ema``) PaddleDetection's trainer swaps the two sets of weights when it saves
(``ppdet.utils.checkpoint.save_model(..., ema_model=...)``): ``.pdparams`` holds the averaged weights (so that
evaluation, export and prediction, which read ``.pdparams``, use them) and ``.pdema`` the raw training weights;
resuming loads ``.pdema`` into the model and ``.pdparams`` into the average. This module does the same."""
import shutil
from pathlib import Path

from ..errors import UserError
from ..models.weights import weights_file
from . import runtime


def save(folder, name, model, optimizer=None, states=None):
    """Write ``folder/name.pdparams`` (+ ``.pdopt``, ``.pdstates``); return the paths written."""
    paddle = runtime.setup()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"pdparams": folder / f"{name}.pdparams"}
    paddle.save(model.state_dict(), str(paths["pdparams"]))
    if optimizer is not None:
        paths["pdopt"] = folder / f"{name}.pdopt"
        paddle.save(optimizer.state_dict(), str(paths["pdopt"]))
    if states is not None:
        paths["pdstates"] = folder / f"{name}.pdstates"
        paddle.save(states, str(paths["pdstates"]))
    return {k: str(v) for k, v in paths.items()}


def save_training(folder, name, model, optimizer_state, states, ema=None):
    """A training checkpoint: ``.pdparams`` (the EMA weights when ``ema`` is given, else the model's), ``.pdema``
    (the raw weights, with ``ema`` only), ``.pdopt`` (``optimizer_state``) and ``.pdstates`` (``states``, plus the
    EMA's step counter under ``"ema"``). Returns the paths written, by extension."""
    paddle = runtime.setup()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    if ema is None:
        paths.update(save(folder, name, model, None, states))
    else:
        paths["pdparams"] = str(folder / f"{name}.pdparams")
        paddle.save(ema.state_dict(model), paths["pdparams"])
        paths["pdema"] = str(folder / f"{name}.pdema")
        paddle.save(model.state_dict(), paths["pdema"])
        paths["pdstates"] = str(folder / f"{name}.pdstates")
        paddle.save({**states, "ema": ema.states()}, paths["pdstates"])
    paths["pdopt"] = str(folder / f"{name}.pdopt")
    paddle.save(optimizer_state, paths["pdopt"])
    return paths


def load_training(prefix):
    """``(raw weights, EMA weights or None)`` of a checkpoint: ``.pdema`` + ``.pdparams`` when it was saved with
    EMA, else ``.pdparams`` + None."""
    paddle = runtime.setup()
    ema_file = Path(str(prefix) + ".pdema")
    if ema_file.is_file():
        return paddle.load(str(ema_file)), load_params(prefix)
    return load_params(prefix), None


def copy_checkpoint(src_folder, src_name, dst_folder, dst_name):
    dst_folder = Path(dst_folder)
    if dst_folder.exists():
        shutil.rmtree(dst_folder)
    dst_folder.mkdir(parents=True)
    out = {}
    for ext in ("pdparams", "pdema", "pdopt", "pdstates"):
        src = Path(src_folder) / f"{src_name}.{ext}"
        if src.exists():
            shutil.copyfile(src, dst_folder / f"{dst_name}.{ext}")
            out[ext] = str(dst_folder / f"{dst_name}.{ext}")
    return out


def resolve(path, key):
    """A ``.pdparams`` file, its prefix, or a folder holding one .pdparams -> the prefix ``Path`` (no suffix)."""
    if path is None:
        raise UserError(f"{key} is not set; pass -o {key}=output/best_model/best_model.pdparams")
    p = Path(str(path))
    if p.is_dir():
        found = sorted(p.glob("*.pdparams"))
        if len(found) != 1:
            raise UserError(f"{key}={path} is a folder with {len(found)} .pdparams files; name the file")
        return found[0].with_suffix("")
    if p.suffix == ".pdema":
        raise UserError(f"{key}={path}: a .pdema file holds the raw training weights of an EMA run; pass the "
                        ".pdparams next to it (the EMA weights, which PaddleDetection and PaddleX evaluate and export)")
    if p.suffix in (".pdparams", ".pdopt", ".pdstates"):
        p = p.with_suffix("")
    if not p.with_suffix(".pdparams").is_file():
        raise UserError(f"{key}={path}: no such weights file ({p.with_suffix('.pdparams')})")
    return p


def load_states(prefix):
    paddle = runtime.setup()
    path = Path(str(prefix) + ".pdstates")
    return paddle.load(str(path)) if path.is_file() else {}


def load_params(prefix):
    paddle = runtime.setup()
    return paddle.load(str(prefix) + ".pdparams")


def load_matching(model, state, strict=False):
    """Load the tensors of ``state`` whose names and shapes match ``model``'s; return (loaded, skipped).

    ``skipped`` lists ``(name, reason)``: layers whose shape depends on the number of classes
    (classification and mask logits) are re-initialised this way when a checkpoint has another class count.
    """
    own = model.state_dict()
    loaded, skipped, matched = [], [], {}
    for name, value in state.items():
        if name not in own:
            skipped.append((name, "not in this model"))
            continue
        if list(value.shape) != list(own[name].shape):
            skipped.append((name, f"shape {list(value.shape)} != {list(own[name].shape)}"))
            continue
        matched[name] = value
        loaded.append(name)
    if strict and (skipped or len(loaded) != len(own)):
        missing = [n for n in own if n not in matched]
        reason = skipped[0] if skipped else (missing[0], "missing from checkpoint")
        raise UserError(f"checkpoint does not match the model: {reason[0]} ({reason[1]})")
    model.set_state_dict(matched)
    return loaded, skipped


def load_pretrained(model, path, log=print):
    """Official or own ``.pdparams`` -> model; class-dependent layers that do not fit are re-initialised."""
    paddle = runtime.setup()
    file = weights_file(path)
    state = paddle.load(str(file))
    loaded, skipped = load_matching(model, state)
    if not loaded:
        raise UserError(f"Train.pretrain_weight_path={path} shares no layer with this model; wrong checkpoint?")
    log(f"pretrained weights {file.name}: {len(loaded)} tensors loaded"
        + (f", {len(skipped)} re-initialised because they do not fit this model (e.g. other num_classes): "
           + ", ".join(name for name, _ in skipped[:6]) + (" ..." if len(skipped) > 6 else "") if skipped else ""))
    return loaded, skipped
