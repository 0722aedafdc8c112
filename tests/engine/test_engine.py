"""Train / evaluate / export / predict on the smoke model (MaskRCNN-ResNet18-FPN-S) at 128 px.

One short training run (2 epochs x 3 iterations on 8 tiny images) is shared by every test here.
"""
import csv
import json
import types

import numpy as np
import pytest
import yaml

import tutorial_lib as tl
from conftest import mask_iou
from tutorial_lib.errors import UserError

SMOKE_MODEL = "MaskRCNN-ResNet18-FPN-S"


def overrides(dataset_dir, output, **extra):
    base = {"Global.mode": "train", "Global.dataset_dir": str(dataset_dir), "Global.output": str(output),
            "Global.seed": 0, "Train.epochs_iters": 2, "Train.batch_size": 2, "Train.learning_rate": 0.01,
            "Train.warmup_steps": 2, "Train.log_interval": 1, "Architecture.input_size": 128}
    base.update(extra)
    return base


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "run"
    result = tl.run(SMOKE_MODEL, overrides(tiny_dataset, out))
    return types.SimpleNamespace(output=out, result=result, dataset=tiny_dataset)


def load_cfg(**kw):
    from tutorial_lib.config import load_config

    return load_config(SMOKE_MODEL, kw)


# ----------------------------------------------------------------------------- compat
def test_compat_fixes_apply_to_this_paddledet():
    from tutorial_lib.models.ppdet_ops import import_ppdet
    from tutorial_lib.models import paddledet_compat as compat

    import_ppdet()
    status = compat.apply()
    assert set(status) == {f"{m}.{q}" for m, q, _ in compat.FIXES}
    assert all(v == "applied" for v in status.values()), status
    from ppdet.modeling.proposal_generator import rpn_head, target, target_layer

    assert target_layer.generate_proposal_target is target.generate_proposal_target  # re-pointed imports
    assert rpn_head.RPNHead._gen_proposal.__tutorial_lib_compat__


def test_compat_training_step_and_export_work(trained):
    """The training run behind every other test is the proof: Mask R-CNN steps ran and the export exists."""
    history = trained.result["history"]
    assert len(history) == 2 and all(np.isfinite(r["loss"]) for r in history)
    assert history[1]["loss"] < history[0]["loss"]
    inference = trained.output / "best_model" / "inference"
    assert (inference / "inference.pdmodel").stat().st_size > 0
    assert (inference / "inference.pdiparams").stat().st_size > 1_000_000


# ----------------------------------------------------------------------------- registry and configs
def test_registry_keeps_tutorial_table_and_adds_smoke_model():
    from tutorial_lib.models.registry import MODELS, list_models

    assert len(list_models()) == 10
    assert SMOKE_MODEL in MODELS and SMOKE_MODEL in [m["name"] for m in list_models(include_extra=True)]


@pytest.mark.parametrize("name", ["MaskRCNN-ResNet50-FPN", "MaskRCNN-ResNet50-vd-FPN", "MaskRCNN-ResNet101-FPN",
                                  "Cascade-MaskRCNN-ResNet50-FPN", "SOLOv2", SMOKE_MODEL])
def test_paddledet_configs_build(name):
    from tutorial_lib.config import load_config
    from tutorial_lib.models.adapters import get_adapter as get_family

    family = get_family(load_config(name))
    model = family.build_model(10)
    assert family.preprocess_spec()[-1]["type"] == "PadStride"
    names = [n for n, _ in model.named_parameters()]
    if family.architecture == "SOLOv2":
        assert any(n.startswith("solov2_head.") and "cate" in n for n in names)
    else:
        cls = [p for n, p in model.named_parameters() if n.startswith("bbox_head.") and "score" in n]
        assert cls and cls[0].shape[-1] == 11  # 10 classes + background


def test_unknown_model_family_is_a_user_error(tiny_dataset, tmp_path):
    with pytest.raises(UserError, match="no usable Architecture section"):
        tl.run(SMOKE_MODEL, overrides(tiny_dataset, tmp_path, **{"Architecture.adapter": "nonsense"}))


def test_num_classes_mismatch_is_a_user_error(tiny_dataset, tmp_path):
    with pytest.raises(UserError, match=r"Train.num_classes=3 but the dataset has 10 categories"):
        tl.run(SMOKE_MODEL, overrides(tiny_dataset, tmp_path, **{"Train.num_classes": 3}))


def test_missing_dataset_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        tl.run(SMOKE_MODEL, overrides(tmp_path / "nope", tmp_path / "out"))


