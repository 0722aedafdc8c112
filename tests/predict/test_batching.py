"""Batched Mask-RT-DETR prediction: a forward pass of N same-size images gives every image exactly what N
single-image passes give (post-processing, the predictor on Paddle Inference / ONNX Runtime / OpenVINO, mixed
sizes), and old exports with ``batch_size_limit: 1`` still run one image per forward pass."""
import shutil

import numpy as np
import pytest
import yaml

from conftest import REPO, mask_iou
from tutorial_lib.predict import Predictor

DEMO = REPO / "data" / "remotesensing_demo.png"
BOX_TOL = SCORE_TOL = 1e-4
MIN_IOU = 0.99


# ----------------------------------------------------------------------------- post-processing (dygraph, no export)
def test_postprocess_of_a_batch_equals_one_image_at_a_time():
    import paddle

    from tutorial_lib.models.mask_rtdetr.postprocess import DETRPostProcess

    rng = np.random.default_rng(0)
    b, q, c, h, w = 3, 20, 4, 16, 12
    boxes = paddle.to_tensor(rng.uniform(0.2, 0.6, (b, q, 4)).astype(np.float32))
    logits = paddle.to_tensor(rng.normal(0, 2, (b, q, c)).astype(np.float32))
    masks = paddle.to_tensor(rng.normal(0, 3, (b, q, h, w)).astype(np.float32))
    im_shape = paddle.to_tensor(np.array([[64, 48]] * b, np.float32))
    scale = paddle.to_tensor(np.array([[64 / 50, 48 / 30]] * b, np.float32))  # original 50 x 30 for all three
    post = DETRPostProcess(num_classes=c, num_top_queries=7)
    bbox, bbox_num, mask = post(boxes, logits, masks, im_shape, scale)
    assert bbox.shape == [b * 7, 6] and mask.shape == [b * 7, 50, 30]
    np.testing.assert_array_equal(bbox_num.numpy(), [7] * b)
    for i in range(b):
        one = post(boxes[i:i + 1], logits[i:i + 1], masks[i:i + 1], im_shape[i:i + 1], scale[i:i + 1])
        rows = slice(7 * i, 7 * (i + 1))
        np.testing.assert_array_equal(bbox.numpy()[rows], one[0].numpy(), err_msg=f"image {i}: boxes")
        np.testing.assert_array_equal(mask.numpy()[rows], one[2].numpy(), err_msg=f"image {i}: masks")
    # the images differ, so taking image 0's masks for all of them (the old bug) would be caught
    assert not np.array_equal(mask.numpy()[:7], mask.numpy()[7:14])


# ----------------------------------------------------------------------------- the predictor, on every backend
@pytest.fixture(scope="module")
def model_dir(rtdetr_export, tmp_path_factory):
    """A copy of the smoke export (the ONNX backends write inference.onnx beside it)."""
    target = tmp_path_factory.mktemp("batching") / "model"
    shutil.copytree(rtdetr_export, target)
    return target


@pytest.fixture(scope="module")
def scenes():
    import cv2

    demo = cv2.cvtColor(cv2.imread(str(DEMO)), cv2.COLOR_BGR2RGB)
    same = [demo[60 * i:60 * i + 300, 50 * i:50 * i + 360].copy() for i in range(4)]  # four 300 x 360 crops
    return same, demo


def forward_sizes(predictor):
    """Record the number of images of every forward pass of ``predictor``."""
    sizes, run = [], predictor.backend.run

    def counting(feed):
        sizes.append(len(feed["image"]))
        return run(feed)

    predictor.backend.run = counting
    return sizes


def assert_same_results(singles, batched):
    """Each image's batched result holds its single-image detections: same class, box and score within 1e-4
    (float rounding of batched kernels may swap near-equal scores), best mask IoU >= 0.99, same mask size."""
    assert len(singles) == len(batched)
    for i, (one, many) in enumerate(zip(singles, batched)):
        assert len(one.boxes) == len(many.boxes) == 50, i  # the smoke config's num_top_queries (threshold 0)
        assert one.masks.shape == many.masks.shape, i
        for box, mask in zip(one.boxes, one.masks):
            hits = [j for j, b in enumerate(many.boxes) if b["cls_id"] == box["cls_id"]
                    and abs(b["score"] - box["score"]) < SCORE_TOL
                    and np.abs(np.subtract(b["coordinate"], box["coordinate"])).max() < BOX_TOL]
            assert hits, f"image {i}: {box} has no match in the batched result"
            assert max(mask_iou(many.masks[j], mask) for j in hits) >= MIN_IOU, f"image {i}: {box}"


@pytest.mark.parametrize("run_mode", ["paddle", "onnxruntime", "openvino"])
def test_a_batch_of_four_equals_four_single_predictions(model_dir, scenes, run_mode):
    if run_mode == "openvino":
        pytest.importorskip("openvino")
    same, _ = scenes
    predictor = Predictor(model_dir, run_mode=run_mode, threshold=0.0, batch_size=4, cpu_threads=2)
    assert predictor.batch_size_limit is None and predictor.batch_same_size
    singles = [next(predictor.predict(image, batch_size=1)) for image in same]
    sizes = forward_sizes(predictor)
    batched = list(predictor.predict(same))
    assert sizes == [4]  # one forward pass
    assert_same_results(singles, batched)
    # images differ, so a batch that decoded the first image's masks for all of them (the old bug) would fail
    assert not np.array_equal(batched[0].masks, batched[1].masks)


def test_mixed_sizes_are_grouped_by_size_and_keep_their_order(model_dir, scenes):
    same, demo = scenes
    small = [demo[:200, :260].copy(), demo[100:300, 50:310].copy()]
    images = [same[0], small[0], same[1], small[1], same[2], demo]
    predictor = Predictor(model_dir, run_mode="paddle", threshold=0.0)
    singles = [next(predictor.predict(image)) for image in images]
    sizes = forward_sizes(predictor)
    batched = list(predictor.predict(images, batch_size=len(images)))  # a call's batch_size raises the forward batch
    assert sizes == [3, 2, 1]  # 300 x 360 (three), 200 x 260 (two), the whole scene
    assert [r.masks.shape[1:] for r in batched] == [im.shape[:2] for im in images]
    assert_same_results(singles, batched)
    assert predictor.forward_groups([im.shape for im in images], 2) == [[0, 2], [4], [1, 3], [5]]


def test_old_exports_with_batch_size_limit_1_still_run_one_image_at_a_time(model_dir, scenes, tmp_path):
    """Mask-RT-DETR models exported before the batched post-process say ``batch_size_limit: 1`` (and nothing about
    sizes): they still get one image per forward pass."""
    old = tmp_path / "old"
    shutil.copytree(model_dir, old)
    info = yaml.safe_load((old / "inference.yml").read_text())
    info["batch_size_limit"] = 1
    del info["batch_same_size"]
    (old / "inference.yml").write_text(yaml.safe_dump(info, sort_keys=False))
    same, _ = scenes
    predictor = Predictor(old, run_mode="paddle", threshold=0.0, batch_size=4)
    assert predictor.forward_batch == 1 and not predictor.batch_same_size
    sizes = forward_sizes(predictor)
    results = list(predictor.predict(same))
    assert sizes == [1, 1, 1, 1] and len(results) == 4
