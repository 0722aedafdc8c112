"""High-performance inference backends: ONNX Runtime (paddle2onnx) against Paddle Inference, which models convert,
the PaddleX-style ``--paddle2onnx`` CLI, ``use_hpip`` and the errors for backends this machine cannot run."""
import os
import shutil
import subprocess
import sys

import pytest

import tutorial_lib as tl
from conftest import REPO, compare_detections
from tutorial_lib.errors import UserError
from tutorial_lib.predict import Predictor
from tutorial_lib.predict.onnx_export import UnsupportedModelError, convert_to_onnx, is_current

DEMO = REPO / "data" / "remotesensing_demo.png"


def test_onnxruntime_matches_paddle_inference(rtdetr_export, tmp_path, capsys):
    model_dir = tmp_path / "model"
    shutil.copytree(rtdetr_export, model_dir)
    reference = next(Predictor(model_dir, run_mode="paddle", threshold=0.0).predict(str(DEMO)))
    onnx = next(Predictor(model_dir, run_mode="onnxruntime", threshold=0.0).predict(str(DEMO)))
    assert "converting" in capsys.readouterr().out and is_current(model_dir)
    assert len(onnx.boxes) == len(reference.boxes) == 50  # the smoke config's num_top_queries
    # same detections (class, box within 0.05 px, score within 1e-4; near-equal scores may swap places)
    unmatched, _, _, min_iou = compare_detections(reference, onnx)
    assert not unmatched, unmatched[:3]
    assert min_iou >= 0.99
    # the second predictor reuses the converted model
    Predictor(model_dir, run_mode="onnxruntime")
    assert "converting" not in capsys.readouterr().out