# ----------------------------------------------------------------------------- train
def test_train_writes_paddlex_layout(trained):
    out = trained.output
    result = json.loads((out / "train_result.json").read_text())
    assert result["done_flag"] is True and result["model_name"] == SMOKE_MODEL
    assert result["label_dict"]["0"] == "airplane" and len(result["label_dict"]) == 10
    assert set(result["models"]) == {"last_1", "last_2", "best"}
    best = result["models"]["best"]
    for key in ("pdparams", "pdopt", "pdstates", "inference_config", "pdmodel", "pdiparams"):
        assert best[key] and (out / "best_model").as_posix() in best[key].replace("\\", "/")
    for key in ("train_log", "config"):
        assert (out / result[key].split("/")[-1]).is_file()
    assert result["models"]["last_1"]["pdparams"].endswith("epoch_2/epoch_2.pdparams")
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"loss", "loss_mask", "lr", "bbox_AP", "mask_AP", "mask_AP50"} <= set(rows[0])
    assert "eval epoch 2: mask AP=" in (out / "train.log").read_text()
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["Global"]["mode"] == "train" and saved["Architecture"]["input_size"] == 128
    info = yaml.safe_load((out / "best_model" / "inference" / "inference.yml").read_text())
    assert info["Global"]["model_name"] == SMOKE_MODEL and len(info["label_list"]) == 10


def test_resume_matches_uninterrupted_run(trained, tmp_path):
    """Interrupt after 4 iterations (mid epoch 2), resume from interrupted/: same final weights as `trained`."""
    import paddle

    from tutorial_lib.config import validate_device
    from tutorial_lib.engine.train import train

    out = tmp_path / "resumed"
    cfg = load_cfg(**overrides(trained.dataset, out, **{"Train.keep_last_epochs": 1, "Train.amp": "O1"}))
    cfg["Global"]["device"] = validate_device(cfg["Global"]["device"])

    def stop(info):
        if info["global_step"] == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, callback=stop)
    states = paddle.load(str(out / "interrupted" / "interrupted.pdstates"))
    assert (states["epoch"], states["step"]) == (1, 1)
    assert json.loads((out / "train_result.json").read_text())["done_flag"] is False
    assert "needs a GPU" in (out / "train.log").read_text()

    cfg["Train"]["resume_path"] = str(out / "interrupted" / "interrupted.pdparams")
    result = train(cfg)
    assert result["done_flag"] is True and not (out / "interrupted").exists()
    assert not (out / "epoch_1").exists() and (out / "epoch_2").is_dir()  # keep_last_epochs=1
    a = paddle.load(str(trained.output / "epoch_2" / "epoch_2.pdparams"))
    b = paddle.load(str(out / "epoch_2" / "epoch_2.pdparams"))
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_allclose(b[name].numpy(), a[name].numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    assert [r["epoch"] for r in result["history"]] == [1, 2]
    np.testing.assert_allclose(result["history"][1]["loss"], trained.result["history"][1]["loss"], rtol=1e-5)


def test_resume_with_other_batch_size_or_past_the_end_is_refused(trained, tmp_path):
    with pytest.raises(UserError, match="same Train.batch_size"):
        tl.run(SMOKE_MODEL, overrides(trained.dataset, tmp_path, **{
            "Train.batch_size": 1, "Train.resume_path": str(trained.output / "epoch_1")}))
    with pytest.raises(UserError, match="raise Train.epochs_iters"):
        tl.run(SMOKE_MODEL, overrides(trained.dataset, tmp_path, **{
            "Train.epochs_iters": 1, "Train.resume_path": str(trained.output / "epoch_1")}))


def test_resume_with_more_epochs_replans_the_schedule(trained, tmp_path):
    """A run can be extended where it stands: the schedule is re-planned for the new total (one iteration run)."""
    from tutorial_lib.engine.train import train

    cfg = load_cfg(**overrides(trained.dataset, tmp_path, **{"Train.epochs_iters": 3,
                                                             "Train.resume_path": str(trained.output / "epoch_1")}))

    def stop(info):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, callback=stop)
    log = (tmp_path / "train.log").read_text()
    assert "re-planned from iteration 3 on" in log and "at epoch 2, iteration 0" in log


