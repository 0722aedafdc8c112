"""Mask-RT-DETR through the engine: train -> evaluate -> export -> predict on the CPU smoke configuration
(Mask-RT-DETR-S-Smoke: Mask-RT-DETR-S at 128 px, fewer queries), plus the bundled S/M/L/X/H configs, the
recipe's TrainReader on real samples, and official-style checkpoints with another class count.

One short training run (a few iterations on a handful of tiny images) is shared by the tests here; the longer
run in which mask AP becomes > 0 is ``benchmarks/mask_rtdetr_train.py``.
"""
import json
import types

import numpy as np
import pytest
import yaml

import tutorial_lib as tl
from conftest import mask_iou
from tutorial_lib.errors import UserError

SMOKE_MODEL = "Mask-RT-DETR-S-Smoke"
EPOCHS = 8


def overrides(dataset_dir, output, **extra):
    base = {"Global.mode": "train", "Global.dataset_dir": str(dataset_dir), "Global.output": str(output),
            "Global.seed": 0, "Train.epochs_iters": EPOCHS, "Train.batch_size": 2, "Train.learning_rate": 0.0004,
            "Train.warmup_steps": 2, "Train.log_interval": 1, "Train.eval_interval": EPOCHS}
    base.update(extra)
    return base


def load_cfg(name=SMOKE_MODEL, **kw):
    from tutorial_lib.config import load_config

    return load_config(name, kw)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_rtdetr") / "tiny_sample"
    tl.generate_sample(out, num_train=6, num_val=2, image_size=128, seed=0, progress=False)
    return out


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained_rtdetr") / "run"
    result = tl.run(SMOKE_MODEL, overrides(tiny_dataset, out))
    return types.SimpleNamespace(output=out, result=result, dataset=tiny_dataset)


def iteration_losses(train_log):
    return [float(line.rsplit(" loss=", 1)[1].split()[0]) for line in train_log.read_text().splitlines()
            if " iter " in line and " loss=" in line]


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize("size, mult", [("S", 0.1), ("M", 0.1), ("L", 0.05), ("X", 0.01), ("H", 0.01)])
def test_bundled_configs_carry_the_recipe(size, mult):
    from tutorial_lib.models.adapters import get_adapter as get_family
    from tutorial_lib.models.mask_rtdetr.adapter import MaskRTDETRAdapter as MaskRTDETRFamily

    cfg = load_cfg(f"Mask-RT-DETR-{size}")
    family = get_family(cfg)
    assert isinstance(family, MaskRTDETRFamily) and family.size == size
    arch = cfg["Architecture"]
    assert arch["optimizer"] == {"type": "AdamW", "weight_decay": 0.0001, "clip_grad_norm": 0.1}
    assert arch["backbone_lr_mult"] == [0.0, mult, mult, mult, mult]
    assert family.knobs == {"num_queries": 300, "num_denoising": 100, "num_sample_points": 12544,
                            "num_top_queries": 100}
    sample, batch = family.reader("train")
    assert [next(iter(op)) for op in batch] == ["BatchRandomResize", "NormalizeImage", "NormalizeBox",
                                                "BboxXYXY2XYWH", "Permute"]
    assert batch[0]["BatchRandomResize"]["target_size"][0] == 480
    assert family.preprocess_spec() == [
        {"type": "Resize", "target_size": [640, 640], "keep_ratio": False, "interp": 2},
        {"type": "NormalizeImage", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "norm_type": "none",
         "is_scale": True},
        {"type": "Permute"}, {"type": "PadStride", "stride": 0}]


