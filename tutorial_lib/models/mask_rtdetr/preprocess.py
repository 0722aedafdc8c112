"""Evaluation preprocessing identical to PaddleDetection's EvalReader for Mask-RT-DETR."""
import cv2
import numpy as np

__all__ = ["preprocess"]


def preprocess(image_rgb_uint8, target_size=(640, 640)):
    """RGB uint8 ``(H, W, 3)`` -> dict of numpy arrays ``image (1,3,th,tw)``, ``im_shape``, ``scale_factor``.

    Resize with ``fx/fy`` factors (bicubic, keep_ratio False), scale by 1/255 in float32, HWC -> CHW.
    """
    img = np.asarray(image_rgb_uint8)
    h, w = img.shape[:2]
    th, tw = target_size
    fy, fx = th / float(h), tw / float(w)
    resized = cv2.resize(img, None, None, fx=fx, fy=fy, interpolation=cv2.INTER_CUBIC)
    x = resized.astype(np.float32, copy=False)
    x *= (1.0 / 255.0)
    x = x.transpose((2, 0, 1))[None]
    im_shape = np.array([resized.shape[:2]], dtype=np.float32)
    scale_factor = np.array([[fy, fx]], dtype=np.float32)
    return {"image": np.ascontiguousarray(x), "im_shape": im_shape, "scale_factor": scale_factor}