# ----------------------------------------------------------------------------- evaluate
def test_evaluate_writes_metrics_and_figures(trained, tmp_path):
    result = tl.run(SMOKE_MODEL, {"Global.mode": "evaluate", "Global.dataset_dir": str(trained.dataset),
                                  "Global.output": str(tmp_path), "Evaluate.score_threshold": 0.05,
                                  "Evaluate.weight_path": str(trained.output / "best_model" / "best_model.pdparams")})
    saved = json.loads((tmp_path / "evaluate_result.json").read_text())
    assert saved["done_flag"] is True
    metrics = saved["metrics"]
    for key in ("AP", "AP50", "AP75", "bbox_AP", "bbox_AP50", "bbox_AP75"):
        assert 0.0 <= metrics[key] <= 1.0
    for key in ("APs", "APm", "APl"):  # COCO's -1: no val object of that size (shown as "–" in the notebooks)
        assert metrics[key] == -1.0 or 0.0 <= metrics[key] <= 1.0
    assert len(metrics["per_class"]) == 10 and "mask_AP" in metrics["per_class"]["airplane"]
    matrix = np.array(saved["confusion_matrix"]["matrix"])
    assert matrix.shape == (11, 11)
    gt_instances = sum(len(json.loads((trained.dataset / "annotations" / "instance_val.json").read_text())
                           ["annotations"]) for _ in [0])
    assert matrix[:10].sum() == gt_instances  # every object is either found by some prediction or missed
    assert saved["errors"]["missed"] == matrix[:10, 10].sum()
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 0 and (tmp_path / "error_breakdown.png").is_file()
    assert result["metrics"]["AP"] == metrics["AP"]


def test_evaluate_without_weights_is_a_user_error(trained, tmp_path):
    with pytest.raises(UserError, match="no such weights file"):
        tl.run(SMOKE_MODEL, {"Global.mode": "evaluate", "Global.dataset_dir": str(trained.dataset),
                             "Global.output": str(tmp_path), "Evaluate.weight_path": str(tmp_path / "x.pdparams")})


def test_error_analysis_counts_each_kind():
    from pycocotools import mask as mask_utils

    from tutorial_lib.engine.metrics import match_image
    from tutorial_lib.structures import Instances

    def square(x, y, s=10):
        m = np.zeros((40, 40), bool)
        m[y:y + s, x:x + s] = True
        return m

    gts = [square(0, 0), square(20, 20), square(0, 25)]
    gt_rles = [mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) for m in gts]
    masks = [square(0, 0), square(0, 1), square(20, 20), square(30, 0, 8), square(3, 29)]
    pred = Instances((40, 40), scores=[0.9, 0.8, 0.7, 0.6, 0.5], class_ids=[0, 0, 1, 1, 2], masks=np.stack(masks))
    entries, missed = match_image(pred, gt_rles, np.array([0, 2, 1]))
    assert [e[0] for e in entries] == ["correct", "duplicate", "confusion", "background", "confusion"]
    assert missed == [1]  # the low-IoU confusion does not take the object


# ----------------------------------------------------------------------------- export and predict
def test_export_mode_writes_inference_model(trained, tmp_path):
    result = tl.run(SMOKE_MODEL, {"Global.mode": "export", "Global.output": str(tmp_path),
                                  "Export.weight_path": str(trained.output / "best_model" / "best_model.pdparams")})
    assert result["done_flag"]
    for name in ("inference.pdmodel", "inference.pdiparams", "inference.yml"):
        assert (tmp_path / name).is_file()
    info = yaml.safe_load((tmp_path / "inference.yml").read_text())
    assert [op["type"] for op in info["Preprocess"]] == ["Resize", "NormalizeImage", "Permute", "PadStride"]
    assert info["Preprocess"][0]["target_size"] == [128, 128]
    assert info["label_list"][0] == "airplane" and info["outputs"] == ["bbox", "bbox_num", "mask"]


def _dygraph_predictions(trained):
    from tutorial_lib.engine.common import load_trained, predict_split
    from tutorial_lib.engine.data import Split

    family, model, meta = load_trained(trained.output / "best_model" / "best_model", load_cfg())
    split = Split(trained.dataset, "train", allow_empty=True)
    return split, list(predict_split(model, family, split, meta["num_classes"]).values())


def test_exported_predictor_matches_dygraph_model(trained):
    from tutorial_lib.predict import Predictor

    split, dygraph = _dygraph_predictions(trained)
    k = int(np.argmax([len(p) for p in dygraph]))
    expected = dygraph[k]
    assert len(expected.scores) >= 1, "the tiny model found nothing; nothing to compare"
    predictor = Predictor(trained.output / "best_model" / "inference", threshold=0.0)
    result = next(predictor.predict(split.roidbs[k]["im_file"]))
    assert len(result.boxes) == len(expected.scores)
    np.testing.assert_allclose([b["score"] for b in result.boxes], expected.scores, atol=1e-3)
    for mine, theirs in zip(result.masks, expected.full_masks()):
        assert mask_iou(mine, theirs) >= 0.99