def test_smoke_model_has_official_s_weight_shapes_and_backbone_lr():
    """Fewer queries / denoising groups / sample points change no weight: official S checkpoints still fit."""
    from tutorial_lib.models.adapters import get_adapter as get_family
    from tutorial_lib.models.mask_rtdetr import build_mask_rtdetr

    smoke = get_family(load_cfg()).build_model(10)
    assert smoke.transformer.num_queries == 100 and smoke.post_process.num_top_queries == 50
    assert smoke.loss.num_sample_points == 784
    official = build_mask_rtdetr("S", 10)
    assert {k: list(v.shape) for k, v in smoke.state_dict().items()} == \
        {k: list(v.shape) for k, v in official.state_dict().items()}

    recipe = get_family(load_cfg("Mask-RT-DETR-S")).build_model(10)
    mults = {n: p.optimize_attr["learning_rate"] for n, p in recipe.named_parameters() if not p.stop_gradient}
    assert {v for n, v in mults.items() if n.startswith("backbone.stages.")} == {0.1}
    assert {v for n, v in mults.items() if not n.startswith("backbone.")} == {1.0}
    assert not any(n.startswith("backbone.stem.") for n in mults)  # frozen stem


def test_recipe_train_reader_keeps_masks_aligned_with_boxes(tiny_dataset):
    """RandomExpand / RandomCrop / RandomFlip / BatchRandomResize (paddledet 2.6.0 ops) then the loss's format:
    every mask has the image's size and lies inside its (normalised cx cy w h) box."""
    from tutorial_lib.engine.data import Split, load_sample
    from tutorial_lib.models.adapters import get_adapter as get_family

    family = get_family(load_cfg("Mask-RT-DETR-S", **{"Architecture.input_size": 128}))
    transforms, batch_transforms = family.compose("train", 10)
    split = Split(tiny_dataset, "train", allow_empty=False)
    checked = 0
    for epoch in range(4):
        samples = [load_sample(split.roidbs, i, transforms, seed=3, epoch=epoch) for i in range(2)]
        inputs = family.to_inputs(batch_transforms(samples))
        h, w = inputs["image"].shape[2:]
        assert h == w and h in (96, 128, 160)
        for cls, box, segm in zip(inputs["gt_class"], inputs["gt_bbox"], inputs["gt_segm"]):
            cls, box, segm = cls.numpy(), box.numpy(), segm.numpy()
            assert cls.shape[1] == 1 and box.shape[0] == segm.shape[0] == cls.shape[0]
            assert segm.shape[1:] == (h, w) and (box >= -1e-3).all() and (box <= 1 + 1e-3).all()
            for (cx, cy, bw, bh), mask in zip(box, segm):
                ys, xs = np.nonzero(mask)
                if bw * w < 3 or bh * h < 3:
                    continue  # a sliver left by the crop
                assert len(xs)
                assert xs.min() >= (cx - bw / 2) * w - 2 and xs.max() <= (cx + bw / 2) * w + 2
                assert ys.min() >= (cy - bh / 2) * h - 2 and ys.max() <= (cy + bh / 2) * h + 2
                checked += 1
    assert checked >= 10


# ----------------------------------------------------------------------------- train
def test_training_loss_falls(trained):
    history = trained.result["history"]
    assert len(history) == EPOCHS and all(np.isfinite(r["loss"]) for r in history)
    losses = iteration_losses(trained.output / "train.log")
    assert len(losses) == EPOCHS * 2  # 5 of the 6 images have objects: 2 iterations of batch 2 per epoch
    first, last = np.mean(losses[:2]), np.mean(losses[-4:])
    assert last < 0.8 * first, (first, last)
    for key in ("loss_class", "loss_bbox", "loss_giou", "loss_mask", "loss_dice", "loss_mask_dn"):
        assert key in history[0]


