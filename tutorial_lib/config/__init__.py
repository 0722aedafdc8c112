"""PaddleX-style module configs: schema, loading with ``-o`` overrides, device validation."""
from .device import paddle_device, parse_device, validate_device
from .loader import dump_config, get, load_config, parse_override, parse_value, save_config
from .schema import DEFAULTS, MODES

__all__ = ["DEFAULTS", "MODES", "dump_config", "get", "load_config", "paddle_device", "parse_device", "parse_override",
           "parse_value", "save_config", "validate_device"]
