"""The lessons' helpers (tutorial_lib.lessons): sweeps that train each setting once, run histories, the model
notebook 05 trained, COCO's -1 in tables, and the names the notebooks reach through ``tl.``."""
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import tutorial_lib as tl
from tutorial_lib import lessons
from tutorial_lib.errors import UserError


def _history(epochs, peak, top, final_loss):
    rows = [{"epoch": e, "loss": final_loss + (epochs - e), "mask_AP": top - 0.01 * abs(e - peak),
             "mask_AP50": 2 * top - 0.01 * abs(e - peak), "bbox_AP": top / 2} for e in range(1, epochs + 1)]
    return rows


class FakeTrain:
    """Stands in for tl.train: records each call and returns a TrainResult-like record whose AP depends on the
    learning rate (best at 0.005) and whose best epoch is the last."""

    def __init__(self):
        self.calls = []

    def __call__(self, model, dataset_dir, *, output, epochs, learning_rate, options, **settings):
        self.calls.append({"model": model, "output": output, "epochs": epochs, "lr": learning_rate,
                           "options": options, **settings})
        top = {0.002: 0.2, 0.005: 0.4, 0.01: 0.4, 0.02: 0.05}[learning_rate] * min(1.0, epochs / 2)
        loss = {0.002: 1.5, 0.005: 1.0, 0.01: 1.2, 0.02: 3.0}[learning_rate]
        return SimpleNamespace(history=_history(epochs, epochs, top, loss), output=Path(output))


def test_sweep_trains_each_setting_once_and_tabulates(tmp_path):
    fake = FakeTrain()
    sweep = lessons.Sweep("M", tmp_path / "data", tmp_path / "sweeps", train=fake, seed=0, device="cpu",
                          options={"Train.warmup_steps": 2})
    lr_table = sweep.learning_rates([0.002, 0.005, 0.01, 0.02], epochs=2)
    assert len(fake.calls) == 4
    assert list(lr_table.columns) == ["learning rate", "epochs", "best mask AP", "mask AP50", "best epoch",
                                      "final loss"]
    assert lr_table["learning rate"].tolist() == [0.002, 0.005, 0.01, 0.02]
    np.testing.assert_allclose(lr_table["best mask AP"], [0.2, 0.4, 0.4, 0.05])
    np.testing.assert_allclose(lr_table["mask AP50"], [0.4, 0.8, 0.8, 0.1])
    assert lr_table["best epoch"].tolist() == [2, 2, 2, 2]
    np.testing.assert_allclose(lr_table["final loss"], [1.5, 1.0, 1.2, 3.0])
    best = sweep.best_learning_rate(lr_table)
    assert best == 0.005                                   # a tie on AP goes to the lower final loss

    epoch_table = sweep.epochs([1, 2, 4], lr=best)          # (0.005, 2) was trained by the lr sweep
    assert len(fake.calls) == 6 and [c["epochs"] for c in fake.calls[4:]] == [1, 4]
    assert epoch_table["epochs"].tolist() == [1, 2, 4]
    assert sweep.run(0.005, 2) is sweep.run(0.005, 2.0) and len(fake.calls) == 6   # asked again: not trained

    first = fake.calls[0]
    assert first["options"] == {"Train.warmup_steps": 2, "Train.export_best": False}
    assert first["seed"] == 0 and first["device"] == "cpu" and first["model"] == "M"
    assert len({c["output"] for c in fake.calls}) == 6     # one folder per setting
    assert Path(first["output"]).name == "lr0.002_epochs2"
    assert set(sweep.folders()) == {"lr 0.002, 2 epochs", "lr 0.005, 2 epochs", "lr 0.01, 2 epochs",
                                    "lr 0.02, 2 epochs", "lr 0.005, 1 epochs", "lr 0.005, 4 epochs"}


def test_sweep_reuses_a_run_made_elsewhere_and_keys_extra_settings(tmp_path):
    fake = FakeTrain()
    sweep = lessons.Sweep("M", tmp_path, tmp_path / "sweeps", train=fake)
    main = SimpleNamespace(history=_history(5, 3, 0.5, 0.7), output=tmp_path / "train")
    sweep.add(main, lr=0.005, epochs=5)
    table = sweep.epochs([5], lr=0.005)
    assert fake.calls == [] and table["best epoch"].tolist() == [3]
    scratch = sweep.run(0.005, 5, pretrain_weight_path=None)  # other settings: another run, another folder
    assert len(fake.calls) == 1 and scratch is not main
    assert fake.calls[0]["pretrain_weight_path"] is None
    assert fake.calls[0]["output"] != sweep.folder(0.005, 5)


