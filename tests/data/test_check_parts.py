"""The checker's parts: Problem records (validate), the streamed JSON reader, statistics and the native histogram
(analysis), DatasetReport's JSON and summary (report), and the mode layer's convert -> split -> check."""
import io
import json
import shutil

import numpy as np
import pytest
from conftest import tiny_sample
from PIL import Image

import tutorial_lib as tl
from tutorial_lib import modes
from tutorial_lib.config import load_config
from tutorial_lib.data import analysis, jsonstream, problems, validate
from tutorial_lib.data.check import check_coco_dataset, check_report
from tutorial_lib.data.convert import coco_to_labelme
from tutorial_lib.data.report import DatasetReport

TRAIN = "annotations/instance_train.json"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_sample(tmp_path_factory, num_train=12, seed=6)


@pytest.fixture
def ds(tiny, tmp_path):
    return shutil.copytree(tiny, tmp_path / "ds")


def edit(ds, change, rel=TRAIN):
    data = json.loads((ds / rel).read_text())
    change(data)
    (ds / rel).write_text(json.dumps(data))
    return data


def break_some(data):
    data["annotations"][0]["category_id"] = 42
    data["annotations"][1]["segmentation"] = [[1, 1, 2, 2]]
    data["annotations"][2]["bbox"] = [0, 0, 90, 90]
    data["annotations"][3]["id"] = data["annotations"][4]["id"]
    data["annotations"][5]["image_id"] = 777
    data["images"][0]["width"] = 95


# ----------------------------------------------------------------------------- validate: Problem records
def test_problems_are_records_with_a_separate_fix(ds):
    data = edit(ds, break_some)
    validation = validate.validate_dataset(ds, progress=False)
    problem = next(p for p in validation.problems if p.kind == "unknown_category_id")
    assert problem == problems.Problem(
        "unknown_category_id", TRAIN,
        f"{TRAIN}: annotation id {data['annotations'][0]['id']} (image id {data['annotations'][0]['image_id']}, "
        f"{next(i['file_name'] for i in data['images'] if i['id'] == data['annotations'][0]['image_id'])}): "
        f"category_id 42 is not one of the categories {list(range(1, 11))}",
        "fix category_id or add the category", data["annotations"][0]["id"], "error")
    assert problem.to_dict() == {"level": "error", "kind": "unknown_category_id", "file": TRAIN,
                                 "message": f"{problem.message}; {problem.fix}"}
    kinds = [p.kind for p in validation.errors]
    assert kinds == ["duplicate_annotation_id", "image_size_mismatch", "unknown_category_id",
                     "degenerate_segmentation", "bbox_mismatch", "unknown_image_id"]  # ids, images, annotations
    assert all(p.id is not None and p.fix for p in validation.errors)
    assert {p.severity for p in validation.warnings} == {"warning"}


def _outcome(dataset_dir, **kwargs):
    validation = validate.validate_dataset(dataset_dir, progress=False, **kwargs)
    stats = [analysis.split_stats(s) for s in validation.splits]
    return [p.to_dict() for p in validation.problems], stats, [sorted(s.good_images) for s in validation.splits]


def test_streamed_reading_equals_reading_whole_files(ds, monkeypatch):
    """Tiny read chunks split every number and string; a file in an unusual member order (categories first,
    annotations before images) and a file read whole must give the same problems and counts."""
    edit(ds, break_some)
    expected = _outcome(ds)
    assert len(expected[0]) >= 7
    monkeypatch.setattr(validate, "_read_whole", lambda *a: pytest.fail("the valid file was not streamed"))
    monkeypatch.setattr(jsonstream, "CHUNK", 3)
    assert _outcome(ds) == expected
    monkeypatch.setattr(jsonstream, "CHUNK", 1 << 20)
    data = json.loads((ds / TRAIN).read_text())
    reordered = {"categories": data["categories"], "info": {"nested": [[1, "]"], {"a": "\"}"}]},
                 "annotations": data["annotations"], "images": data["images"], "licenses": []}
    (ds / TRAIN).write_text(json.dumps(reordered, indent=3))
    assert _outcome(ds) == expected
    monkeypatch.undo()
    original = validate.load_split
    monkeypatch.setattr(validate, "load_split", lambda *a, **k: original(*a, **{**k, "stream": False}))
    assert _outcome(ds) == expected


