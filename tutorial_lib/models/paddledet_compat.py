"""Compatibility fixes for paddledet 2.6.0 running on PaddlePaddle >= 2.5 (the 0-D tensor change).

Since Paddle 2.5, indexing one element of a 1-D tensor (``paddle.shape(x)[0]``, ``bbox_num[i]``) gives a
0-D tensor, which ``paddle.concat`` refuses and ``[0]`` cannot index. paddledet 2.6.0 (the newest on PyPI)
still does this in a few places, so Mask R-CNN training fails at its first step, and SOLOv2 and static export
fail as well. Taking a one-element slice (``[0:1]``, ``[i:i + 1]``) instead fixes dygraph training,
evaluation and dy2static export alike.

The fix is applied to the installed functions at import time, never to the installed files: each affected
function's source is read, the offending expression is replaced, and the rewritten function is compiled
and put in place of the original. The rewritten source is registered with :mod:`linecache` so that
``paddle.jit.to_static`` (which reads function sources) converts the fixed version. If paddledet changes
and an expression is no longer found, that fix is skipped and reported by :func:`status` (the test suite
fails on it), instead of silently patching something else.
"""
import importlib
import inspect
import linecache
import textwrap

# (module, qualified name, [(old, new), ...]): every ``old`` must occur in that function's source.
FIXES = [
    ("ppdet.modeling.proposal_generator.rpn_head", "RPNHead._gen_proposal",
     [("bs_rois_num_collect.append(paddle.shape(topk_rois)[0])",
       "bs_rois_num_collect.append(paddle.shape(topk_rois)[0:1])")]),
    ("ppdet.modeling.proposal_generator.target", "generate_proposal_target",
     [("new_rois_num.append(paddle.shape(sampled_inds)[0])",
       "new_rois_num.append(paddle.shape(sampled_inds)[0:1])")]),
    ("ppdet.modeling.proposal_generator.target", "libra_generate_proposal_target",
     [("new_rois_num.append(paddle.shape(sampled_inds)[0])",
       "new_rois_num.append(paddle.shape(sampled_inds)[0:1])")]),
    ("ppdet.modeling.proposal_generator.target", "generate_mask_target",
     [("mask_rois_num.append(paddle.shape(fg_rois)[0])",
       "mask_rois_num.append(paddle.shape(fg_rois)[0:1])")]),
    ("ppdet.modeling.heads.cascade_head", "CascadeHead._get_rois_from_boxes",
     [("rois_num = paddle.concat([paddle.shape(r)[0] for r in rois])",
       "rois_num = paddle.concat([paddle.shape(r)[0:1] for r in rois])")]),
    ("ppdet.modeling.layers", "MaskMatrixNMS.__call__",
     [("[keep, paddle.cast(paddle.shape(cate_scores)[0] - 1, 'int64')]",
       "[keep, paddle.cast(paddle.shape(cate_scores)[0:1] - 1, 'int64')]")]),
    ("ppdet.modeling.post_process", "BBoxPostProcess.get_pred",
     [("bbox_num_i = bbox_num[i]", "bbox_num_i = bbox_num[i:i + 1]"),
      ("scale_y, scale_x = scale_factor[i][0], scale_factor[i][1]",
       "scale_y, scale_x = scale_factor[i][0:1], scale_factor[i][1:2]")]),
    ("ppdet.modeling.heads.solov2_head", "SOLOv2Head.get_seg_single",
     [("h = paddle.cast(im_shape[0], 'int32')[0]", "h = paddle.cast(im_shape[0:1], 'int32')[0]"),
      ("w = paddle.cast(im_shape[1], 'int32')[0]", "w = paddle.cast(im_shape[1:2], 'int32')[0]"),
      ("ind_a = paddle.cast(paddle.shape(kernel_preds)[0], 'int64')",
       "ind_a = paddle.cast(paddle.shape(kernel_preds)[0:1], 'int64')"),
      ("paddle.cast(paddle.shape(sum_masks)[0] - 1, 'int64')",
       "paddle.cast(paddle.shape(sum_masks)[0:1] - 1, 'int64')"),
      ("paddle.cast(paddle.shape(sum_masks)[0], 'int64')",
       "paddle.cast(paddle.shape(sum_masks)[0:1], 'int64')")]),
]

_STATUS = {}


def _patch_one(module_name, qualname, replacements):
    module = importlib.import_module(module_name)
    owner_name, _, func_name = qualname.rpartition(".")
    owner = getattr(module, owner_name) if owner_name else module
    original = inspect.unwrap(getattr(owner, func_name))
    if getattr(original, "__tutorial_lib_compat__", False):
        return "applied"
    source = textwrap.dedent(inspect.getsource(original))
    for old, new in replacements:
        if old not in source:
            return f"skipped: {old!r} not found (paddledet changed?)"
        source = source.replace(old, new)
    filename = f"<tutorial_lib.engine.compat {module_name}.{qualname}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {}
    exec(compile(source, filename, "exec"), module.__dict__, namespace)  # noqa: S102 - paddledet's own code
    fixed = namespace[func_name]
    fixed.__qualname__ = original.__qualname__
    fixed.__module__ = original.__module__
    fixed.__tutorial_lib_compat__ = True
    setattr(owner, func_name, fixed)
    if not owner_name:  # a module-level function may be imported by name elsewhere; repoint those too
        import sys

        for other in list(sys.modules.values()):
            if other is not None and getattr(other, "__name__", "").startswith("ppdet") \
                    and getattr(other, func_name, None) is original:
                setattr(other, func_name, fixed)
    return "applied"


def apply():
    """Apply every fix once (idempotent); return ``{"module.function": "applied" | "skipped: ..."}``."""
    if not _STATUS:
        for module_name, qualname, replacements in FIXES:
            _STATUS[f"{module_name}.{qualname}"] = _patch_one(module_name, qualname, replacements)
    return dict(_STATUS)


def status():
    return dict(_STATUS)
