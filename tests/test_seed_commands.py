"""Every command of the seed tutorial, as written, through ``python -m tutorial_lib`` (in place of ``python main.py``
/ ``paddlex``), plus the tutorial's model table against the registry.

The tutorial: PaddleX 3.0, "general instance segmentation pipeline: remote-sensing image instance segmentation",
https://github.com/PaddlePaddle/PaddleX/blob/12a0fdd3734474bf18995f56bc5bd9664dda2a5e/docs/practical_tutorials/instance_segmentation_remote_sensing_tutorial.md

Each command runs verbatim in a working folder that holds ``./dataset/intseg_remote_sense_coco`` (a tiny generated
sample), so its relative paths (``./output``, ``output/best_model/inference``, ``./my_path``) mean what they mean
in the tutorial; a few ``-o``/``--input`` arguments appended after it adapt it to this machine (later values win):
the demo image URL becomes the committed ``data/remotesensing_demo.png`` (no internet), training runs one epoch of
the small CPU model (``paddlex/configs/modules/instance_segmentation/MaskRCNN-ResNet18-FPN-S.yaml``; Mask-RT-DETR-H
would take hours on 2 cores), and the conversion row points at a LabelMe copy of the sample. One dataset and one
trained model serve every row (module fixtures).
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "remotesensing_demo.png"
DEMO_URL = "https://paddle-model-ecology.bj.bcebos.com/paddlex/imgs/demo_image/remotesensing_demo.png"
H = "paddlex/configs/modules/instance_segmentation/Mask-RT-DETR-H.yaml"
DATASET = "./dataset/intseg_remote_sense_coco"
CPU_CONFIG = "paddlex/configs/modules/instance_segmentation/MaskRCNN-ResNet18-FPN-S.yaml"

# The tutorial's commands, section by section, as it writes them (after `python main.py` or `paddlex`).
SEED = {
    "2 quick experience": ["--pipeline", "instance_segmentation", "--input", DEMO_URL],
    "4.2 check dataset": ["-c", H, "-o", "Global.mode=check_dataset", "-o", f"Global.dataset_dir={DATASET}"],
    "4.2 check dataset (3.0 beta path)": ["-c", "paddlex/configs/instance_segmentation/Mask-RT-DETR-H.yaml",
                                          "-o", "Global.mode=check_dataset", "-o", f"Global.dataset_dir={DATASET}"],
    "4.3 convert": ["-c", H, "-o", "Global.mode=check_dataset", "-o", f"Global.dataset_dir={DATASET}",
                    "-o", "CheckDataset.convert.enable=True", "-o", "CheckDataset.convert.src_dataset_type=LabelMe"],
    "4.3 split": ["-c", H, "-o", "Global.mode=check_dataset", "-o", f"Global.dataset_dir={DATASET}",
                  "-o", "CheckDataset.split.enable=True", "-o", "CheckDataset.split.train_percent=80",
                  "-o", "CheckDataset.split.val_percent=20"],
    "5.1 train": ["-c", H, "-o", "Global.mode=train", "-o", f"Global.dataset_dir={DATASET}",
                  "-o", "Train.num_classes=10"],
    "5.1 train on 2 GPUs": ["-c", H, "-o", "Global.mode=train", "-o", f"Global.dataset_dir={DATASET}",
                            "-o", "Train.num_classes=10", "-o", "Global.device=gpu:0,1"],
    "5.2 evaluate": ["-c", H, "-o", "Global.mode=evaluate", "-o", f"Global.dataset_dir={DATASET}"],
    "6 predict": ["-c", H, "-o", "Global.mode=predict", "-o", "Predict.model_dir=output/best_model/inference",
                  "-o", f"Predict.input={DEMO_URL}"],
    "7 get pipeline config": ["--get_pipeline_config", "instance_segmentation", "--save_path", "./my_path"],
    # The tutorial does this step in Python: create_pipeline(pipeline="my_path/instance_segmentation.yaml").
    "7 pipeline from its yaml": ["--pipeline", "my_path/instance_segmentation.yaml", "--input", DEMO_URL],
}
# What this machine needs appended (later arguments win).
ADAPT = {
    "2 quick experience": ["--input", str(DEMO)],
    "4.3 convert": ["-o", "Global.dataset_dir=./dataset/intseg_remote_sense_labelme"],
    "5.1 train": ["-c", CPU_CONFIG, "-o", "Train.epochs_iters=1", "-o", "Train.batch_size=2"],
    "5.1 train on 2 GPUs": ["-c", CPU_CONFIG, "-o", "Train.epochs_iters=1"],
    "6 predict": ["-o", f"Predict.input={DEMO}"],
    "7 pipeline from its yaml": ["--input", str(DEMO), "--save_path", "./output/pipeline"],
}


def command(step):
    return SEED[step] + ADAPT.get(step, [])


def run(step, cwd, home=None):
    """``python -m tutorial_lib <the step's command>`` in ``cwd``; proxies point at a closed local port so that
    nothing reaches the internet (a download fails at once instead of waiting)."""
    env = dict(os.environ, OMP_NUM_THREADS="2", HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9",
               NO_PROXY="", TUTORIAL_LIB_CACHE=str(Path(cwd) / "cache"))
    if home is not None:
        env["TUTORIAL_LIB_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "tutorial_lib", *command(step)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def ok(result):
    assert result.returncode == 0, f"rc {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def notice_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith("notice: paddlex/configs/")]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A working folder laid out as the tutorial's: ./dataset/intseg_remote_sense_coco (8 train, 4 val images)."""
    from tutorial_lib.data.sample import generate_sample

    root = tmp_path_factory.mktemp("seed")
    generate_sample(root / DATASET, num_train=8, num_val=4, image_size=128, seed=3, progress=False)
    return root