@pytest.mark.parametrize("chunk", [1, 2, 5, 64])
def test_json_stream_gives_what_json_loads_gives(chunk):
    document = {"a": [1, -2.5e-3, 1e21, True, None, "x\"]}", {"k": [1, {"z": []}]}, []], "b": {"c": [1, 2]},
                "numbers": [123456789, 0.000001, -0.0], "e": [], "text": "é 航拍 \\ \n", "last": 98765}
    raw = json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")
    got = {}
    for key, value, is_array in jsonstream.JsonStream(io.BytesIO(raw), chunk=chunk).members():
        got[key] = list(value) if is_array else value
    assert got == document and json.dumps(got) == json.dumps(document)


@pytest.mark.parametrize("raw", [b"[]", b'{"a": 1, "a": 2}', b'{"a": [1, 2]} x', b'{"a": [1, 2', b'{"a": "\xff"}',
                                 b'{"a": [1 2]}', b"\xef\xbb\xbf{}"])
def test_json_stream_refuses_what_needs_a_whole_read(raw):
    with pytest.raises(jsonstream.NotStreamable):
        for _, value, is_array in jsonstream.JsonStream(io.BytesIO(raw), chunk=4).members():
            list(value) if is_array else None


def test_demo_annotations_are_read_again_when_not_cached(ds, tmp_path, monkeypatch):
    cached = check_coco_dataset(ds, tmp_path / "a", progress=False)
    monkeypatch.setattr(validate, "DEMO_CACHE_IMAGES", 0)
    reread = check_coco_dataset(ds, tmp_path / "b", progress=False)
    assert reread["attributes"] == cached["attributes"]
    for rel in cached["attributes"]["train_sample_paths"] + cached["attributes"]["val_sample_paths"]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def _as_png(ds, image):
    path = ds / "images" / image["file_name"]
    png = path.with_suffix(".png")
    Image.open(path).save(png)
    path.unlink()
    return png


def test_png_images_are_verified_without_a_full_decode(ds, tmp_path):
    data = json.loads((ds / TRAIN).read_text())
    first, second = data["images"][:2]
    _as_png(ds, first)
    truncated = _as_png(ds, second)
    truncated.write_bytes(truncated.read_bytes()[:-200])

    def rename(d):
        for image in d["images"][:2]:
            image["file_name"] = image["file_name"].replace(".jpg", ".png")
    edit(ds, rename)
    result = check_coco_dataset(ds, tmp_path / "out", progress=False)
    assert result["problem_counts"]["errors"] == {"unreadable_image": 1}
    assert f"images/{second['file_name'].replace('.jpg', '.png')} cannot be decoded" in result["errors"][0]["message"]