def test_predictor_streams_paths_folders_arrays_and_lists(trained, monkeypatch):
    from tutorial_lib.predict import Predictor, inputs

    calls = []
    real = inputs.read_image
    monkeypatch.setattr(inputs, "read_image", lambda p: calls.append(p) or real(p))
    predictor = Predictor(trained.output / "best_model" / "inference", batch_size=2, threshold=0.0)
    images = trained.dataset / "images"
    stream = predictor.predict([images, str(images / "00000.jpg"), np.zeros((50, 70, 3), np.uint8)])
    first = next(stream)
    assert len(calls) == 2  # one batch read, not the whole folder
    rest = list(stream)
    assert len(rest) + 1 == 12 + 1 + 1
    assert rest[-1].input_path is None and rest[-1].masks.shape[1:] == (50, 70)
    assert first.input_path.endswith("00000.jpg") and first.page_index is None
    assert first.masks.dtype == bool and first.masks.shape[1:] == (128, 128)
    for box in first.boxes:
        assert set(box) == {"cls_id", "label", "score", "coordinate"} and len(box["coordinate"]) == 4


def test_predict_mode_saves_images_and_json(trained, tmp_path):
    results = tl.run(SMOKE_MODEL, {"Global.mode": "predict", "Global.output": str(tmp_path),
                                   "Predict.model_dir": str(trained.output / "best_model" / "inference"),
                                   "Predict.input": str(trained.dataset / "images" / "00001.jpg"),
                                   "Predict.threshold": 0.0, "Predict.kernel_option.run_mode": "mkldnn"})
    assert len(results) == 1
    saved = json.loads((tmp_path / "00001_res.json").read_text())
    assert set(saved["res"]) == {"input_path", "page_index", "boxes", "masks"}
    assert (tmp_path / "00001_res.png").stat().st_size > 0


def test_predict_bad_model_dir_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not an exported model"):
        tl.run(SMOKE_MODEL, {"Global.mode": "predict", "Global.output": str(tmp_path),
                             "Predict.model_dir": str(tmp_path), "Predict.input": "x.png"})


def test_pretrained_weights_with_other_num_classes_reinitialise_class_layers(trained, capsys):
    """An official-style checkpoint with another class count loads; only class-dependent layers are skipped."""
    import paddle

    from tutorial_lib.engine import checkpoint
    from tutorial_lib.models.adapters import get_adapter as get_family

    model = get_family(load_cfg(**{"Architecture.input_size": 128})).build_model(4)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    source = trained.output / "best_model" / "best_model.pdparams"
    loaded, skipped = checkpoint.load_pretrained(model, source)
    skipped_names = sorted(name for name, _ in skipped)
    assert skipped_names and all(("score" in n or "delta" in n or "logits" in n) for n in skipped_names), skipped_names
    assert "re-initialised" in capsys.readouterr().out
    state, ref = model.state_dict(), paddle.load(str(source))
    np.testing.assert_array_equal(state[loaded[0]].numpy(), ref[loaded[0]].numpy())
    np.testing.assert_array_equal(state[skipped_names[0]].numpy(), before[skipped_names[0]])
    with pytest.raises(UserError, match="cannot download none.pdparams from 127.0.0.1") as info:
        checkpoint.load_pretrained(model, "https://127.0.0.1:9/none.pdparams")
    assert len(str(info.value)) <= 200 and "Connection refused" in str(info.value.__cause__)  # details: --debug


# ----------------------------------------------------------------------------- weight EMA (Architecture.use_ema)
# PaddleDetection's default decay type (threshold) makes the average differ clearly from the raw weights after a
# few iterations, so that the checks below can tell which weights were used; the recipe's type is tested in
# tests/engine/test_ema.py against the closed form.
EMA = {"Architecture.use_ema": True, "Architecture.ema_decay_type": "threshold", "Train.epochs_iters": 1,
       "Train.export_best": False}


