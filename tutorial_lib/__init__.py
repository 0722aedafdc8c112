"""Instance segmentation of remote-sensing images with PaddlePaddle: the tutorial library.

Every tutorial step is usable three ways with the same names: a notebook cell, the CLI
(``python -m tutorial_lib``) and this Python API::

    import tutorial_lib as tl
    tl.generate_sample("data/remote_sense_sample")             # step 4: the embedded sample dataset
    tl.run("Mask-RT-DETR-S", ["Global.mode=check_dataset",       # any mode, PaddleX-style overrides
                              "Global.dataset_dir=data/remote_sense_sample"])
"""
from .config import load_config
from .data.sample import generate_sample
from .errors import UserError
from .models.registry import list_models
from .modes import run
from .pipeline.registry import list_pipelines

__version__ = "0.1.0"
__all__ = ["UserError", "generate_sample", "list_models", "list_pipelines", "load_config", "run"]
