"""Static-graph export of the eval model (``paddle.jit.to_static`` + ``paddle.jit.save``)."""
import warnings

import paddle
from paddle.static import InputSpec

__all__ = ["export_model", "input_spec"]


def input_spec(height=640, width=640):
    """``image [None, 3, H, W]``, ``im_shape [None, 2]``, ``scale_factor [None, 2]`` (float32)."""
    return [{
        "image": InputSpec([None, 3, height, width], "float32", "image"),
        "im_shape": InputSpec([None, 2], "float32", "im_shape"),
        "scale_factor": InputSpec([None, 2], "float32", "scale_factor"),
    }]


def export_model(model, path_prefix, height=640, width=640):
    """Convert ``model`` (eval mode, full graph) and save ``path_prefix.pdmodel/.pdiparams``.

    Outputs are, in order, ``bbox``, ``bbox_num``, ``mask``. The spatial size is fixed (anchors and
    position embeddings are computed for it); the batch size is dynamic (the images of one batch must share
    one original size: the masks come out as one tensor at that size, see :class:`.postprocess.DETRPostProcess`).
    """
    model.eval()
    with warnings.catch_warnings():  # Paddle 2.6 warns about its own fill_constant ops while tracing: not ours to fix
        warnings.filterwarnings("ignore", message=r"The Attr\(force_cpu\)", category=UserWarning)
        static = paddle.jit.to_static(model, input_spec=input_spec(height, width), full_graph=True)
        paddle.jit.save(static, path_prefix)
    return path_prefix
