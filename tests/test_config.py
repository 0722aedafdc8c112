import pytest

from tutorial_lib.config import load_config, parse_device, parse_override, parse_value, save_config, validate_device
from tutorial_lib.errors import UserError


@pytest.mark.parametrize("text, expected", [
    ("True", True), ("false", False), ("null", None), ("None", None), ("", None),
    ("3", 3), ("0.001", 0.001), ("1e-4", 1e-4), ("-2.5E3", -2500.0), ("[1, 2]", [1, 2]),
    ("gpu:0,1", "gpu:0,1"), ("LabelMe", "LabelMe"), ("path/to dir", "path/to dir"),
])
def test_parse_value_yaml_scalars(text, expected):
    value = parse_value(text)
    assert value == expected and type(value) is type(expected)


def test_parse_override_splits_path_and_value():
    assert parse_override("CheckDataset.split.train_percent=80") == (["CheckDataset", "split", "train_percent"], 80)
    assert parse_override("Global.output=a=b") == (["Global", "output"], "a=b")
    for bad in ("Global.mode", "=3", "Global..mode=train"):
        with pytest.raises(UserError):
            parse_override(bad)


def test_bad_value_yaml_is_a_user_error():
    with pytest.raises(UserError, match="cannot parse"):
        parse_value("[1, 2")


def test_model_name_resolves_bundled_yaml_and_overrides_apply_in_order():
    cfg = load_config("Mask-RT-DETR-S", ["Global.mode=train", "Train.learning_rate=1e-4", "Train.epochs_iters=3",
                                         "Train.pretrain_weight_path=None", "Train.learning_rate=2"])
    assert cfg["Global"]["model"] == "Mask-RT-DETR-S"
    assert cfg["Global"]["mode"] == "train"
    assert cfg["Train"]["epochs_iters"] == 3
    assert cfg["Train"]["learning_rate"] == 2.0 and isinstance(cfg["Train"]["learning_rate"], float)
    assert cfg["Train"]["pretrain_weight_path"] is None
    assert cfg["Predict"]["kernel_option"]["run_mode"] == "paddle"


def test_nested_overrides_and_dict_form():
    cfg = load_config(None, {"CheckDataset.split.enable": True, "CheckDataset.split.train_percent": 80,
                             "CheckDataset.split.val_percent": 20})
    assert cfg["CheckDataset"]["split"] == {"enable": True, "train_percent": 80, "val_percent": 20}
    cfg = load_config(None, ["Predict.kernel_option.run_mode=mkldnn", "Predict.input=[a.png, b.png]"])
    assert cfg["Predict"]["kernel_option"]["run_mode"] == "mkldnn"
    assert cfg["Predict"]["input"] == ["a.png", "b.png"]


def test_unknown_key_names_close_matches():
    with pytest.raises(UserError, match=r"unknown config key 'Train\.learnin_rate'.*'Train\.learning_rate'"):
        load_config(None, ["Train.learnin_rate=0.1"])
    with pytest.raises(UserError, match=r"did you mean 'Global.mode'"):
        load_config(None, ["Globl.mode=train"])
    with pytest.raises(UserError, match="unknown config key 'Train.epochs_iters.x'"):
        load_config(None, ["Train.epochs_iters.x=1"])


@pytest.mark.parametrize("override, message", [
    ("Train.batch_size=two", "must be int"),
    ("Train.batch_size=2.5", "must be int"),
    ("CheckDataset.convert.enable=yes please", "must be bool"),
    ("Global.mode=fly", "is not one of"),
    ("Predict.kernel_option.run_mode=cuda", "is not one of"),
    ("Train.batch_size=0", ">= 1"),
    ("Train.learning_rate=-1", "> 0"),
    ("Predict.threshold=1.5", r"\[0, 1\]"),
    ("CheckDataset=3", "is a section"),
])
def test_wrong_values_are_rejected(override, message):
    with pytest.raises(UserError, match=message):
        load_config(None, [override])


def test_split_percentages_must_sum_to_100():
    base = ["CheckDataset.split.enable=True", "CheckDataset.split.train_percent=80"]
    with pytest.raises(UserError, match="sum to 100"):
        load_config(None, base + ["CheckDataset.split.val_percent=30"])
    with pytest.raises(UserError, match="needs"):
        load_config(None, base)
    assert load_config(None, base + ["CheckDataset.split.val_percent=20"])["CheckDataset"]["split"]["enable"]


