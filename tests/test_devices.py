"""Global.device beyond cpu/gpu: xpu, npu, mlu, dcu are parsed like gpu and checked against what the installed
Paddle was built for. On this machine (CPU build) every accelerator is refused with what to install."""
import subprocess
import sys
from types import SimpleNamespace

import pytest

from tutorial_lib.config import device as dev
from tutorial_lib.config import paddle_device, parse_device, validate_device
from tutorial_lib.errors import UserError

ACCELERATORS = ["gpu", "xpu", "npu", "mlu", "dcu"]
INSTALL = {"gpu": "paddlepaddle-gpu==2.6.2", "xpu": "paddlepaddle-xpu", "npu": "paddle-custom-npu",
           "mlu": "paddle-custom-mlu", "dcu": "ROCm (DCU) build of PaddlePaddle"}


@pytest.mark.parametrize("spec, expected", [
    ("xpu", ("xpu", [0])), ("xpu:0,1", ("xpu", [0, 1])), ("NPU:3", ("npu", [3])), (" mlu:0, 2 ", ("mlu", [0, 2])),
    ("dcu:1", ("dcu", [1])), ("npu:0,1,2,3", ("npu", [0, 1, 2, 3])),
])
def test_parse_accelerators(spec, expected):
    assert parse_device(spec) == expected


@pytest.mark.parametrize("spec, message", [
    ("xpu:", "not a device"), ("npu:0,0", "lists a NPU twice"), ("dcu:a", "not a device"), ("ipu:0", "not a device"),
    ("gcu", "not a device"), ("mlu:-1", "not a device"),
])
def test_parse_rejects(spec, message):
    with pytest.raises(UserError, match=message):
        parse_device(spec)


@pytest.mark.parametrize("kind", ACCELERATORS)
def test_cpu_build_refuses_each_accelerator_naming_what_to_install(kind):
    if dev.compiled_with(kind):
        pytest.skip(f"this Paddle is built for {kind}")
    with pytest.raises(UserError) as info:
        validate_device(f"{kind}:0,1")
    text = str(info.value)
    assert INSTALL[kind] in text and "-o Global.device=cpu" in text
    assert "CPU build" in text and f"{kind}:0,1" in text
    if kind != "gpu":
        assert dev.HARDWARE[kind][0] in text and "was not compiled for it" in text


def test_counts_decide_ids_and_dcu_runs_as_paddle_gpu():
    assert validate_device("xpu:0,1", counts={"xpu": 2}) == "xpu:0,1"
    assert validate_device("npu", counts={"npu": 1}) == "npu:0"
    assert validate_device("dcu:0,1", counts={"dcu": 4}) == "gpu:0,1"  # a ROCm Paddle drives DCUs as gpu places
    with pytest.raises(UserError, match=r"XPU id\(s\) \[2\].*only 2 XPU.*Global.device=xpu:0"):
        validate_device("xpu:0,2", counts={"xpu": 2})
    with pytest.raises(UserError, match="Cambricon MLU.*paddle-custom-mlu"):
        validate_device("mlu:0", counts={"mlu": 0})


@pytest.mark.parametrize("device, expected", [
    ("cpu", "cpu"), ("gpu:1,2", "gpu:1"), ("xpu:0,1", "xpu:0"), ("npu:3", "npu:3"), ("dcu:1", "gpu:1"),
    ("mlu", "mlu:0"),
])
def test_paddle_device_is_the_first_id(device, expected):
    assert paddle_device(device) == expected


def fake_paddle(cuda=False, rocm=False, xpu=0, custom=(), gpus=0):
    """Just the paddle.device API this module asks (2.6 names)."""
    device = SimpleNamespace(
        is_compiled_with_cuda=lambda: cuda or rocm, is_compiled_with_rocm=lambda: rocm,
        is_compiled_with_xpu=lambda: xpu > 0,
        get_all_custom_device_type=lambda: sorted({c.split(":")[0] for c in custom}),
        get_available_custom_device=lambda: list(custom), cuda=SimpleNamespace(device_count=lambda: gpus),
        xpu=SimpleNamespace(device_count=lambda: xpu))
    return SimpleNamespace(device=device, __version__="2.6.2")


def test_builds_are_read_from_paddle(monkeypatch):
    npu = fake_paddle(custom=("npu:0", "npu:1"))
    monkeypatch.setattr(dev, "_paddle", lambda: npu)
    assert dev.paddle_build(npu) == "paddlepaddle 2.6.2, plugin npu build"
    assert validate_device("npu:1") == "npu:1"
    with pytest.raises(UserError, match=r"NPU id\(s\) \[2\].*only 2 NPU"):
        validate_device("npu:2")
    with pytest.raises(UserError, match=r"Cambricon MLU.*\(paddlepaddle 2.6.2, plugin npu build\).*paddle-custom-mlu"):
        validate_device("mlu:0")

    rocm = fake_paddle(rocm=True, gpus=2)
    monkeypatch.setattr(dev, "_paddle", lambda: rocm)
    assert dev.paddle_build(rocm) == "paddlepaddle 2.6.2, ROCm build"
    assert validate_device("dcu:1") == "gpu:1" and validate_device("gpu:0,1") == "gpu:0,1"
    with pytest.raises(UserError, match="Kunlunxin XPU.*paddlepaddle-xpu"):
        validate_device("xpu")

    cuda_no_card = fake_paddle(cuda=True, gpus=0)
    monkeypatch.setattr(dev, "_paddle", lambda: cuda_no_card)
    with pytest.raises(UserError, match="no GPU is available.*CUDA build"):
        validate_device("gpu:0")
    with pytest.raises(UserError, match="Hygon DCU.*ROCm"):
        validate_device("dcu:0")

    xpu = fake_paddle(xpu=3)
    monkeypatch.setattr(dev, "_paddle", lambda: xpu)
    assert validate_device("xpu:0,2") == "xpu:0,2" and dev.device_count("xpu", xpu) == 3


def test_engine_sets_the_first_id_of_any_kind(monkeypatch):
    from tutorial_lib.engine import distributed

    calls = []
    monkeypatch.setattr(distributed, "import_ppdet", lambda: SimpleNamespace(set_device=calls.append))
    for device in ("cpu", "gpu:1,2", "xpu:0,1", "npu:2"):
        assert distributed.set_device(device) == device
    assert calls == ["cpu", "gpu:1", "xpu:0", "npu:2"]


def test_cli_refuses_an_accelerator_in_one_line(tmp_path):
    if dev.compiled_with("xpu"):
        pytest.skip("this Paddle is built for XPU")
    result = subprocess.run([sys.executable, "-m", "tutorial_lib", "-c", "Mask-RT-DETR-S", "-o", "Global.mode=train",
                             "-o", f"Global.dataset_dir={tmp_path}", "-o", "Global.device=xpu:0,1",
                             "-o", f"Global.output={tmp_path / 'out'}"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "paddlepaddle-xpu" in errors[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()  # refused before any work