# ----------------------------------------------------------------------------- analysis: the native histogram
def test_histogram_is_drawn_natively_with_readable_class_names():
    from matplotlib.figure import Figure

    counts = {"train": {"ship": 5, "ground_track_field": 9, "harbor": 0}, "val": {"ship": 2, "harbor": 1}}
    ax = Figure().add_subplot()
    assert analysis.plot_class_histogram(counts, ax=ax) is ax
    ticks = {t.get_text(): t for t in ax.get_yticklabels()}
    assert set(ticks) == {"ship", "ground_track_field", "harbor"}
    assert all(t.get_rotation() == 0 for t in ticks.values())  # horizontal names, not rotated text in an image
    order = sorted(ticks, key=lambda name: ticks[name].get_position()[1])  # y grows downwards (inverted axis)
    assert order == ["ground_track_field", "ship", "harbor"]  # most annotations on top
    widths = {(round(b.get_y() + b.get_height() / 2), b.get_facecolor()[:3]): b.get_width() for b in ax.patches}
    train_color = ax.patches[0].get_facecolor()[:3]
    assert [w for (y, c), w in sorted(widths.items()) if c == train_color] == [9, 5, 0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train (14)", "val (3)"]


def test_histogram_png_matches_the_report_counts(tiny, tmp_path):
    report = check_report(tiny, tmp_path / "out", progress=False)
    with Image.open(tmp_path / "out" / report.analysis["histogram"]) as image:
        assert image.format == "PNG" and image.size[0] >= 600
        pixels = np.asarray(image.convert("RGB"))
    assert (np.abs(pixels.astype(int) - [0x44, 0x77, 0xaa]).sum(-1) < 10).sum() > 100  # train bars drawn


# ----------------------------------------------------------------------------- report: JSON and summary
def test_report_json_round_trip_and_a_short_summary_for_many_problems(ds, tmp_path):
    def break_boxes(data):
        for ann in data["annotations"]:
            ann["bbox"] = [0, 0, 90, 90]
    data = edit(ds, break_boxes)
    report = check_report(ds, tmp_path / "out", progress=False, extra={"convert": None})
    written = json.loads((tmp_path / "out" / "check_dataset_result.json").read_text())
    assert written == report.to_paddlex_json()
    assert list(written)[:7] == ["done_flag", "check_pass", "attributes", "analysis", "dataset_path", "show_type",
                                 "dataset_type"]
    assert written["convert"] is None and written["check_pass"] is False
    n = len(data["annotations"])
    assert written["problem_counts"]["errors"] == {"bbox_mismatch": n} and len(written["errors"]) == n > 40
    summary = report.summary()
    lines = summary.splitlines()
    assert len(lines) <= 12 and max(map(len, lines)) <= 260
    assert lines[0] == f"check_dataset FAILED: {ds} (10 classes)"
    assert f"{n} errors: bbox_mismatch x{n}" in summary
    assert sum(line.startswith("    - ") for line in lines) <= 5
    assert lines[-1].endswith(f"problem(s), each with its fix): {tmp_path / 'out' / 'check_dataset_result.json'}")
    assert "more not shown" in lines[-1]
    assert DatasetReport.from_json(written, tmp_path / "out").summary() == summary


# ----------------------------------------------------------------------------- the mode layer
def test_mode_prepares_then_checks_and_logs_paddlex_line(tiny, tmp_path, capsys):
    labelme = coco_to_labelme(tiny, tmp_path / "labelme")
    cfg = load_config("Mask-RT-DETR-S", [f"Global.dataset_dir={labelme}", f"Global.output={tmp_path / 'out'}",
                                         "CheckDataset.convert.enable=True",
                                         "CheckDataset.convert.src_dataset_type=LabelMe",
                                         "CheckDataset.split.enable=True", "CheckDataset.split.train_percent=50",
                                         "CheckDataset.split.val_percent=50"])
    dataset_dir, done = modes.prepare_dataset(cfg)
    assert dataset_dir == tmp_path / "out" / "converted_dataset"
    assert done["convert"]["src_dataset_type"] == "LabelMe" and done["split"]["val_images"] == 8
    result = tl.run("Mask-RT-DETR-S", [f"Global.dataset_dir={tiny}", f"Global.output={tmp_path / 'out2'}"])
    assert result["check_pass"] is True and result["convert"] is None and result["split"] is None
    assert capsys.readouterr().out.splitlines()[-1] == "Check dataset passed !"
    broken = shutil.copytree(tiny, tmp_path / "broken")
    next((broken / "images").iterdir()).unlink()
    assert tl.run("Mask-RT-DETR-S", [f"Global.dataset_dir={broken}",
                                     f"Global.output={tmp_path / 'out3'}"])["check_pass"] is False
    assert "Check dataset passed" not in capsys.readouterr().out
