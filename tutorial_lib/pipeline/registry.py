"""Registered pipelines, named as in PaddleX."""

PIPELINES = {
    "instance_segmentation": {
        "name": "instance_segmentation",
        "module": "InstanceSegmentation",
        "default_model": "Mask-RT-DETR-S",
        "description": "general instance segmentation: per-object class, score, box and pixel mask",
    },
}


def list_pipelines():
    return list(PIPELINES.values())
