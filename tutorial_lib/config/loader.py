"""Load a PaddleX-style module config, apply ``-o Section.key=value`` overrides, validate, save.

A config is a plain nested dict with the sections of :data:`schema.DEFAULTS`.
Values given on the command line are parsed as YAML scalars (never ``eval``),
so ``True``, ``null``/``None``, ``[1, 2]``, ``0.001`` and ``1e-4`` all mean what they say.
"""
import copy
import difflib
import re
import sys
from pathlib import Path

import yaml

from ..errors import UserError
from . import schema

_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def parse_value(text):
    """Parse one override value as a YAML scalar/list; ``None``, ``none`` and an empty string mean null."""
    text = text.strip()
    if text in ("", "None", "none", "~"):
        return None
    if _FLOAT.match(text) and not re.match(r"^[-+]?\d+$", text):
        return float(text)  # PyYAML reads "1e-4" as a string; a user means a number
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"cannot parse value {text!r}: {str(exc).splitlines()[0]}") from None


def parse_override(text):
    """``"Train.learning_rate=0.001"`` -> ``(["Train", "learning_rate"], 0.001)``."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(f"override {text!r} must look like Section.key=value (e.g. -o Global.mode=train)")
    path = key.split(".")
    if any(not part for part in path):
        raise UserError(f"override key {key!r} has an empty part; write Section.key=value")
    return path, parse_value(value)


def _unknown_key(dotted, source):
    section, _, leaf = dotted.partition(".")
    same_section = [k for k in schema.all_keys() if k.startswith(section + ".")]
    if same_section and leaf:  # compare the key names within the section the user meant
        leaves = {k[len(section) + 1:]: k for k in same_section}
        close = [leaves[m] for m in difflib.get_close_matches(leaf, list(leaves), n=3, cutoff=0.6)]
    else:
        close = difflib.get_close_matches(dotted, schema.all_keys() + list(schema.DEFAULTS), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else (
        f"; known sections: {', '.join(list(schema.DEFAULTS) + list(schema.FREEFORM_SECTIONS))}")
    raise UserError(f"unknown config key {dotted!r} in {source}{hint}")


def _coerce(dotted, default, value, source):
    """Check ``value`` against the type of the schema default; return it (ints widen to floats)."""
    if value is None or default is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        value = str(value) if ok else value
    else:
        ok = True
    if not ok:
        raise UserError(f"{dotted} in {source} must be {type(default).__name__}, got {value!r}")
    return value


def set_key(cfg, path, value, source="overrides"):
    """Set ``cfg[path[0]][path[1]]... = value`` after checking the key exists and the type fits."""
    dotted = ".".join(path)
    if path[0] in schema.FREEFORM_SECTIONS:
        node = cfg.setdefault(path[0], {})
        for part in path[1:-1]:
            node = node.setdefault(part, {})
        if len(path) == 1:
            cfg[path[0]] = value
        else:
            node[path[-1]] = value
        return
    default, node = schema.DEFAULTS, cfg
    for depth, part in enumerate(path):
        if not isinstance(default, dict) or part not in default:
            _unknown_key(dotted, source)
        default = default[part]
        if depth < len(path) - 1:
            node = node.setdefault(part, {})
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise UserError(f"{dotted} in {source} is a section; set its keys, e.g. {dotted}.{next(iter(default))}=...")
        for key, sub in value.items():
            set_key(cfg, path + [str(key)], sub, source)
        return
    value = _coerce(dotted, default, value, source)
    choices = schema.CHOICES.get(dotted)
    if choices and value not in choices:
        raise UserError(f"{dotted}={value!r} in {source} is not one of {', '.join(map(str, choices))}")
    node[path[-1]] = value


def _read_yaml(path):
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"config {path} is not valid YAML ({where.strip() or 'unknown place'}): "
                        f"{getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"config {path} must be a mapping of sections (Global:, Train:, ...), got {type(data).__name__}")
    return data


def _flatten(tree, prefix=()):
    for key, value in tree.items():
        path = prefix + (str(key),)
        is_section = isinstance(value, dict) and value and path[0] not in schema.FREEFORM_SECTIONS
        if is_section:
            yield from _flatten(value, path)
        else:
            yield list(path), value


BUNDLED_DIR = Path(__file__).resolve().parent.parent / "configs"


def bundled_configs():
    """Model name -> bundled YAML (``tutorial_lib/configs/<model>.yaml``), in name order."""
    return {path.stem: path for path in sorted(BUNDLED_DIR.glob("*.yaml"))}


# PaddleX's config paths, as its tutorials write them: paddlex/configs/modules/<module>/<model>.yaml (3.0) and
# paddlex/configs/<module>/<model>.yaml (3.0 beta). Only instance segmentation lives in this library.
_PADDLEX_PATH = re.compile(r"(?:^|/)paddlex/configs/(?:modules/)?(?P<module>[\w-]+)/(?P<model>[^/]+)\.ya?ml$")
PADDLEX_MODULE = "instance_segmentation"


def paddlex_config_model(config):
    """The model name in a PaddleX config path (``paddlex/configs/modules/instance_segmentation/X.yaml`` -> ``X``),
    or None when ``config`` is no such path."""
    match = _PADDLEX_PATH.search(str(config).replace("\\", "/"))
    if not match:
        return None
    if match.group("module") != PADDLEX_MODULE:
        raise UserError(f"{config} is a PaddleX config of the {match.group('module')!r} module; this library runs "
                        f"only {PADDLEX_MODULE} (paddlex/configs/modules/{PADDLEX_MODULE}/<model>.yaml)")
    return match.group("model")


def _unknown_model(what, name, bundled):
    close = difflib.get_close_matches(name, list(bundled), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else f"; registered models: {', '.join(bundled)}"
    return UserError(what + hint)


def resolve_config_path(config, notice=None):
    """A YAML path, a model name whose bundled YAML lives in ``tutorial_lib/configs``, or a PaddleX config path
    (``paddlex/configs/modules/instance_segmentation/<model>.yaml``) that does not exist here: then the bundled
    config of ``<model>`` is used and ``notice`` (default: one line on stderr) says so."""
    bundled = bundled_configs()
    path = Path(config)
    if path.exists():
        return path
    model = paddlex_config_model(config)
    if model is not None:
        if model not in bundled:
            raise _unknown_model(f"{config} does not exist here and {model!r} is not a registered model", model,
                                 bundled)
        (notice or _stderr)(f"notice: {config} does not exist here; using the bundled config of {model} "
                            f"({bundled[model]})")
        return bundled[model]
    if path.suffix in (".yaml", ".yml"):
        raise UserError(f"config file {config} does not exist")
    if config in bundled:
        return bundled[config]
    raise _unknown_model(f"{config!r} is neither a YAML file nor a registered model", config, bundled)


def _stderr(message):
    print(message, file=sys.stderr, flush=True)


def normalize_overrides(overrides):
    """Accept ``["A.b=1", ...]``, ``{"A.b": 1, ...}`` or ``[(["A", "b"], 1), ...]``; give ``[(path, value), ...]``."""
    if not overrides:
        return []
    if isinstance(overrides, dict):
        return [(str(k).split("."), v) for k, v in overrides.items()]
    if isinstance(overrides, str):
        overrides = [overrides]
    return [item if isinstance(item, tuple) else parse_override(item) for item in overrides]


def load_config(config=None, overrides=None):
    """Build a validated config from defaults, a YAML file or model name, then overrides (in that order).

    ``config`` may be ``None`` (defaults only), a dict, a YAML path, or a model name such as
    ``"Mask-RT-DETR-S"``. ``overrides`` is a list of ``"Section.key=value"`` strings or a dict.
    """
    cfg = copy.deepcopy(schema.DEFAULTS)
    if isinstance(config, dict):
        data, source = config, "config dict"
    elif config is not None:
        path = resolve_config_path(str(config))
        data, source = _read_yaml(path), str(path)
    else:
        data, source = {}, "defaults"
    for path, value in _flatten(data):
        set_key(cfg, path, value, source)
    for path, value in normalize_overrides(overrides):
        set_key(cfg, path, value, "-o overrides")
    validate(cfg)
    return cfg


def get(cfg, dotted, default=None):
    """``get(cfg, "Train.learning_rate")``."""
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def validate(cfg):
    """Cross-key checks that single-key typing cannot express."""
    train = cfg["Train"]
    for key in ("epochs_iters", "batch_size"):
        if train[key] is not None and train[key] < 1:
            raise UserError(f"Train.{key} must be >= 1, got {train[key]}")
    if train["learning_rate"] is not None and not train["learning_rate"] > 0:
        raise UserError(f"Train.learning_rate must be > 0, got {train['learning_rate']}")
    if train["num_classes"] is not None and train["num_classes"] < 1:
        raise UserError(f"Train.num_classes must be >= 1, got {train['num_classes']}")
    if cfg["Predict"]["batch_size"] < 1:
        raise UserError(f"Predict.batch_size must be >= 1, got {cfg['Predict']['batch_size']}")
    threshold = cfg["Predict"]["threshold"]
    if threshold is not None and not 0 <= threshold <= 1:
        raise UserError(f"Predict.threshold must lie in [0, 1], got {threshold}")
    split = cfg["CheckDataset"]["split"]
    if split["enable"]:
        train_p, val_p = split["train_percent"], split["val_percent"]
        if train_p is None or val_p is None:
            raise UserError("CheckDataset.split.enable=True needs CheckDataset.split.train_percent and val_percent")
        if not (0 < train_p < 100 and 0 < val_p < 100 and train_p + val_p == 100):
            raise UserError(f"split percentages must be in (0, 100) and sum to 100, got "
                            f"train_percent={train_p}, val_percent={val_p}")
    convert = cfg["CheckDataset"]["convert"]
    if convert["enable"] and not convert["src_dataset_type"]:
        raise UserError("CheckDataset.convert.enable=True needs CheckDataset.convert.src_dataset_type "
                        "(LabelMe, VOC or GeoTIFF)")
    return cfg


def dump_config(cfg):
    return yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)


def save_config(cfg, path):
    """Write the resolved config; later modes and readers see exactly what ran."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_config(cfg), encoding="utf-8")
    return path