def test_best_epoch_reads_histories_in_any_form():
    rows = [{"epoch": 1, "loss": 3.0, "mask_AP": 0.1, "mask_AP50": 0.2, "bbox_AP": 0.1},
            {"epoch": 2, "loss": 2.0, "mask_AP": 0.3, "mask_AP50": 0.5, "bbox_AP": 0.2},
            {"epoch": 3, "loss": 1.5, "mask_AP": 0.3, "mask_AP50": 0.6, "bbox_AP": 0.25}]
    expected = {"best epoch": 2, "best mask AP": 0.3, "mask AP50": 0.5, "bbox AP": 0.2, "final loss": 1.5}
    assert lessons.best_epoch(rows) == expected                  # a tie: the first epoch
    assert lessons.best_epoch(pd.DataFrame(rows)) == expected
    assert lessons.best_epoch(SimpleNamespace(history=rows)) == expected
    no_eval = lessons.best_epoch([{"epoch": 1, "loss": 2.0, "mask_AP": ""}])
    assert no_eval == {"best epoch": None, "best mask AP": None, "mask AP50": None, "bbox AP": None, "final loss": 2.0}


def test_history_frame_reads_a_runs_metrics_csv(tmp_path):
    pd.DataFrame(_history(3, 2, 0.3, 1.0)).to_csv(tmp_path / "metrics.csv", index=False)
    frame = lessons.history_frame(tmp_path)
    assert frame["epoch"].tolist() == [1, 2, 3]
    assert lessons.history_frame(SimpleNamespace(output=tmp_path)).equals(frame)
    assert lessons.history_frame(tmp_path / "metrics.csv").equals(frame)
    with pytest.raises(UserError, match="no metrics.csv"):
        lessons.history_frame(tmp_path / "nothing")


def _exported(root, smoke, model, sample=True, dataset=None):
    run = lessons.run_dir(root, smoke, model)
    inference = run / "train" / "best_model" / "inference"
    inference.mkdir(parents=True)
    (inference / "inference.yml").write_text("Global: {model_name: M}\n")
    if sample:
        (run / "remote_sense_sample" / "annotations").mkdir(parents=True)
    if dataset:
        (run / "train" / "config.yaml").write_text(f"Global:\n  dataset_dir: {dataset}\n")
    return run


def test_trained_model_finds_the_model_and_its_data(tmp_path):
    run = _exported(tmp_path, True, "M")
    found = lessons.trained_model(tmp_path, True, "M")
    assert found.model_dir == run / "train" / "best_model" / "inference"
    assert found.dataset_dir == run / "remote_sense_sample" and found.model == "M"
    own = tmp_path / "own"
    own.mkdir()
    _exported(tmp_path, False, "M", sample=False, dataset=own)        # 05 given its own dataset_dir
    assert lessons.trained_model(tmp_path, False, "M").dataset_dir == own
    with pytest.raises(UserError, match="run notebook 05 with model='X', smoke=True"):
        lessons.trained_model(tmp_path, True, "X")
    given = lessons.trained_model(tmp_path, True, "X", model_dir=found.model_dir)
    assert (given.model_dir, given.model) == (found.model_dir, "M")  # the name its inference.yml records


def test_run_folders_and_default_models(tmp_path):
    assert lessons.default_model("cpu") == "MaskRCNN-ResNet18-FPN-S"
    assert lessons.default_model("gpu:0") == lessons.GPU_MODEL == "Mask-RT-DETR-H"
    assert lessons.trained_model_dir(tmp_path, False, "M").relative_to(tmp_path).parts == (
        "full", "M", "train", "best_model", "inference")


def test_coco_minus_one_shows_as_a_dash_with_its_footnote():
    assert lessons.coco_value(-1) == lessons.coco_value(-1.0) == "–"
    assert lessons.coco_value(0.25) == 0.25 and lessons.coco_value("-1") == "-1"
    html = lessons.table([{"AP": 0.41234, "APs": -1.0, "APl": 0.5, "count": -1, "note": None},
                          {"AP": 0.2, "APs": 0.125, "APl": -1, "count": 3, "note": None}], index=False).to_html()
    cells = re.findall(r">([^<>]*)</td>", html)
    assert cells == ["0.412", "–", "0.500", "-1", "0.200", "0.125", "–", "3"]
    assert "no object of that size" in html and "<caption" in html
    plain = lessons.table([{"AP": 0.5, "APs": 0.1}]).to_html()
    assert "<caption" not in plain                               # no -1, no footnote


def test_error_summary_reads_the_numbers_of_the_evaluation():
    errors = {"correct": 34, "localisation": 5, "confusion": 16, "duplicate": 3, "background": 2, "missed": 49}
    confusion = {"matrix": [[30, 1, 20], [2, 4, 29], [1, 1, 0]], "score_threshold": 0.5}
    text = lessons.error_summary(errors, confusion)
    assert text.startswith("At score ≥ 0.5, 34 of 60 predictions are correct")
    assert "16 confusion" in text and "2 background (no object within IoU 0.1)" in text
    assert text.endswith("49 of 86 val objects (57%) were missed: no prediction took them.")