def test_yaml_files_errors_and_roundtrip(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("Global:\n  mode: train\n   device: cpu\n")
    with pytest.raises(UserError, match=r"not valid YAML \(line 3"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="mapping of sections"):
        load_config(listy)
    typo = tmp_path / "typo.yaml"
    typo.write_text("Train:\n  epoch_iters: 3\n")
    with pytest.raises(UserError, match=rf"'Train.epoch_iters' in {typo}.*epochs_iters"):
        load_config(typo)
    with pytest.raises(UserError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    cfg = load_config("MaskRCNN-ResNet50-FPN", ["Architecture.backbone.depth=18", "Train.epochs_iters=5"])
    saved = save_config(cfg, tmp_path / "out" / "config.yaml")
    assert load_config(saved) == cfg
    assert cfg["Architecture"]["backbone"] == {"depth": 18}  # merged into the bundled Architecture section


def test_unknown_model_name_suggests():
    with pytest.raises(UserError, match="Mask-RT-DETR-S"):
        load_config("Mask-RT-DETR-s")


@pytest.mark.parametrize("spec, expected", [
    ("cpu", ("cpu", [])), ("CPU", ("cpu", [])), ("gpu", ("gpu", [0])), ("gpu:1", ("gpu", [1])),
    ("gpu:0,1,2,3", ("gpu", [0, 1, 2, 3])), (" gpu:0, 1 ", ("gpu", [0, 1])),
])
def test_parse_device(spec, expected):
    assert parse_device(spec) == expected


@pytest.mark.parametrize("spec", ["cuda:0", "gpu:", "gpu:a", "cpu:0", "gpu:0,0", "tpu"])
def test_parse_device_rejects(spec):
    with pytest.raises(UserError):
        parse_device(spec)


def test_validate_device_against_available_gpus():
    assert validate_device("cpu", gpu_count=0) == "cpu"
    with pytest.raises(UserError, match="no GPU is available.*Global.device=cpu"):
        validate_device("gpu:0,1,2,3", gpu_count=0)
    with pytest.raises(UserError, match=r"GPU id\(s\) \[1\].*only 1 GPU"):
        validate_device("gpu:0,1", gpu_count=1)
    assert validate_device("gpu:0,1", gpu_count=2) == "gpu:0,1"
    assert validate_device("gpu", gpu_count=1) == "gpu:0"


def test_validate_device_on_this_machine():
    from tutorial_lib.config.device import visible_gpu_count

    count = visible_gpu_count()
    assert validate_device("cpu") == "cpu"
    if count == 0:
        with pytest.raises(UserError, match="no GPU"):
            validate_device("gpu:0")
    else:
        assert validate_device("gpu:0") == "gpu:0"


@pytest.mark.parametrize("path", [
    "paddlex/configs/modules/instance_segmentation/Mask-RT-DETR-H.yaml",  # PaddleX 3.0
    "paddlex/configs/instance_segmentation/Mask-RT-DETR-H.yaml",  # PaddleX 3.0 beta
    "./paddlex/configs/modules/instance_segmentation/Mask-RT-DETR-H.yml",
])
def test_paddlex_config_paths_use_the_bundled_config_with_one_notice(path, capsys):
    from tutorial_lib.config.loader import resolve_config_path

    assert resolve_config_path(path) == resolve_config_path("Mask-RT-DETR-H")
    notice = capsys.readouterr().err.splitlines()
    assert len(notice) == 1 and notice[0].startswith(f"notice: {path} does not exist here")
    cfg = load_config(path, ["Global.mode=check_dataset"])
    assert cfg["Global"]["model"] == "Mask-RT-DETR-H" and cfg["Architecture"]["size"] == "H"


def test_an_existing_paddlex_path_is_read_as_it_is(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "paddlex" / "configs" / "modules" / "instance_segmentation"
    folder.mkdir(parents=True)
    (folder / "Mask-RT-DETR-H.yaml").write_text("Global:\n  model: Mask-RT-DETR-H\n  output: mine\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_config("paddlex/configs/modules/instance_segmentation/Mask-RT-DETR-H.yaml")
    assert cfg["Global"]["output"] == "mine" and "Architecture" not in cfg  # the user's file, not the bundled one
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("path, message", [
    ("paddlex/configs/modules/instance_segmentation/Mask-RT-DETR-Q.yaml", "'Mask-RT-DETR-Q' is not a registered"),
    ("paddlex/configs/modules/object_detection/PP-YOLOE_plus-S.yaml", "'object_detection' module"),
    ("configs/Mask-RT-DETR-H.yaml", "does not exist"),
])
def test_paddlex_paths_that_cannot_resolve(path, message):
    with pytest.raises(UserError, match=message):
        load_config(path)


def test_pretrain_weight_path_official_is_the_registry_url():
    from tutorial_lib.models.registry import official_weights_url, resolve_pretrain_weight

    url = resolve_pretrain_weight("official", "Mask-RT-DETR-H")
    assert url == official_weights_url("Mask-RT-DETR-H") == \
        "https://paddledet.bj.bcebos.com/models/mask_rtdetr_hgnetv2_h_6x_coco.pdparams"
    assert resolve_pretrain_weight("w/best.pdparams", "Mask-RT-DETR-H") == "w/best.pdparams"
    assert resolve_pretrain_weight(None, "Mask-RT-DETR-H") is None
    with pytest.raises(UserError, match="MaskRCNN-ResNet18-FPN-S has no official weights"):
        resolve_pretrain_weight("official", "MaskRCNN-ResNet18-FPN-S")
