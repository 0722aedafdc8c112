"""DETRPostProcess equivalent: top-k over sigmoid scores, boxes to original pixels, masks resized and binarised."""
import paddle
import paddle.nn.functional as F

from .box_ops import box_cxcywh_to_xyxy

__all__ = ["DETRPostProcess"]


class DETRPostProcess:
    """Focal-loss style decoding (``bbox_decode_type='origin'``, no NMS, scores not mask-rescaled)."""

    def __init__(self, num_classes=80, num_top_queries=100, mask_threshold=0.5):
        self.num_classes = num_classes
        self.num_top_queries = num_top_queries
        self.mask_threshold = mask_threshold

    def __call__(self, boxes, logits, masks, im_shape, scale_factor):
        """boxes ``[b, q, 4]`` cxcywh, logits ``[b, q, c]``, masks ``[b, q, h, w]``.

        Returns ``bbox [b*k, 6]`` (class, score, x1, y1, x2, y2), ``bbox_num [b]`` int32, ``mask [b*k, H, W]`` int32.

        Boxes are scaled to each image's own original size. Masks are one ``[b*k, H, W]`` tensor, so every image
        of a batch must have the same original size ``(H, W)`` (from ``im_shape / scale_factor``; the first
        image's is used): callers batch images of one size only (:class:`tutorial_lib.predict.Predictor` groups
        them; ``inference.yml`` says ``batch_same_size: true``). Each image's masks are taken with its own top-k
        query index; no Python loop over the batch and no host copies, so the static export keeps a dynamic batch.
        """
        bbox_pred = box_cxcywh_to_xyxy(boxes)
        origin_shape = paddle.floor(im_shape / scale_factor + 0.5)
        img_h, img_w = paddle.split(origin_shape, 2, axis=-1)
        bbox_pred = bbox_pred * origin_shape.flip([1]).tile([1, 2]).unsqueeze(1)

        k = self.num_top_queries
        scores, index = paddle.topk(F.sigmoid(logits).flatten(1), k, axis=-1)
        labels = index % self.num_classes
        index = index // self.num_classes
        bbox_pred = paddle.take_along_axis(bbox_pred, index.unsqueeze(-1).tile([1, 1, 4]), 1)

        mask_pred = None
        if masks is not None:
            # (image, query) pairs [b, k, 2] -> masks [b, k, h, w]: image i's own top-k queries
            image_id = paddle.cumsum(paddle.ones_like(index), axis=0) - 1
            masks = paddle.gather_nd(masks, paddle.stack([image_id, index], axis=-1))
            h = img_h[0].astype("int32")  # one original size per batch (see above)
            w = img_w[0].astype("int32")
            masks = F.interpolate(masks, size=[h, w], mode="bilinear", align_corners=False)
            mask_pred = (F.sigmoid(masks) > self.mask_threshold).astype("float32")
            mask_pred = mask_pred.flatten(0, 1).astype("int32")

        out = paddle.concat([labels.unsqueeze(-1).astype("float32"), scores.unsqueeze(-1), bbox_pred], axis=-1)
        bbox_num = paddle.ones_like(out[:, 0, 0]).astype("int32") * k
        return out.reshape([-1, 6]), bbox_num, mask_pred

    def query_index(self, logits):
        """Query index of each top-k detection (``topk_index // num_classes``), for tests."""
        _, index = paddle.topk(F.sigmoid(logits).flatten(1), self.num_top_queries, axis=-1)
        return index // self.num_classes