@pytest.fixture(scope="module")
def trained(workdir):
    """Step 5.1 run once; later steps read its ./output as the tutorial's do."""
    return run("5.1 train", workdir), workdir


def test_the_table_holds_every_command_of_the_tutorial():
    sections = {step.split()[0] for step in SEED}
    assert sections == {"2", "4.2", "4.3", "5.1", "5.2", "6", "7"}
    assert all(SEED[step][:2] == ["-c", H] for step in SEED if step.split()[0] in ("4.2", "4.3", "5.1", "5.2", "6")
               and "beta" not in step)


@pytest.mark.parametrize("step", ["4.2 check dataset", "4.2 check dataset (3.0 beta path)"])
def test_check_dataset(step, workdir):
    result = ok(run(step, workdir))
    assert "Check dataset passed !" in result.stdout.splitlines()
    assert len(notice_lines(result)) == 1 and "Mask-RT-DETR-H" in notice_lines(result)[0]
    report = json.loads((workdir / "output" / "check_dataset_result.json").read_text())
    assert report["done_flag"] is True and report["check_pass"] is True
    assert report["attributes"]["num_classes"] == 10 and report["dataset_type"] == "COCOInstSegDataset"
    assert (workdir / "output" / report["analysis"]["histogram"]).is_file()


def test_convert_labelme(workdir, tmp_path):
    from tutorial_lib.data.convert import coco_to_labelme

    cwd = tmp_path
    coco_to_labelme(workdir / DATASET, cwd / "dataset" / "intseg_remote_sense_labelme")
    result = ok(run("4.3 convert", cwd))
    assert "Check dataset passed !" in result.stdout.splitlines()
    report = json.loads((cwd / "output" / "check_dataset_result.json").read_text())
    assert report["check_pass"] is True and report["convert"]["src_dataset_type"] == "LabelMe"
    converted = cwd / "output" / "converted_dataset" / "annotations"
    assert len(json.loads((converted / "instance_train.json").read_text())["images"]) == 8
    assert len(json.loads((converted / "instance_val.json").read_text())["images"]) == 4


def test_split(workdir, tmp_path):
    shutil.copytree(workdir / DATASET, tmp_path / DATASET)
    result = ok(run("4.3 split", tmp_path))
    assert "Check dataset passed !" in result.stdout.splitlines()
    annotations = tmp_path / DATASET / "annotations"
    images = {split: len(json.loads((annotations / f"instance_{split}.json").read_text())["images"])
              for split in ("train", "val")}
    assert images == {"train": 10, "val": 2}  # 80 / 20 of 12 images
    split = json.loads((tmp_path / "output" / "check_dataset_result.json").read_text())["split"]
    assert [split[k] for k in ("train_percent", "val_percent", "train_images", "val_images")] == [80, 20, 10, 2]
    # PaddleX renames the old annotations to *.bak; this library keeps them under annotations/backup/NNN/
    backup = tmp_path / split["backup"]  # relative to the working folder, as the command wrote it
    assert backup.parent == annotations / "backup" and (backup / "instance_train.json").is_file()