def test_stale_onnx_model_is_converted_again(rtdetr_export, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(rtdetr_export, model_dir)
    convert_to_onnx(model_dir)
    assert is_current(model_dir)
    earlier = (model_dir / "inference.pdiparams").stat().st_mtime - 10
    os.utime(model_dir / "inference.onnx", (earlier, earlier))  # as if the model had been exported again since
    assert not is_current(model_dir)
    Predictor(model_dir, run_mode="onnxruntime")
    assert is_current(model_dir)


def test_cli_paddle2onnx_writes_a_self_contained_onnx_folder(rtdetr_export, tmp_path):
    out = tmp_path / "onnx_model"
    proc = subprocess.run([sys.executable, "-m", "tutorial_lib", "--paddle2onnx", "--paddle_model_dir",
                           str(rtdetr_export), "--onnx_model_dir", str(out)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["inference.onnx", "inference.yml"]
    assert not (rtdetr_export / "inference.onnx").exists()  # the source folder is left alone
    result = next(Predictor(out, run_mode="onnxruntime", threshold=0.0).predict(str(DEMO)))
    assert len(result.boxes) == 50 and result.masks.shape == (50, 512, 512)
    # the folder has no Paddle model, so Paddle Inference cannot run it, and says so
    with pytest.raises(UserError, match="missing inference.pdmodel"):
        Predictor(out, run_mode="paddle")


def test_rcnn_models_do_not_convert_and_say_which_operators(shipped_model, tmp_path, monkeypatch):
    from tutorial_lib.predict import onnx_export

    model_dir, _ = shipped_model
    with pytest.raises(UnsupportedModelError) as info:
        convert_to_onnx(model_dir, tmp_path / "onnx")
    assert {"generate_proposals_v2", "distribute_fpn_proposals"} <= set(info.value.ops)
    assert "MaskRCNN-ResNet18-FPN-S" in str(info.value) and "mkldnn" in str(info.value)
    assert not list((tmp_path / "onnx").glob("*.onnx*"))  # no partial file left behind
    # the same model files are not sent to paddle2onnx again in this process: the same error at once
    with monkeypatch.context() as patched:
        patched.setattr(onnx_export.subprocess, "run", lambda *a, **k: pytest.fail("paddle2onnx ran again"))
        with pytest.raises(UnsupportedModelError) as again:
            convert_to_onnx(model_dir, tmp_path / "onnx2")
    assert again.value.ops == info.value.ops and str(again.value) == str(info.value)
    proc = subprocess.run([sys.executable, "-m", "tutorial_lib", "--paddle2onnx", "--paddle_model_dir", str(model_dir),
                           "--onnx_model_dir", str(tmp_path / "cli")], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "generate_proposals_v2" in proc.stderr


def test_use_hpip_picks_the_fastest_measured_backend_and_says_which(rtdetr_export, shipped_model, tmp_path,
                                                                      capsys, monkeypatch):
    import yaml

    from tutorial_lib.predict import backends

    model_dir = tmp_path / "model"
    shutil.copytree(rtdetr_export, model_dir)
    # a model the table does not list (the smoke config) gets the backend fastest for all that it does list
    assert tl.create_pipeline(model_dir=str(model_dir), use_hpip=True).predictor.run_mode == "openvino"
    assert "Mask-RT-DETR-S-Smoke was not measured" in capsys.readouterr().out
    # a listed model gets its own measurement
    info = yaml.safe_load((model_dir / "inference.yml").read_text())
    info["Global"]["model_name"] = "Mask-RT-DETR-S"
    (model_dir / "inference.yml").write_text(yaml.safe_dump(info))
    monkeypatch.setitem(backends.CPU_FASTEST_MEASURED, "Mask-RT-DETR-S", "onnxruntime")
    assert tl.create_pipeline(model_dir=str(model_dir), use_hpip=True).predictor.run_mode == "onnxruntime"
    assert "fastest measured for Mask-RT-DETR-S" in capsys.readouterr().out
    # the measured pick is not installed: the other runtime
    monkeypatch.setitem(backends.CPU_FASTEST_MEASURED, "Mask-RT-DETR-S", "openvino")
    monkeypatch.setattr(backends, "_installed", lambda module: module != "openvino")
    assert backends.high_performance_mode(str(model_dir)) == "onnxruntime"
    assert "openvino is not installed" in capsys.readouterr().out
    monkeypatch.undo()
    # R-CNN models do not convert: oneDNN
    rcnn = tmp_path / "rcnn"
    shutil.copytree(shipped_model[0], rcnn)
    assert tl.create_pipeline(model_dir=str(rcnn), use_hpip=True).predictor.run_mode == "mkldnn"
    assert "using run_mode=mkldnn" in capsys.readouterr().out


@pytest.mark.parametrize("run_mode, message", [("trt_fp16", "needs a GPU"), ("cuda", "is not one of")])
def test_backends_this_machine_cannot_run_are_user_errors(rtdetr_export, run_mode, message):
    with pytest.raises(UserError, match=message):
        Predictor(rtdetr_export, run_mode=run_mode)


def test_solov2_exports_readable_outputs_but_onnxruntime_cannot_load_its_onnx(tmp_path):
    """SOLOv2's outputs are read by name in paddle.jit.save's order; paddle2onnx writes a graph that ONNX Runtime
    refuses, which the conversion reports instead of keeping the file."""
    from tutorial_lib.engine.export import export_untrained

    export_untrained("SOLOv2", tmp_path / "solov2", overrides={"Architecture.input_size": 256})
    result = next(Predictor(tmp_path / "solov2", threshold=0.0).predict(str(DEMO)))
    assert result.masks.shape[1:] == (512, 512) and len(result.boxes) == len(result.masks)
    with pytest.raises(UnsupportedModelError, match="ONNX Runtime cannot load it"):
        convert_to_onnx(tmp_path / "solov2")
    assert not (tmp_path / "solov2" / "inference.onnx").exists()


class _FlakyPredictor:
    """A Paddle Inference predictor whose ``run`` raises oneDNN's intermittent error when told to."""

    def __init__(self, inner, fail):
        self.inner, self.fail = inner, fail

    def run(self):
        if self.fail:
            raise RuntimeError("(PreconditionNotMet) could not execute a primitive")
        return self.inner.run()

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.mark.parametrize("failures, final_mode", [([True], "mkldnn"), ([True, True], "paddle")])
def test_onednn_primitive_failure_recovers_with_identical_results(rtdetr_export, monkeypatch, failures,
                                                                  final_mode):
    """oneDNN's "could not execute a primitive" (Paddle#34554): a fresh predictor, then plain kernels; the
    detections equal an undisturbed run's."""
    from tutorial_lib.predict.backends import PaddleInferenceBackend

    reference = next(Predictor(rtdetr_export, run_mode="mkldnn", threshold=0.0).predict(str(DEMO)))
    create = PaddleInferenceBackend._create
    plan = list(failures)
    monkeypatch.setattr(PaddleInferenceBackend, "_create",
                        lambda self: _FlakyPredictor(create(self), plan.pop(0) if plan else False))
    predictor = Predictor(rtdetr_export, run_mode="mkldnn", threshold=0.0)
    with pytest.warns(RuntimeWarning, match="could not execute a primitive") as caught:
        recovered = next(predictor.predict(str(DEMO)))
    assert len(caught) == len(failures) and predictor.backend.run_mode == final_mode
    unmatched, _, _, min_iou = compare_detections(reference, recovered)
    assert len(recovered.boxes) == len(reference.boxes) == 50 and not unmatched and min_iou >= 0.99


def test_other_inference_errors_are_not_retried(rtdetr_export, monkeypatch):
    from tutorial_lib.predict.backends import PaddleInferenceBackend

    create = PaddleInferenceBackend._create
    calls = []

    def failing(self):
        calls.append(1)
        predictor = _FlakyPredictor(create(self), False)
        predictor.run = lambda: (_ for _ in ()).throw(RuntimeError("(InvalidArgument) shape mismatch"))
        return predictor

    monkeypatch.setattr(PaddleInferenceBackend, "_create", failing)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        next(Predictor(rtdetr_export, run_mode="mkldnn").predict(str(DEMO)))
    assert len(calls) == 1
