"""Instance segmentation of remote-sensing images with PaddlePaddle: the tutorial library.

Every tutorial step is usable three ways with the same names: a notebook cell, the CLI
(``python -m tutorial_lib``) and this Python API::

    import tutorial_lib as tl
    tl.generate_sample("data/remote_sense_sample")             # step 4: the embedded sample dataset
    tl.run("Mask-RT-DETR-S", ["Global.mode=check_dataset",       # any mode, PaddleX-style overrides
                              "Global.dataset_dir=data/remote_sense_sample"])
    for result in tl.create_pipeline("instance_segmentation").predict("data/remotesensing_demo.png"):
        result.print(); result.save_to_img("output/"); result.save_to_json("output/")
"""
from .config import load_config
from .data.sample import generate_sample
from .errors import UserError
from .models.registry import list_models
from .modes import run
from .pipeline import get_pipeline_config, list_pipelines
from .quickstart import create_pipeline

__version__ = "0.1.0"
__all__ = ["UserError", "create_pipeline", "generate_sample", "get_pipeline_config", "list_models", "list_pipelines",
           "load_config", "run"]