def test_train_writes_paddlex_layout_and_inference_config(trained):
    out = trained.output
    result = json.loads((out / "train_result.json").read_text())
    assert result["done_flag"] is True and result["model_name"] == SMOKE_MODEL
    assert set(result["models"]) >= {"last_1", "best"}
    best = result["models"]["best"]
    for key in ("pdparams", "pdopt", "pdstates", "inference_config", "pdmodel", "pdiparams"):
        assert best[key]
    assert "eval epoch %d: mask AP=" % EPOCHS in (out / "train.log").read_text()
    info = yaml.safe_load((out / "best_model" / "inference" / "inference.yml").read_text())
    assert info["Global"]["model_name"] == SMOKE_MODEL and len(info["label_list"]) == 10
    assert info["arch"] == "MaskRTDETR" and info["adapter"] == "mask_rtdetr"
    assert info["outputs"] == ["bbox", "bbox_num", "mask"] and info["batch_size_limit"] is None
    assert info["batch_same_size"] is True
    assert [op["type"] for op in info["Preprocess"]] == ["Resize", "NormalizeImage", "Permute", "PadStride"]
    assert info["Preprocess"][0]["target_size"] == [128, 128] and info["Preprocess"][0]["keep_ratio"] is False


# ----------------------------------------------------------------------------- evaluate
def test_evaluate_mode(trained, tmp_path):
    result = tl.run(SMOKE_MODEL, {"Global.mode": "evaluate", "Global.dataset_dir": str(trained.dataset),
                                  "Global.output": str(tmp_path), "Evaluate.score_threshold": 0.05,
                                  "Evaluate.weight_path": str(trained.output / "best_model" / "best_model.pdparams")})
    metrics = json.loads((tmp_path / "evaluate_result.json").read_text())["metrics"]
    for key in ("AP", "AP50", "AP75", "bbox_AP", "bbox_AP50"):
        assert 0.0 <= metrics[key] <= 1.0
    assert result["metrics"]["AP"] == metrics["AP"] and len(metrics["per_class"]) == 10
    assert np.array(result["confusion_matrix"]["matrix"]).shape == (11, 11)


# ----------------------------------------------------------------------------- export and predict
def test_export_mode_writes_inference_model(trained, tmp_path):
    result = tl.run(SMOKE_MODEL, {"Global.mode": "export", "Global.output": str(tmp_path),
                                  "Export.weight_path": str(trained.output / "best_model" / "best_model.pdparams")})
    assert result["done_flag"]
    for name in ("inference.pdmodel", "inference.pdiparams", "inference.yml"):
        assert (tmp_path / name).is_file()
    assert (tmp_path / "inference.pdiparams").stat().st_size > 40_000_000  # ~14.6 M float32 weights
    info = yaml.safe_load((tmp_path / "inference.yml").read_text())
    assert info["outputs"] == ["bbox", "bbox_num", "mask"] and info["label_list"][0] == "airplane"


def test_exported_predictor_matches_dygraph_model(trained):
    from tutorial_lib.engine.common import load_trained, predict_split
    from tutorial_lib.engine.data import Split
    from tutorial_lib.predict import Predictor

    family, model, meta = load_trained(trained.output / "best_model" / "best_model", load_cfg())
    split = Split(trained.dataset, "val", allow_empty=True)
    dygraph = list(predict_split(model, family, split, meta["num_classes"]).values())
    predictor = Predictor(trained.output / "best_model" / "inference", threshold=0.0)
    for record, expected in zip(split.roidbs, dygraph):
        assert len(expected.scores) == 50  # num_top_queries of the smoke config; no NMS
        result = next(predictor.predict(record["im_file"]))
        assert len(result.boxes) == len(expected.scores)
        np.testing.assert_allclose([b["score"] for b in result.boxes], expected.scores, atol=1e-4)
        top = np.argsort(-expected.scores)[:10]  # distinct scores: the same detections in the same order
        assert [result.boxes[i]["cls_id"] for i in top] == expected.class_ids[top].tolist()
        np.testing.assert_allclose([result.boxes[i]["coordinate"] for i in top], expected.boxes[top], atol=0.05)
        assert result.masks.shape == expected.masks.shape == (50, 128, 128)
        for i in top:
            assert mask_iou(result.masks[i], expected.masks[i]) >= 0.99


