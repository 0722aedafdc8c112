"""Global.mode=check_dataset end to end: the report, its outputs, convert/split first, CLI exit codes."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import tutorial_lib as tl
from conftest import REPO, tree_digest
from tutorial_lib.config import load_config
from tutorial_lib.data import check as check_module
from tutorial_lib.data.convert import coco_to_labelme
from tutorial_lib.data.sample import generate_sample, summarize
from tutorial_lib.errors import UserError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "ds"
    generate_sample(out, num_train=12, num_val=4, image_size=96, seed=1, progress=False)
    return out


def run_check(dataset_dir, output, *extra):
    return tl.run("Mask-RT-DETR-S", ["Global.mode=check_dataset", f"Global.dataset_dir={dataset_dir}",
                                     f"Global.output={output}", *extra])


def test_report_follows_paddlex_schema_and_counts_are_explicit(tiny, tmp_path, capsys):
    result = run_check(tiny, tmp_path / "out")
    written = json.loads((tmp_path / "out" / "check_dataset_result.json").read_text())
    assert written == result
    assert result["done_flag"] is True and result["check_pass"] is True
    assert result["show_type"] == "image" and result["dataset_type"] == "COCOInstSegDataset"
    assert result["dataset_path"] == str(tiny)
    summary = summarize(tiny)["splits"]
    attributes = result["attributes"]
    assert attributes["num_classes"] == 10
    for split in ("train", "val"):
        assert attributes[f"{split}_samples"] == attributes[f"{split}_annotations"] == summary[split]["instances"]
        assert attributes[f"{split}_images"] == summary[split]["images"]
        assert attributes[f"{split}_background_images"] == summary[split]["background_images"]
        assert attributes[f"{split}_annotations_per_class"] == summary[split]["per_class"]
        paths = attributes[f"{split}_sample_paths"]
        assert 1 <= len(paths) <= 4
        for rel in paths:
            assert rel.startswith(f"check_dataset/demo_img/{split}_")
            with Image.open(tmp_path / "out" / rel) as image:
                assert image.size == (96, 96)
    assert result["analysis"]["histogram"] == "check_dataset/histogram.png"
    with Image.open(tmp_path / "out" / "check_dataset" / "histogram.png") as image:
        assert image.format == "PNG" and image.size[0] >= 600
    assert result["errors"] == [] and result["problem_counts"]["warnings"]["few_images"] == 1
    saved = load_config(tmp_path / "out" / "config.yaml")
    assert saved["Global"]["dataset_dir"] == str(tiny) and saved["Global"]["mode"] == "check_dataset"
    out = capsys.readouterr().out
    assert "check_dataset PASSED" in out and f"train: 12 images ({summary['train']['background_images']} " in out


def test_demo_images_show_the_masks(tiny, tmp_path):
    result = run_check(tiny, tmp_path / "out")
    rel = result["attributes"]["train_sample_paths"][0]
    name = rel.split("train_", 1)[1]
    drawn = np.asarray(Image.open(tmp_path / "out" / rel).convert("RGB"), int)
    original = np.asarray(Image.open(tiny / "images" / name).convert("RGB"), int)
    assert np.abs(drawn - original).mean() > 2  # masks, outlines and labels were drawn


@pytest.mark.parametrize("dataset_dir, message", [("None", "Global.dataset_dir is not set"),
                                                  ("does/not/exist", "is not a folder")])
def test_missing_dataset_dir_is_a_user_error_with_a_hint(tmp_path, dataset_dir, message):
    with pytest.raises(UserError, match=message) as info:
        run_check(dataset_dir, tmp_path / "out")
    assert "python -m tutorial_lib sample --output data/remote_sense_sample" in str(info.value)
    assert "\n" not in str(info.value)


def test_progress_bar_on_large_datasets(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(check_module, "PROGRESS_MIN_IMAGES", 10)
    check_module.check_coco_dataset(tiny, tmp_path / "out", progress=True)
    assert "checking train images" in capsys.readouterr().err


def test_convert_runs_first_and_leaves_the_originals_alone(tiny, tmp_path):
    labelme = coco_to_labelme(tiny, tmp_path / "labelme")
    before = tree_digest(labelme)
    result = run_check(labelme, tmp_path / "out", "CheckDataset.convert.enable=True",
                       "CheckDataset.convert.src_dataset_type=LabelMe")
    assert tree_digest(labelme) == before
    converted = tmp_path / "out" / "converted_dataset"
    assert result["convert"]["dataset_dir"] == str(converted) and result["dataset_path"] == str(converted)
    assert result["check_pass"] is True
    assert result["attributes"]["train_annotations"] == summarize(tiny)["splits"]["train"]["instances"]


def test_split_runs_before_the_check(tiny, tmp_path):
    dataset = tmp_path / "ds"
    shutil.copytree(tiny, dataset)
    result = run_check(dataset, tmp_path / "out", "CheckDataset.split.enable=True",
                       "CheckDataset.split.train_percent=75", "CheckDataset.split.val_percent=25", "Global.seed=7")
    assert result["split"]["seed"] == 7 and result["split"]["backup"].endswith("backup/001")
    assert (result["attributes"]["train_images"], result["attributes"]["val_images"]) == (12, 4)
    assert result["check_pass"] is True


def test_cli_exit_codes_and_summary(tiny, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny, broken)
    (broken / "images" / "00003.jpg").unlink()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    results = [subprocess.run([sys.executable, "-m", "tutorial_lib", "-c", "Mask-RT-DETR-S",
                               "-o", f"Global.dataset_dir={path}", "-o", f"Global.output={tmp_path / name}"],
                              capture_output=True, text=True, env=env, timeout=120)
               for path, name in ((tiny, "good"), (broken, "bad"))]
    assert results[0].returncode == 0, results[0].stderr
    assert results[1].returncode == 1, results[1].stderr
    assert "check_dataset FAILED" in results[1].stdout and "missing_image_file x1" in results[1].stdout
    assert "images/00003.jpg does not exist" in results[1].stdout