def test_train(trained):
    result, workdir = trained
    ok(result)
    assert len(notice_lines(result)) == 1 and "MaskRCNN-ResNet18-FPN-S" in notice_lines(result)[0]
    out = workdir / "output"
    summary = json.loads((out / "train_result.json").read_text())
    assert summary["model_name"] == "MaskRCNN-ResNet18-FPN-S" and summary["done_flag"] is True
    assert len(summary["label_dict"]) == 10
    for name in ("train.log", "config.yaml", "best_model/best_model.pdparams", "best_model/inference/inference.yml",
                 "best_model/inference/inference.pdmodel"):
        assert (out / name).is_file(), name


def test_train_on_two_gpus_without_them(tmp_path):
    from tutorial_lib.config.device import visible_gpu_count

    if visible_gpu_count() >= 2:
        pytest.skip("this machine has two GPUs: the command would really train")
    result = run("5.1 train on 2 GPUs", tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "gpu:0,1" in errors[0] and "paddlepaddle-gpu==2.6.2" in errors[0]
    assert not (tmp_path / "output").exists()


def test_evaluate(trained):
    _, workdir = trained
    result = ok(run("5.2 evaluate", workdir))
    assert "evaluated MaskRCNN-ResNet18-FPN-S on 4 images" in result.stdout
    report = json.loads((workdir / "output" / "evaluate_result.json").read_text())
    assert report["done_flag"] is True and report["num_images"] == 4
    assert report["weight_path"].endswith("output/best_model/best_model.pdparams")  # the bundled config's default
    assert 0.0 <= report["metrics"]["AP"] <= 1.0 and 0.0 <= report["metrics"]["bbox_AP"] <= 1.0


def test_predict(trained):
    _, workdir = trained
    ok(run("6 predict", workdir))
    saved = json.loads((workdir / "output" / "remotesensing_demo_res.json").read_text())
    result = saved.get("res", saved)
    assert Path(result["input_path"]).name == "remotesensing_demo.png"
    assert isinstance(result["boxes"], list) and "masks" in result
    assert (workdir / "output" / "remotesensing_demo_res.png").is_file()


def test_pipeline_config_then_pipeline_from_it(trained):
    _, workdir = trained
    result = ok(run("7 get pipeline config", workdir))
    path = workdir / "my_path" / "instance_segmentation.yaml"
    assert str(Path("my_path") / "instance_segmentation.yaml") in result.stdout
    config = yaml.safe_load(path.read_text())
    sub = config["SubModules"]["InstanceSegmentation"]
    assert config["pipeline_name"] == "instance_segmentation"
    assert sub == {"module_name": "instance_segmentation", "model_name": "Mask-RT-DETR-S", "model_dir": None,
                   "batch_size": 1, "threshold": 0.5}
    # The tutorial: put the fine-tuned model's local path into model_dir. As in PaddleX, model_name must name the
    # model that folder holds (PaddleX asserts it too); here that is the CPU model trained above.
    sub["model_dir"] = str(workdir / "output" / "best_model" / "inference")
    sub["model_name"] = "MaskRCNN-ResNet18-FPN-S"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = ok(run("7 pipeline from its yaml", workdir))
    assert "results saved in output/pipeline" in result.stdout
    assert "model: MaskRCNN-ResNet18-FPN-S (model_dir" in result.stdout
    assert (workdir / "output" / "pipeline" / "remotesensing_demo_res.png").is_file()


def test_quick_experience(trained, tmp_path):
    """Step 2 on a machine that cannot download the default model's official weights: one notice, then the cached
    quick-start model (here: the model trained above, put where the quick-start cache keeps it)."""
    from tutorial_lib.quickstart import quickstart_export_dir

    _, workdir = trained
    home = tmp_path / "home"
    shutil.copytree(workdir / "output" / "best_model" / "inference", quickstart_export_dir(home))
    result = ok(run("2 quick experience", tmp_path, home=home))
    assert "notice: official weights of Mask-RT-DETR-S are not available" in result.stdout + result.stderr
    assert "results saved in output" in result.stdout
    assert (tmp_path / "output" / "remotesensing_demo_res.png").is_file()


# ----------------------------------------------------------------------------- step 3: the model table
# Typed from PaddleX 3.0's instance-segmentation model list, the version the tutorial's step 3 shows:
# https://paddlepaddle.github.io/PaddleX/3.0-rc1/module_usage/tutorials/cv_modules/instance_segmentation.html
# (docs/module_usage/tutorials/cv_modules/instance_segmentation.md at the tutorial's commit). Columns: mask AP,
# GPU ms (normal, high-performance), CPU ms (normal, high-performance), size MB; None where the page shows none.
PUBLISHED = {
    "Mask-RT-DETR-H": (50.6, 172.36, 172.36, 1615.75, 1615.75, 449.9),
    "Mask-RT-DETR-X": (47.5, 114.16, 114.16, 1240.92, 1240.92, 237.5),
    "Mask-RT-DETR-L": (45.7, 88.18, 88.18, 1090.84, 1090.84, 113.6),
    "Mask-RT-DETR-M": (42.7, 78.69, 78.69, None, None, 66.6),
    "Mask-RT-DETR-S": (41.0, 33.5007, None, None, None, 51.8),
    "Cascade-MaskRCNN-ResNet50-FPN": (36.3, 141.69, 141.69, None, None, 254.8),
    "MaskRCNN-ResNet101-FPN": (36.6, 148.14, 148.14, None, None, 225.4),
    "MaskRCNN-ResNet50-vd-FPN": (36.4, 118.34, 118.34, None, None, 157.5),
    "MaskRCNN-ResNet50-FPN": (35.6, 118.30, 118.30, None, None, 157.5),
    "SOLOv2": (35.5, None, None, None, None, 179.1),
}
# PaddleDetection's COCO checkpoints (configs/mask_rtdetr/README.md, configs/mask_rcnn/README.md,
# configs/cascade_rcnn/README.md, configs/solov2/README.md at commit 666f597).
DETECTION_WEIGHTS = {
    "Mask-RT-DETR-H": "mask_rtdetr_hgnetv2_h_6x_coco", "Mask-RT-DETR-X": "mask_rtdetr_hgnetv2_x_6x_coco",
    "Mask-RT-DETR-L": "mask_rtdetr_hgnetv2_l_6x_coco", "Mask-RT-DETR-M": "mask_rtdetr_hgnetv2_m_6x_coco",
    "Mask-RT-DETR-S": "mask_rtdetr_hgnetv2_s_6x_coco",
    "Cascade-MaskRCNN-ResNet50-FPN": "cascade_mask_rcnn_r50_fpn_1x_coco",
    "MaskRCNN-ResNet101-FPN": "mask_rcnn_r101_fpn_1x_coco", "MaskRCNN-ResNet50-vd-FPN": "mask_rcnn_r50_vd_fpn_1x_coco",
    "MaskRCNN-ResNet50-FPN": "mask_rcnn_r50_fpn_1x_coco", "SOLOv2": "solov2_r50_fpn_1x_coco",
}
FAMILIES = {"Mask-RT-DETR": 5, "MaskRCNN": 3, "Cascade-MaskRCNN": 1, "SOLOv2": 1}


def test_registry_has_the_published_numbers_and_links():
    from tutorial_lib.models.registry import list_models, official_weights_url

    rows = list_models()
    assert [r["name"] for r in rows] == list(PUBLISHED)  # the tutorial's order: most accurate first
    for row in rows:
        name = row["name"]
        got = tuple(row[k] for k in ("mask_ap", "gpu_ms", "gpu_ms_hp", "cpu_ms", "cpu_ms_hp", "size_mb"))
        assert got == PUBLISHED[name], name  # exact: 172.36, not 172.0
        assert row["weights_url"] == official_weights_url(name) == \
            f"https://paddledet.bj.bcebos.com/models/{DETECTION_WEIGHTS[name]}.pdparams"
        assert row["paddlex_weights_url"] == ("https://paddle-model-ecology.bj.bcebos.com/paddlex/"
                                              f"official_pretrained_model/{name}_pretrained.pdparams")
        assert row["inference_url"] == ("https://paddle-model-ecology.bj.bcebos.com/paddlex/"
                                        f"official_inference_model/paddle3.0rc0/{name}_infer.tar")
        assert row["tutorial"] is True and row["description"] and "\n" not in row["description"]
    assert {f: sum(r["family"] == f for r in rows) for f in FAMILIES} == FAMILIES


def test_models_command_prints_the_numbers_as_published():
    result = ok(subprocess.run([sys.executable, "-m", "tutorial_lib", "models"], capture_output=True, text=True,
                               timeout=120))
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "172.36 / 172.36" in rows["Mask-RT-DETR-H"] and "1615.75 / 1615.75" in rows["Mask-RT-DETR-H"]
    assert "33.5007 / -" in rows["Mask-RT-DETR-S"] and " 41.0 " in rows["Mask-RT-DETR-S"]
    assert "118.30 / 118.30" in rows["MaskRCNN-ResNet50-FPN"]
