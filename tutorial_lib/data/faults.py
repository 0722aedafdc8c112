"""A broken copy of a COCO dataset, for showing what ``check_dataset`` reports (notebook 04).

:func:`broken_copy` copies a dataset in the tutorial layout (``images/``, ``annotations/instance_{train,val}.json``)
and plants three typical faults in its training split, each one a kind the check reports as an error:

* ``degenerate_segmentation``: the first annotation's polygon has only two points (no area);
* ``bbox_mismatch``: the second annotation's box lies far from its mask;
* ``missing_image_file``: the second image's file is deleted.

The source is never modified.
"""
import json
import shutil
from pathlib import Path

from ..errors import UserError
from .image_checks import image_path

FAULTS = ("degenerate_segmentation", "bbox_mismatch", "missing_image_file")  # the problem kinds it plants


def broken_copy(dataset_dir, output_dir):
    """Copy ``dataset_dir`` to ``output_dir`` (replaced if it exists) with the three faults of :data:`FAULTS`
    planted in ``annotations/instance_train.json``; return ``output_dir`` as a Path."""
    dataset_dir, output_dir = Path(dataset_dir), Path(output_dir)
    if output_dir.resolve() == dataset_dir.resolve():
        raise UserError(f"broken_copy would overwrite {dataset_dir}; give another output folder")
    shutil.rmtree(output_dir, ignore_errors=True)
    shutil.copytree(dataset_dir, output_dir)
    annotations = output_dir / "annotations" / "instance_train.json"
    data = json.loads(annotations.read_text(encoding="utf-8"))
    if len(data.get("annotations", [])) < 2 or len(data.get("images", [])) < 2:
        raise UserError(f"{dataset_dir} needs at least 2 training images and 2 annotations to break")
    data["annotations"][0]["segmentation"] = [[10, 10, 20, 20]]  # two points: no area
    data["annotations"][1]["bbox"] = [0, 0, 5, 5]  # a box far from its mask
    missing = image_path(output_dir, data["images"][1]["file_name"])
    if missing is not None:
        missing.unlink(missing_ok=True)  # a missing image file
    annotations.write_text(json.dumps(data), encoding="utf-8")
    return output_dir


__all__ = ["FAULTS", "broken_copy"]
