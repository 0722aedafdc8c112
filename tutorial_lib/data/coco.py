"""Small helpers around pycocotools."""
import contextlib
import io

from pycocotools.coco import COCO


def load_coco(path_or_dict):
    """A ``pycocotools.coco.COCO`` from a JSON path or an already loaded dict, without its chatter."""
    with contextlib.redirect_stdout(io.StringIO()):
        if isinstance(path_or_dict, dict):
            coco = COCO()
            coco.dataset = path_or_dict
            coco.createIndex()
        else:
            coco = COCO(str(path_or_dict))
    return coco