def test_predict_mode_saves_images_and_json(trained, tmp_path):
    results = tl.run(SMOKE_MODEL, {"Global.mode": "predict", "Global.output": str(tmp_path),
                                   "Predict.model_dir": str(trained.output / "best_model" / "inference"),
                                   "Predict.input": str(trained.dataset / "images" / "00001.jpg"),
                                   "Predict.threshold": 0.0, "Predict.kernel_option.run_mode": "mkldnn"})
    assert len(results) == 1 and results[0]["num_instances"] == 50
    saved = json.loads((tmp_path / "00001_res.json").read_text())
    assert set(saved["res"]) == {"input_path", "page_index", "boxes", "masks"}
    assert (tmp_path / "00001_res.png").stat().st_size > 0


# ----------------------------------------------------------------------------- pretrained weights
@pytest.fixture(scope="module")
def coco_checkpoint(tmp_path_factory):
    """An official-style 80-class Mask-RT-DETR-S state dict."""
    from tutorial_lib.models.ppdet_ops import import_ppdet

    paddle = import_ppdet()
    from tutorial_lib.models.mask_rtdetr import build_mask_rtdetr

    paddle.seed(123)
    model = build_mask_rtdetr("S", 80, with_loss=False)
    path = tmp_path_factory.mktemp("coco") / "mask_rtdetr_hgnetv2_s_6x_coco.pdparams"
    paddle.save(model.state_dict(), str(path))
    return path


def test_80_class_checkpoint_loads_with_only_class_layers_reinitialised(coco_checkpoint):
    import paddle

    from tutorial_lib.models.adapters import get_adapter as get_family
    from tutorial_lib.models.mask_rtdetr import CLASS_DEPENDENT_KEYS

    family = get_family(load_cfg())
    model = family.build_model(10)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    messages = []
    loaded, skipped = family.load_pretrained(model, coco_checkpoint, log=messages.append)
    assert sorted(skipped) == sorted(CLASS_DEPENDENT_KEYS)
    assert "re-initialised class-dependent layers" in messages[0]
    assert all(k in messages[0] for k in CLASS_DEPENDENT_KEYS)
    ref = paddle.load(str(coco_checkpoint))
    for name, value in model.state_dict().items():
        if name in CLASS_DEPENDENT_KEYS:
            assert value.shape[0 if "embed" in name else -1] == 10
            if name.endswith("bias"):  # the prior-probability constant (0.01)
                np.testing.assert_allclose(value.numpy(), -np.log((1 - 0.01) / 0.01), rtol=1e-6)
            else:  # freshly drawn, not the values the model was built with
                assert not np.array_equal(value.numpy(), before[name])
        else:
            np.testing.assert_array_equal(value.numpy(), ref[name].numpy(), err_msg=name)


def test_pretrain_weight_path_in_a_training_run(tiny_dataset, coco_checkpoint, tmp_path, capsys):
    out = tmp_path / "finetune"
    result = tl.run(SMOKE_MODEL, overrides(tiny_dataset, out, **{
        "Train.epochs_iters": 1, "Train.pretrain_weight_path": str(coco_checkpoint), "Train.export_best": False}))
    assert result["done_flag"] is True
    printed = capsys.readouterr().out
    assert "mask_rtdetr_hgnetv2_s_6x_coco.pdparams" in printed
    assert "re-initialised class-dependent layers (num_classes differs): transformer.denoising_class_embed.weight, " \
           "transformer.score_head.weight, transformer.score_head.bias" in printed
    assert "re-initialised class-dependent layers" in (out / "train.log").read_text()


def test_checkpoint_of_another_model_is_a_user_error(coco_checkpoint, tmp_path):
    import paddle

    from tutorial_lib.models.adapters import get_adapter as get_family

    family = get_family(load_cfg())
    model = family.build_model(10)
    state = paddle.load(str(coco_checkpoint))
    state.pop("neck.enc_mask_output.1.bias")
    bad = tmp_path / "bad.pdparams"
    paddle.save(state, str(bad))
    with pytest.raises(UserError, match="not a Mask-RT-DETR-S checkpoint"):
        family.load_pretrained(model, bad)
    with pytest.raises(UserError, match="no such file"):
        family.load_pretrained(model, tmp_path / "missing.pdparams")