def test_compare_run_modes_times_each_model_and_notes_what_does_not_convert():
    from tutorial_lib.predict.onnx_export import UnsupportedModelError

    class FakePredictor:
        def __init__(self, folder, device, run_mode, threshold):
            if folder == "rcnn" and run_mode == "onnxruntime":
                raise UnsupportedModelError("no", ops=["generate_proposals_v2"])
            self.found = 3 if folder == "rcnn" else 5

        def predict(self, image):
            yield [0] * self.found

    rows = lessons.compare_run_modes({"R-CNN": "rcnn", "DETR": "detr"}, np.zeros((8, 8, 3), np.uint8),
                                     run_modes=("paddle", "onnxruntime"), predictor=FakePredictor,
                                     timer=lambda fn, repeats: float(repeats + len(fn())))
    assert rows == [{"model": "R-CNN", "run_mode": "paddle", "ms per image": 8.0, "instances": 3},
                    {"model": "R-CNN", "run_mode": "onnxruntime", "note": "no ONNX: generate_proposals_v2"},
                    {"model": "DETR", "run_mode": "paddle", "ms per image": 10.0, "instances": 5},
                    {"model": "DETR", "run_mode": "onnxruntime", "ms per image": 10.0, "instances": 5}]


def test_val_examples_feed_the_error_grid(tiny_dataset):
    paths, truths, labels = lessons.val_examples(tiny_dataset, 3)
    assert len(paths) == 3 and all(p.is_file() for p in paths) and len(labels) == 10
    counts = [len(t) for t in truths]
    assert counts == sorted(counts, reverse=True) and all(t.class_ids.max() < 10 for t in truths)
    fig, table = tl.error_grid(paths, truths, truths, labels)          # a perfect model
    assert [(r["correct"], r["false"], r["missed"]) for r in table] == [(n, 0, 0) for n in counts]
    coco = tl.load_coco(tiny_dataset / "annotations" / "instance_val.json")
    _, from_coco = tl.error_grid(paths, coco, truths)       # ground truth (and labels) straight from COCO
    assert from_coco == table


def test_notebook_names_still_resolve():
    from tutorial_lib import widgets

    for name, module in tl._LAZY.items():
        if module in (".lessons", ".figures", ".widgets"):
            assert getattr(tl, name) is getattr(__import__(f"tutorial_lib{module}", fromlist=[name]), name)
    for name in ("table", "fold", "capture_output", "default_model", "run_dir", "trained_model_dir",
                 "busiest_image", "GPU_MODEL", "plot_accuracy_vs_size", "plot_merge_modes"):
        assert getattr(widgets, name) is getattr(tl, name)          # the old import path still works


def test_sweep_trains_for_real_once_through_the_typed_step(tiny_dataset, tmp_path):
    """One real 1-epoch training of the CPU model on the tiny dataset: asked for twice, trained once; its table row
    is its metrics.csv, and a sweep run exports no inference model."""
    sweep = lessons.Sweep("MaskRCNN-ResNet18-FPN-S", tiny_dataset, tmp_path, seed=0, batch_size=2,
                          options={"Architecture.input_size": 128, "Train.warmup_steps": 1})
    first = sweep.run(0.01, 1)
    assert sweep.run(0.01, 1) is first and len(sweep.runs) == 1
    assert "-o Train.export_best=False" in first.command and "-o Train.learning_rate=0.01" in first.command
    assert Path(first.output).resolve() == sweep.folder(0.01, 1).resolve()
    assert not (Path(first.output) / "best_model" / "inference").exists()
    frame = lessons.history_frame(first)
    row = sweep.table().iloc[0]
    assert row["epochs"] == 1 and row["best epoch"] == 1
    assert row["final loss"] == pytest.approx(frame["loss"].iloc[-1], rel=1e-5)
    assert row["best mask AP"] == pytest.approx(frame["mask_AP"].max())
    # its evaluation: the CLI's PNGs are the figures' drawings, and the matrix's background row is the chart's bar
    evaluation = tl.evaluate("MaskRCNN-ResNet18-FPN-S", tiny_dataset, first.best_weights, output=tmp_path / "eval",
                             score_threshold=0.0, options={"Architecture.input_size": 128})
    assert sum(evaluation.confusion["matrix"][-1]) == evaluation.errors["background"]
    found = np.asarray(evaluation.confusion["matrix"])
    assert np.trace(found[:-1, :-1]) == evaluation.errors["correct"]
    assert found[:-1, -1].sum() == evaluation.errors["missed"]
    from PIL import Image

    from tutorial_lib import figures

    expected = figures.plot_confusion(evaluation.confusion)
    expected.canvas.draw()
    width, height = Image.open(evaluation.figures["confusion_matrix"]).size
    assert abs(width - expected.get_tightbbox().width * 100) < 30 and height > 400   # drawn at 100 dpi, whole
