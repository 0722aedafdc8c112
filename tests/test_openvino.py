"""The OpenVINO backend (``run_mode="openvino"``): the ``inference.onnx`` paddle2onnx writes for ONNX Runtime, compiled
for OpenVINO's CPU plugin in fp32, against Paddle Inference; and the errors for what it cannot run."""
import shutil
import sys

import pytest

import tutorial_lib.config
from conftest import REPO, compare_detections as compare
from tutorial_lib.config import load_config
from tutorial_lib.config.schema import CHOICES
from tutorial_lib.errors import UserError
from tutorial_lib.predict import RUN_MODES, Predictor
from tutorial_lib.predict.backends import OpenVINOBackend, create_backend, ensure_onnx_model
from tutorial_lib.predict.onnx_export import UnsupportedModelError, is_current

DEMO = REPO / "data" / "remotesensing_demo.png"
MIN_IOU = 0.99  # the ONNX Runtime parity of test_hpi.py


@pytest.fixture
def model_dir(rtdetr_export, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(rtdetr_export, target)
    return target


def test_openvino_matches_paddle_inference(model_dir, capsys):
    reference = next(Predictor(model_dir, run_mode="paddle", threshold=0.0).predict(str(DEMO)))
    predictor = Predictor(model_dir, run_mode="openvino", threshold=0.0, cpu_threads=2)
    assert "converting" in capsys.readouterr().out and is_current(model_dir)
    assert isinstance(predictor.backend, OpenVINOBackend)
    compiled = predictor.backend.compiled
    assert compiled.get_property("INFERENCE_PRECISION_HINT").to_string() == "f32"  # not the CPU plugin's bf16
    assert int(compiled.get_property("INFERENCE_NUM_THREADS")) == 2
    result = next(predictor.predict(str(DEMO)))
    assert len(result.boxes) == len(reference.boxes) == 50  # the smoke config's num_top_queries
    assert result.masks.shape == reference.masks.shape == (50, 512, 512)
    unmatched, box_dev, score_dev, min_iou = compare(reference, result)
    with capsys.disabled():  # shown with pytest -s
        print(f"\nopenvino vs paddle: {50 - len(unmatched)}/50 matched, max box deviation {box_dev:.2e} px, "
              f"max score deviation {score_dev:.2e}, min mask IoU {min_iou:.4f}")
    assert not unmatched, unmatched[:3]
    assert min_iou >= MIN_IOU
    # ONNX Runtime runs the same converted file: no second conversion
    Predictor(model_dir, run_mode="onnxruntime")
    assert "converting" not in capsys.readouterr().out


def test_bf16_would_break_parity_so_the_comparison_can_fail(model_dir):
    """Control for the test above: the same model compiled in the CPU plugin's bf16 default (on CPUs that have it)
    is caught by the parity check."""
    import openvino

    core = openvino.Core()
    if "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        pytest.skip("this CPU has no bf16: the CPU plugin runs fp32 anyway")
    reference = next(Predictor(model_dir, run_mode="paddle", threshold=0.0).predict(str(DEMO)))
    predictor = Predictor(model_dir, run_mode="openvino", threshold=0.0)
    backend = predictor.backend
    backend.compiled = core.compile_model(core.read_model(str(ensure_onnx_model(model_dir))), "CPU",
                                          {"INFERENCE_PRECISION_HINT": "bf16"})
    backend._request = backend.compiled.create_infer_request()
    unmatched, _, _, _ = compare(reference, next(predictor.predict(str(DEMO))))
    print(f"\nopenvino bf16 vs paddle: {len(unmatched)}/50 detections not matched")
    assert unmatched


def test_openvino_runs_an_onnx_only_folder(model_dir, tmp_path):
    """The folder ``--paddle2onnx --onnx_model_dir OUT`` writes (inference.onnx + inference.yml, no Paddle model)."""
    out = tmp_path / "onnx_only"
    out.mkdir()
    shutil.copy2(ensure_onnx_model(model_dir), out / "inference.onnx")
    shutil.copy2(model_dir / "inference.yml", out / "inference.yml")
    result = next(Predictor(out, run_mode="openvino", threshold=0.0).predict(str(DEMO)))
    assert len(result.boxes) == 50 and result.masks.shape == (50, 512, 512)


def test_openvino_on_a_gpu_is_a_user_error(rtdetr_export, monkeypatch):
    with pytest.raises(UserError, match="run_mode=openvino runs on the CPU only"):
        create_backend(str(rtdetr_export), "gpu:0", "openvino")
    # through the Predictor, on a machine that has the GPU (this one has none, which would fail earlier)
    monkeypatch.setattr(tutorial_lib.config, "validate_device", lambda spec: spec)
    with pytest.raises(UserError, match="run_mode=openvino runs on the CPU only.*gpu:0"):
        Predictor(rtdetr_export, device="gpu:0", run_mode="openvino")
    assert not (rtdetr_export / "inference.onnx").exists()  # refused before any conversion


def test_missing_openvino_is_a_user_error_naming_pip_install(rtdetr_export, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino raises ImportError
    with pytest.raises(UserError, match="pip install openvino"):
        Predictor(rtdetr_export, run_mode="openvino")
    assert not (rtdetr_export / "inference.onnx").exists()


def test_rcnn_models_are_refused_with_the_operators_paddle2onnx_lacks(quickstart_model, tmp_path):
    rcnn = tmp_path / "rcnn"
    shutil.copytree(quickstart_model[0], rcnn)
    with pytest.raises(UnsupportedModelError) as info:
        Predictor(rcnn, run_mode="openvino")
    assert {"generate_proposals_v2", "distribute_fpn_proposals"} <= set(info.value.ops)
    assert "MaskRCNN-ResNet18-FPN-S" in str(info.value) and "mkldnn" in str(info.value)
    assert not list(rcnn.glob("*.onnx*")) and not list(rcnn.glob(".inference.onnx*"))


def test_openvino_is_a_run_mode_of_the_config_and_the_predictor():
    assert "openvino" in RUN_MODES
    assert CHOICES["Predict.kernel_option.run_mode"] is RUN_MODES  # one list, in config.schema
    cfg = load_config(None, ["Predict.kernel_option.run_mode=openvino"])
    assert cfg["Predict"]["kernel_option"]["run_mode"] == "openvino"
