"""The predictor's parts that need no trained model: preprocessing, inputs, and the result object."""
import json

import numpy as np
import pytest

from tutorial_lib.errors import UserError
from tutorial_lib.predict import InstanceSegResult, decode_rle, encode_rle, preprocess
from tutorial_lib.predict.inputs import iter_sources
from tutorial_lib.structures import Instances


def make_result(path="scene.png"):
    masks = np.zeros((2, 40, 60), bool)
    masks[0, 5:15, 5:25] = True
    masks[1, 20:35, 30:50] = True
    instances = Instances((40, 60), boxes=[[5, 5, 25, 15], [30, 20, 50, 35]], scores=[0.9, 0.6], class_ids=[0, 5],
                          masks=masks)
    labels = ["airplane", "a", "b", "c", "d", "ship"]
    image = np.full((40, 60, 3), 90, np.uint8)
    return InstanceSegResult(path, instances, labels, image=image)


def test_rle_round_trip():
    mask = np.random.default_rng(0).random((33, 47)) > 0.6
    rle = encode_rle(mask)
    assert isinstance(rle["counts"], str) and rle["size"] == [33, 47]
    np.testing.assert_array_equal(decode_rle(json.loads(json.dumps(rle))), mask)


def test_result_json_is_paddlex_shaped_and_saves(tmp_path, capsys):
    result = make_result()
    data = result.json
    assert set(data) == {"res"}
    assert set(data["res"]) == {"input_path", "page_index", "boxes", "masks"}
    assert data["res"]["page_index"] is None and data["res"]["boxes"][1]["label"] == "ship"
    np.testing.assert_array_equal(decode_rle(data["res"]["masks"][1]), result.masks[1])
    json_path = result.save_to_json(tmp_path)
    assert json_path.endswith("scene_res.json") and json.loads(open(json_path).read()) == data
    img_path = result.save_to_img(tmp_path / "drawn.png")
    import cv2

    drawn = cv2.imread(img_path)
    assert drawn.shape == (40, 60, 3) and (drawn != 90).any()
    result.print()
    assert '"label": "airplane"' in capsys.readouterr().out


def test_preprocess_matches_paddledet_test_reader(tmp_path):
    """The predictor's numpy preprocessing equals paddledet's own TestReader transforms."""
    import cv2

    from tutorial_lib.config import load_config
    from tutorial_lib.models.adapters import get_adapter as get_family

    family = get_family(load_config("MaskRCNN-ResNet18-FPN-S", ["Architecture.input_size=192"]))
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (150, 230, 3), dtype=np.uint8)
    path = tmp_path / "img.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    transforms, batch_transforms = family.compose("test", 10)
    ref = batch_transforms([transforms({"im_file": str(path), "im_id": np.array([0])})])
    mine, im_shape, scale = preprocess(image, family.preprocess_spec())
    np.testing.assert_allclose(mine, ref["image"][0], atol=1e-5)
    np.testing.assert_allclose(im_shape, ref["im_shape"][0], rtol=1e-6)
    np.testing.assert_allclose(scale, ref["scale_factor"][0], rtol=1e-6)


def test_inputs_are_lazy_and_checked(tmp_path):
    sources = iter_sources([np.zeros((4, 5, 3), np.uint8), np.zeros((4, 5), np.uint8)])
    (p1, load1), (p2, load2) = list(sources)
    assert p1 is None and load1().shape == (4, 5, 3) and load2().shape == (4, 5, 3)
    with pytest.raises(UserError, match="does not exist"):
        list(iter_sources(tmp_path / "missing.png"))
    with pytest.raises(UserError, match="holds no images"):
        list(iter_sources(tmp_path))


def test_box_masks_paste_like_paddledet_paste_mask():
    """R-CNN masks are pasted around each box outside the graph; paddledet pastes them over the whole image
    (``paste_mask``, bilinear ``grid_sample``). Same pixels, up to float rounding at the threshold."""
    import paddle

    from tutorial_lib.models.outputs import paste_box_masks
    from tutorial_lib.models.ppdet_ops import import_ppdet

    import_ppdet()
    from ppdet.modeling.post_process import paste_mask

    rng = np.random.default_rng(0)
    h, w = 97, 131
    boxes = np.array([[10.3, 7.8, 60.1, 40.6], [0, 0, 131, 97], [-5.5, 80.2, 20.4, 110.0],  # beyond the image
                      [120.2, 3.1, 129.9, 9.7], [50, 50, 51.5, 52.2], [30, 30, 30, 45]], np.float32)  # tiny, empty
    probs = rng.random((len(boxes), 28, 28)).astype(np.float32)
    probs[1] = 1.0  # saturated: its half-pixel rim just outside the box is exactly at the threshold
    reference = paste_mask(paddle.to_tensor(probs[:, None]), paddle.to_tensor(boxes), h, w).numpy() >= 0.5
    reference[5] = False  # a zero-width box divides by zero in paddledet; nothing here
    crops, offsets = paste_box_masks(probs, boxes, (h, w), 0.5)
    pasted = Instances((h, w), boxes, np.ones(len(boxes)), np.zeros(len(boxes)), crops, offsets)
    differ = pasted.full_masks() != reference
    assert reference.sum() > 10_000 and differ.sum() <= 5, differ.sum()
    # the crops are tight, as Instances.to_cropped makes them
    tight = Instances((h, w), boxes, np.ones(len(boxes)), np.zeros(len(boxes)), reference).to_cropped()
    for crop, ref in zip(crops[:4], tight.masks[:4]):
        assert abs(crop.shape[0] - ref.shape[0]) <= 1 and abs(crop.shape[1] - ref.shape[1]) <= 1
    assert crops[5].shape == (0, 0)
    # 400 random boxes (inside, across and beyond the border, 1 to 200 px) with sigmoid probabilities
    total = differing = 0
    for _ in range(20):
        h, w = (int(v) for v in rng.integers(50, 400, 2))
        corner = rng.uniform(-20, [w, h], (20, 2))
        boxes = np.hstack([corner, corner + rng.uniform(1, 200, (20, 2))]).astype(np.float32)
        probs = (1 / (1 + np.exp(-rng.normal(0, 3, (20, 28, 28))))).astype(np.float32)
        reference = paste_mask(paddle.to_tensor(probs[:, None]), paddle.to_tensor(boxes), h, w).numpy() >= 0.5
        crops, offsets = paste_box_masks(probs, boxes, (h, w), 0.5)
        pasted = Instances((h, w), boxes, np.ones(20), np.zeros(20), crops, offsets).full_masks()
        total, differing = total + reference.sum(), differing + (pasted != reference).sum()
    assert total > 500_000 and differing <= total * 1e-5, (differing, total)