@pytest.fixture(scope="module")
def trained_ema(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained_ema") / "run"
    result = tl.run(SMOKE_MODEL, overrides(tiny_dataset, out, **EMA))
    return types.SimpleNamespace(output=out, result=result, dataset=tiny_dataset)


def test_ema_checkpoints_hold_the_average_and_evaluate_uses_it(trained_ema, tmp_path):
    """.pdparams = EMA weights (what evaluate reads), .pdema = raw weights; train_result.json lists both."""
    import paddle

    from tutorial_lib.data.coco import load_coco
    from tutorial_lib.engine.common import load_trained, predict_split
    from tutorial_lib.engine.data import Split
    from tutorial_lib.engine.metrics import coco_metrics

    out = trained_ema.output
    result = json.loads((out / "train_result.json").read_text())
    for key in ("last_1", "best"):
        assert result["models"][key]["pdema"].endswith(".pdema")
        assert (out / result["models"][key]["pdema"]).stat().st_size > 1_000_000
    prefix = out / "best_model" / "best_model"
    states = paddle.load(str(prefix) + ".pdstates")
    steps = states["total_steps"]
    assert states["ema"]["step"] == steps and states["ema"]["decay_type"] == "threshold"
    averaged, raw = paddle.load(str(prefix) + ".pdparams"), paddle.load(str(prefix) + ".pdema")
    assert set(averaged) == set(raw)
    moved = [k for k in raw if not np.allclose(averaged[k].numpy(), raw[k].numpy(), rtol=1e-3, atol=1e-6)]
    assert len(moved) > len(raw) // 2, "the average should differ from the last weights"

    evaluated = tl.run(SMOKE_MODEL, {"Global.mode": "evaluate", "Global.dataset_dir": str(trained_ema.dataset),
                                     "Global.output": str(tmp_path), "Evaluate.weight_path": str(prefix) + ".pdparams"})
    adapter, model, meta = load_trained(prefix, load_cfg())  # what evaluate and export build
    state = model.state_dict()
    for name in moved:
        np.testing.assert_array_equal(state[name].numpy(), averaged[name].numpy(), err_msg=name)
    split = Split(trained_ema.dataset, "val", allow_empty=True)
    with_average = predict_split(model, adapter, split, meta["num_classes"])
    assert evaluated["metrics"] == coco_metrics(load_coco(split.path), with_average, split.clsid2catid)
    assert trained_ema.result["history"][-1]["mask_AP"] == evaluated["metrics"]["AP"]  # training evaluated the EMA
    with pytest.raises(UserError, match="raw training weights"):
        tl.run(SMOKE_MODEL, {"Global.mode": "export", "Global.output": str(tmp_path / "x"),
                             "Export.weight_path": str(prefix) + ".pdema"})


def test_resume_with_ema_matches_uninterrupted_run(trained_ema, tmp_path):
    """Interrupted after 2 iterations and resumed: the same average (.pdparams) and raw weights (.pdema)."""
    import paddle

    from tutorial_lib.engine.train import train

    out = tmp_path / "resumed"
    cfg = load_cfg(**overrides(trained_ema.dataset, out, **EMA))

    def stop(info):
        if info["global_step"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, callback=stop)
    assert paddle.load(str(out / "interrupted" / "interrupted.pdstates"))["ema"]["step"] == 2
    assert (out / "interrupted" / "interrupted.pdema").is_file()
    cfg["Train"]["resume_path"] = str(out / "interrupted" / "interrupted.pdparams")
    train(cfg)
    for ext in ("pdparams", "pdema"):
        a = paddle.load(str(trained_ema.output / "epoch_1" / f"epoch_1.{ext}"))
        b = paddle.load(str(out / "epoch_1" / f"epoch_1.{ext}"))
        for name in a:  # threshold decay: the bias correction is undone in float32 on resume
            np.testing.assert_allclose(b[name].numpy(), a[name].numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("total, warmup", [(58, 20), (145, 20), (100, 0), (30, 25)])
def test_piecewise_milestones_are_absolute_iterations_after_warmup(total, warmup):
    """As in PaddleDetection: the decays fall at round(0.75 * total) and round(0.9 * total), whatever the warmup
    (Paddle's LinearWarmup alone would shift them by the warmup, and a 2-epoch run would never decay)."""
    from tutorial_lib.engine.optim import build_schedule

    schedule = build_schedule({"type": "PiecewiseDecay", "milestones": [0.75, 0.9], "gamma": 0.1,
                               "warmup_start_factor": 0.1}, 0.01, warmup, total)
    lrs = []
    for _ in range(total):
        lrs.append(schedule())
        schedule.step()
    first, second = round(0.75 * total), round(0.9 * total)
    expected = [0.01 * 0.1 ** ((i >= first) + (i >= second)) for i in range(total)]
    for i in range(warmup):  # the linear ramp from 0.1x
        expected[i] = 0.001 + (0.01 - 0.001) * i / warmup
    np.testing.assert_allclose(lrs, expected, rtol=1e-6)
