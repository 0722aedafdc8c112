"""``Instances`` on its own: indexing, crop <-> full storage, translate onto a scene (cut at the border), cat."""
import numpy as np
import pytest

from tutorial_lib.structures import Instances, masks_to_boxes


def two_instances():
    masks = np.zeros((2, 6, 8), bool)
    masks[0, 1:3, 2:5] = True  # 2 x 3 at (x 2, y 1)
    masks[1, 4:6, 6:8] = True  # 2 x 2 at the bottom-right corner
    return Instances((6, 8), masks_to_boxes(masks), [0.9, 0.4], [3, 1], masks)


def test_indexing_filter_sorted():
    inst = two_instances()
    assert len(inst[inst.scores >= 0.5]) == 1 and inst.filter(0.5).class_ids.tolist() == [3]
    assert inst[1].scores.tolist() == [pytest.approx(0.4)]
    assert inst[[1, 0]].sorted().class_ids.tolist() == [3, 1]
    assert masks_to_boxes(inst.masks).tolist() == [[2, 1, 5, 3], [6, 4, 8, 6]]


def test_cropped_storage_round_trips_and_keeps_areas():
    inst = two_instances()
    cropped = inst.to_cropped()
    assert cropped.cropped and [m.shape for m in cropped.masks] == [(2, 3), (2, 2)]
    assert cropped.mask_offsets.tolist() == [[2, 1], [6, 4]]
    np.testing.assert_array_equal(cropped.full_masks(), inst.masks)
    assert cropped.mask_areas().tolist() == inst.mask_areas().tolist() == [6, 4]
    np.testing.assert_array_equal(cropped.to_full().masks, inst.masks)


def test_translate_places_a_tile_on_the_scene_and_cuts_at_the_border():
    moved = two_instances().translate(10, 20, (25, 17))  # 17 x 25 scene: the 2 x 2 mask keeps 1 column, 1 row
    assert moved.image_size == (25, 17)
    assert moved.boxes.tolist() == [[12, 21, 15, 23], [16, 24, 17, 25]]
    assert moved.mask_offsets.tolist() == [[12, 21], [16, 24]]
    assert moved.mask_areas().tolist() == [6, 1]
    full = moved.full_masks()
    assert full[0, 21:23, 12:15].all() and full[0].sum() == 6
    outside = two_instances().translate(100, 100, (25, 17))
    assert outside.mask_areas().tolist() == [0, 0]


def test_cat_keeps_order_and_storage():
    a = two_instances()
    b = two_instances().translate(0, 0, (6, 8))  # cropped
    both = Instances.cat([a, b])
    assert len(both) == 4 and both.cropped and both.class_ids.tolist() == [3, 1, 3, 1]
    np.testing.assert_array_equal(both.full_masks()[:2], a.masks)
    np.testing.assert_array_equal(both.full_masks()[2:], a.masks)
    assert len(Instances.cat([], (6, 8))) == 0
    with pytest.raises(ValueError, match="different image sizes"):
        Instances.cat([a, Instances.empty((5, 5))])
    with pytest.raises(ValueError, match="disagree in length"):
        Instances((6, 8), boxes=np.zeros((2, 4)), scores=[1.0])


# ----------------------------------------------------------------------------- drawing (viz.draw_instances)
def _reference_drawing(image, instances, alpha=0.45):
    """The straightforward drawing (tint and outline over the whole image, one mask at a time) that
    draw_instances' cropped drawing must reproduce exactly."""
    import cv2

    from tutorial_lib.viz import class_color

    out = image.copy()
    thickness = max(1, round(max(out.shape[:2]) / 400))
    for i in range(len(instances)):
        color = class_color(int(instances.class_ids[i]))
        mask = instances.mask(i)
        out[mask] = (out[mask] * (1 - alpha) + np.array(color) * alpha).astype(np.uint8)
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, color, thickness, cv2.LINE_AA)
    return out


def test_drawing_touches_only_each_mask_and_matches_the_whole_image_drawing():
    from tutorial_lib.viz import draw_instances

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (90, 120, 3), np.uint8)
    masks = np.zeros((3, 90, 120), bool)
    masks[0, 10:30, 5:40] = True
    masks[1, 60:90, 100:120] = True           # touches the bottom-right corner
    masks[1, 70, 90] = True                   # a stray pixel outside the main blob
    boxes = [[5, 10, 39, 29], [90, 60, 119, 89], [0, 0, 10, 10]]  # the third mask is empty
    full = Instances((90, 120), boxes, [0.9, 0.8, 0.7], [1, 4, 2], masks)
    expected = _reference_drawing(image, full)
    drawn = draw_instances(image, full, show_boxes=False, show_labels=False)
    np.testing.assert_array_equal(drawn, expected)
    np.testing.assert_array_equal(draw_instances(image, full.to_cropped(), show_boxes=False, show_labels=False),
                                  expected)
    # a crop reaching past the image (as sliced inference can leave it) is drawn only where it lies inside
    inst = Instances((90, 120), [[110, 80, 130, 95]], [0.9], [3], [np.ones((15, 20), bool)], [[110, 80]])
    inside = Instances((90, 120), [[110, 80, 119, 89]], [0.9], [3], [np.ones((10, 10), bool)], [[110, 80]])
    np.testing.assert_array_equal(draw_instances(image, inst, show_boxes=False, show_labels=False),
                                  _reference_drawing(image, inside))
