"""INT8 post-training quantization (tutorial_lib.predict.quantize) and its two run modes.

The agreement test needs a model whose detections mean something: a Mask-RT-DETR-S-Smoke trained for 50 epochs on
4 easy generated images (as benchmarks/mask_rtdetr_train.py does; about 3 minutes on 2 cores), quantized on those
images and compared with its FP32 self on one of them. The quick checks use the same model family with random
weights (shapes, files, errors, the CLI).
"""
import os

import numpy as np
import pytest

import tutorial_lib as tl
from conftest import mask_iou
from tutorial_lib.cli import main as cli_main
from tutorial_lib.errors import UserError
from tutorial_lib.predict import Predictor
from tutorial_lib.predict.backends import create_backend
from tutorial_lib.predict.onnx_export import onnx_path
from tutorial_lib.predict.quantize import INT8_NAME, int8_path, model_size_mb, quantize_int8

pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def easy_set(tmp_path_factory):
    """4 generated images with objects, val = train (the overfit set of benchmarks/mask_rtdetr_train.py)."""
    import shutil

    out = tmp_path_factory.mktemp("int8") / "easy"
    tl.generate_sample(out, num_train=4, num_val=1, image_size=128, seed=0, progress=False, background_fraction=0.0)
    annotations = out / "annotations"
    shutil.copyfile(annotations / "instance_train.json", annotations / "instance_val.json")
    return out


@pytest.fixture(scope="module")
def untrained(tmp_path_factory, easy_set):
    from tutorial_lib.engine.export import export_untrained

    model_dir = tmp_path_factory.mktemp("int8_untrained") / "inference"
    export_untrained("Mask-RT-DETR-S-Smoke", model_dir, overrides={"Architecture.input_size": 128})
    quantize_int8(model_dir, easy_set / "images", progress=False)
    return model_dir


@pytest.fixture(scope="module")
def trained(tmp_path_factory, easy_set):
    out = tmp_path_factory.mktemp("int8_trained") / "run"
    tl.run("Mask-RT-DETR-S-Smoke", {
        "Global.mode": "train", "Global.dataset_dir": str(easy_set), "Global.output": str(out), "Global.seed": 0,
        "Train.epochs_iters": 50, "Train.batch_size": 2, "Train.learning_rate": 4e-4, "Train.warmup_steps": 10,
        "Train.log_interval": 10, "Train.eval_interval": 50, "Architecture.input_size": 128})
    model_dir = out / "best_model" / "inference"
    quantize_int8(model_dir, easy_set / "images", progress=False)
    return model_dir


def _onnx_ops(path):
    import onnx

    model = onnx.load(str(path))
    ops = [n.op_type for n in model.graph.node]
    int8_weights = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8]
    return ops, int8_weights


def test_int8_model_is_smaller_with_quantized_weights(untrained):
    fp32, int8 = onnx_path(untrained), int8_path(untrained)
    assert int8.name == INT8_NAME and fp32.is_file()
    assert model_size_mb(int8) < 0.35 * model_size_mb(fp32)  # int8 weights: about a quarter, plus scales
    ops, int8_weights = _onnx_ops(int8)
    fp32_ops, _ = _onnx_ops(fp32)
    assert ops.count("QuantizeLinear") > 50 and ops.count("DequantizeLinear") > ops.count("QuantizeLinear")
    # every convolution and (almost) every matrix product reads an int8 weight
    assert len(int8_weights) >= ops.count("Conv") + ops.count("MatMul") // 2
    assert "BatchNormalization" in fp32_ops and "BatchNormalization" not in ops  # folded before quantizing


@pytest.mark.parametrize("run_mode", ["onnxruntime_int8", "openvino_int8"])
def test_int8_run_modes_predict_like_fp32(untrained, easy_set, run_mode):
    image = str(sorted((easy_set / "images").iterdir())[0])
    fp32 = next(Predictor(untrained, run_mode="onnxruntime", threshold=0.0).predict(image))
    int8 = next(Predictor(untrained, run_mode=run_mode, threshold=0.0).predict(image))
    assert len(int8.boxes) == len(fp32.boxes) > 0
    assert int8.masks.shape == fp32.masks.shape


def test_missing_int8_model_and_gpu_are_user_errors(tmp_path, untrained):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(untrained, copy)
    (copy / INT8_NAME).unlink()
    with pytest.raises(UserError, match="quantize"):
        Predictor(copy, run_mode="onnxruntime_int8")
    shutil.copy(untrained / INT8_NAME, copy / INT8_NAME)
    os.utime(copy / INT8_NAME, (1, 1))  # quantized before the model was exported: stale
    with pytest.raises(UserError, match="older than the model"):
        Predictor(copy, run_mode="openvino_int8")
    (copy / INT8_NAME).unlink()
    with pytest.raises(UserError, match="CPU only"):  # (the backend's own check; Predictor first checks the GPU)
        create_backend(untrained, device="gpu:0", run_mode="openvino_int8")
    empty = tmp_path / "no_images"
    empty.mkdir()
    with pytest.raises(UserError, match="no images"):
        quantize_int8(copy, empty, progress=False)
    assert not (copy / INT8_NAME).exists()  # nothing half-written


def test_cli_quantize(tmp_path, untrained, easy_set, capsys):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(untrained, copy)
    (copy / INT8_NAME).unlink()
    assert cli_main(["quantize", "--model_dir", str(copy), "--calibration", str(easy_set / "images"),
                     "--max_images", "2"]) == 0
    assert (copy / INT8_NAME).is_file()
    assert "INT8 model written" in capsys.readouterr().out


def _boxes(result):
    coords = np.array([b["coordinate"] for b in result.boxes], np.float64).reshape(-1, 4)
    return coords, np.array([b["cls_id"] for b in result.boxes]), np.array([b["score"] for b in result.boxes])


def _box_iou(a, b):
    lt, rb = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: np.clip(x[:, 2:] - x[:, :2], 0, None).prod(-1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter + 1e-9)


def _found_objects(result, gt_boxes, gt_classes, top=20):
    """Indices of the ground-truth objects hit (same class, box IoU >= 0.5) by one of the top-scoring detections."""
    boxes, classes, scores = _boxes(result)
    order = np.argsort(-scores)[:top]
    hits = _box_iou(boxes[order], gt_boxes) * (classes[order][:, None] == gt_classes[None]) >= 0.5
    return set(np.flatnonzero(hits.any(0)).tolist())


@pytest.mark.parametrize("run_mode", ["onnxruntime_int8", "openvino_int8"])
def test_int8_detections_agree_with_fp32_on_an_easy_scene(trained, easy_set, run_mode):
    """On the easy scene (the image with the fewest objects) INT8 finds every object FP32 finds, most of FP32's
    top detections have an INT8 twin, and mask AP on the 4 images moves by less than 0.05."""
    from pycocotools.coco import COCO

    from tutorial_lib.quickstart import evaluate_exported

    coco = COCO(str(easy_set / "annotations" / "instance_val.json"))
    image_id = min(coco.imgs, key=lambda i: (len(coco.getAnnIds(imgIds=[i])), i))
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
    cat_ids = sorted(coco.cats)
    gt_boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                         for a in anns])
    gt_classes = np.array([cat_ids.index(a["category_id"]) for a in anns])
    image = str(easy_set / "images" / coco.imgs[image_id]["file_name"])
    fp32 = next(Predictor(trained, run_mode="onnxruntime", threshold=0.0).predict(image))
    int8 = next(Predictor(trained, run_mode=run_mode, threshold=0.0).predict(image))

    found = _found_objects(fp32, gt_boxes, gt_classes)
    assert found  # the trained model does find objects here
    assert _found_objects(int8, gt_boxes, gt_classes) == found

    fb, fc, fs = _boxes(fp32)
    ib, ic, _ = _boxes(int8)
    top = np.argsort(-fs)[:20]
    twin = (_box_iou(fb[top], ib) * (fc[top][:, None] == ic[None])).max(1) >= 0.8
    assert twin.mean() >= 0.8, twin
    for k in np.flatnonzero(twin)[:5]:  # their masks too
        j = int(np.argmax(_box_iou(fb[top[k]][None], ib)[0] * (ic == fc[top[k]])))
        assert mask_iou(fp32.masks[top[k]], int8.masks[j]) >= 0.7

    ap_fp32 = evaluate_exported(trained, easy_set, run_mode="onnxruntime")["AP"]
    ap_int8 = evaluate_exported(trained, easy_set, run_mode=run_mode)["AP"]
    assert ap_fp32 > 0.1 and abs(ap_int8 - ap_fp32) < 0.05, (ap_fp32, ap_int8)
