"""Execute the notebooks with papermill under their smoke parameters and check what each recorded (scrapbook).

One table, ``RUNS``, says which notebook runs with which parameters (beyond ``SMOKE``) and what it must record.
Notebooks 06 and 07 predict with the model notebook 05 trained: their runs name the run of 05 they need (``after``),
which executes first, once per session. Besides the values, the tests check the notebooks' shape as lessons: the
parameters cell first, all recording in one last "Checks" cell, and only ``import tutorial_lib as tl``.
"""
import ast
import io
import json
import re
import tokenize
from dataclasses import dataclass, field

import papermill as pm
import pytest
import scrapbook as sb

from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
SMOKE = {"smoke": True, "seed": 0, "device": "cpu"}
CLASSES = ["airplane", "storage_tank", "vehicle", "tennis_court", "baseball_diamond", "ship", "harbor",
           "basketball_court", "ground_track_field", "bridge"]
MODEL_FILES = ["inference.pdiparams", "inference.pdiparams.info", "inference.pdmodel", "inference.yml"]
# Mask-RT-DETR-S-Smoke through 05 and 06: one training and a one-value sweep each way, at the config's own lr
RTDETR_SMOKE_RUN = dict(sample=dict(preset="ci", num_train=8, num_val=4, image_size=128), epochs=2, input_size=None,
                        lr=None, warmup=None, batch_size=2, lr_values=[0.0004], epoch_values=[1], sweep_epochs=1,
                        score_threshold=0.05, overrides=[])


@dataclass
class Run:
    notebook: str
    expect: dict  # recorded name -> expected value, or a predicate
    params: dict = field(default_factory=dict)
    after: str = None  # the run of notebook 05 whose model this run predicts with


RUNS = {
    "01": Run("01_choose_pipeline.ipynb", {
        "num_pipelines": 1,
        "num_models": 10,
        "class_names": CLASSES,
        "train_images": 8,
        "shown_instances": lambda n: n >= 3,
    }),
    "02": Run("02_quick_experience.ipynb", {
        "num_instances": lambda n: n >= 1,
        "saved_files": ["<stem>_res.json", "<stem>_res.png"],
        "mask_shape": [512, 512],  # the demo image
        "labels_known": True,
    }),
    "03": Run("03_choose_model.ipynb", {
        # exact parameter counts of our builds with 10 classes (= the reference's 80-class counts - 35,910)
        "param_counts": {"Mask-RT-DETR-S": 14628134, "Mask-RT-DETR-M": 18787142, "Mask-RT-DETR-L": 32853614,
                         "Mask-RT-DETR-X": 68740334, "Mask-RT-DETR-H": 129982910},
        "timed_models": ["Mask-RT-DETR-S"],
        "forward_ms_positive": True,
        "table_rows": 1,
    }),
    "04": Run("04_data.ipynb", {
        "check_pass": True,
        "num_classes": 10,
        "train_images": 12,
        "val_images": 4,
        "train_annotations": 51,
        "val_annotations": 17,
        "train_background_images": 2,
        "broken_check_pass": False,
        "broken_error_kinds": ["bbox_mismatch", "degenerate_segmentation", "missing_image_file"],
        "labelme_categories": CLASSES,
        "labelme_check_pass": True,
        "voc_categories": ["airplane", "baseball_diamond", "basketball_court", "harbor", "storage_tank",
                           "tennis_court", "vehicle"],
        "voc_split": [13, 3],
        "split_counts": [13, 3],
        "undo_restored": True,
        # the generated 512 px GeoTIFF scene cut into 128 px chips; one of its four 256 px blocks is val
        "geo_raster": [4, "uint16", "EPSG:32650"],
        "geo_label_crs": "EPSG:4326",
        "geo_check_pass": True,
        "geo_chips": [12, 4],
        "geo_annotations": lambda v: len(v) == 2 and min(v) > 0,
        "geo_classes": ["airplane", "basketball_court", "tennis_court", "vehicle"],
    }),
    "05": Run("05_train_and_evaluate.ipynb", {
        "model": "MaskRCNN-ResNet18-FPN-S",
        "train_done": True,
        "history_epochs": 2,
        "loss_first_last": lambda v: len(v) == 2 and 0 < v[1] < v[0],
        "best_model_files": MODEL_FILES,
        "metric_keys": ["AP", "AP50", "AP75", "APl", "APm", "APs",
                        "bbox_AP", "bbox_AP50", "bbox_AP75", "bbox_APl", "bbox_APm", "bbox_APs"],
        "mask_ap": lambda v: 0.0 <= v <= 1.0,
        "per_class_rows": 10,
        "confusion_shape": [11, 11],
        "lr_sweep": [0.005, 0.01, 0.02],
        "epoch_sweep": [1, 2, 3, 4],
        "sweep_aps": lambda v: len(v) == 7 and all(0.0 <= a <= 1.0 for a in v),
        "grid_objects_match": True,
        # 3 lr runs + 3 new epoch runs (its 1-epoch run is the lr sweep's) + the main training (lr 0.01, 2 epochs),
        # unless the best rate is 0.01: then the epoch sweep's 2-epoch run is the main training
        "compared_runs": lambda n: n in (6, 7),
    }),
    "05-rtdetr": Run("05_train_and_evaluate.ipynb", {
        "model": "Mask-RT-DETR-S-Smoke",
        "train_done": True,
        "history_epochs": 2,
        "loss_first_last": lambda v: len(v) == 2 and all(x > 0 for x in v),
        "best_model_files": MODEL_FILES,
        "mask_ap": lambda v: 0.0 <= v <= 1.0,
        "per_class_rows": 10,
        "confusion_shape": [11, 11],
        "lr_sweep": [0.0004],
        "epoch_sweep": [1],
        "compared_runs": 1,  # the one sweep run (both sweeps name it; the main run keeps the config's lr)
    }, params={"model": "Mask-RT-DETR-S-Smoke", "smoke_run": RTDETR_SMOKE_RUN}),
    "06": Run("06_predict.ipynb", {
        "model_files": MODEL_FILES,
        "result_keys": ["boxes", "input_path", "masks", "page_index"],
        "demo_mask_shape": [128, 128],   # the busiest training scene of 05's 128 px smoke sample
        "demo_instances": lambda n: n >= 1,  # every prediction shown to a reader has instances
        "stored_instances": lambda v: len(v) == 5 and all(n >= 1 for n in v),
        "folder_results": 5,
        "array_input_is_none": True,
        "run_modes_agree": True,
        "mode_outputs": ["<stem>_res.json", "<stem>_res.png"],
    }, after="05"),
    "06-rtdetr": Run("06_predict.ipynb", {
        "model_files": MODEL_FILES,
        "demo_mask_shape": [128, 128],
        "demo_instances": lambda n: n >= 1,
        "stored_instances": lambda v: len(v) == 5 and all(n >= 1 for n in v),
        "run_modes_agree": True,
    }, params={"model": "Mask-RT-DETR-S-Smoke"}, after="05-rtdetr"),
    "07": Run("07_integrate.ipynb", {
        "config_model_dir_set": True,
        "predict_files": ["<stem>_res.json", "<stem>_res.png"],
        "demo_instances": lambda n: n >= 1,
        "mosaic_shape": [256, 256],   # 2 x 2 copies of a 128 px scene
        "sliced_instances": lambda n: n >= 1,
        "tiles": 16,                   # 96 px tiles, 25 % overlap (a step of 72 px), over 256 px: 4 x 4
        # every mode keeps something; NMM's chained matches join at least as much as NMS's one keeper per match
        "merge_mode_counts": lambda v: len(v) == 4 and min(v.values()) >= 1
                                       and v["NMM, masks, IOU"] <= v["NMS, masks, IOU"],
        "geojson_features": lambda n: n >= 1,
        "geojson_matches_sliced": True,
        "viewer_polygons": lambda n: n >= 1,
        "serving_status": [200, 0],
        "serving_instances": lambda n: n >= 1,
        # the R-CNN model has no ONNX route; the untrained Mask-RT-DETR runs on all four backends
        "hpi_rows": [["paddle", True], ["mkldnn", True], ["onnxruntime", False], ["openvino", False],
                     ["paddle", True], ["mkldnn", True], ["onnxruntime", True], ["openvino", True]],
        # its INT8 version: all four rows, the file at least 3x smaller
        "int8_modes": ["onnxruntime", "onnxruntime_int8", "openvino", "openvino_int8"],
        "int8_size_ratio": lambda r: r >= 3.0,
        # 4b: the 1024 px generated scene, tiles predicted once by the oracle, merged three ways
        "merge_study_settings": [["none", "-", "-"], ["GREEDYNMM", "IOU", "masks"], ["NMS", "IOU", "masks"]],
        "merge_study_rows": 3,
        "merge_seam_crossing": lambda n: n >= 1,        # seams run through some labelled objects
        "merge_default_split_duplicates": [0.0, 0.0],   # the oracle's pieces, merged: nothing split or twice
        "merge_none_split_duplicates": lambda v: v[0] >= 1 and v[1] >= 1,   # unmerged: pieces and repeats
        "merge_tiles_predicted_once": True,
        "seam_zoom_panels": 3,
    }, after="05"),
}


def _cells(notebook):
    return json.loads(notebook.read_text(encoding="utf-8"))["cells"]


@pytest.fixture(scope="session")
def executed(tmp_path_factory):
    """run id -> (output folder, recorded values); each run executes once, its run of 05 first."""
    done = {}
    root = tmp_path_factory.mktemp("notebooks")

    def execute(run_id):
        if run_id in done:
            return done[run_id]
        run = RUNS[run_id]
        params = {**SMOKE, **run.params, "output_dir": str(root / run_id)}
        if run.after:
            params["model_dir"] = str(execute(run.after)[0] / "train" / "best_model" / "inference")
        out = root / f"{run_id}.ipynb"
        pm.execute_notebook(str(REPO / "notebooks" / run.notebook), str(out), kernel_name="python3",
                            progress_bar=False, cwd=str(REPO / "notebooks"), parameters=params)
        done[run_id] = (root / run_id, sb.read_notebook(str(out)).scraps.data_dict)
        return done[run_id]

    return execute


def test_every_notebook_has_a_run():
    assert NOTEBOOKS, "no notebooks found"
    assert sorted({run.notebook for run in RUNS.values()}) == [nb.name for nb in NOTEBOOKS]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_a_lesson(notebook):
    """Committed without outputs; parameters first; one last Checks cell; only the public API imported."""
    cells = _cells(notebook)
    code = [c for c in cells if c["cell_type"] == "code"]
    assert not any(c.get("outputs") or c.get("execution_count") for c in code), f"{notebook.name} has outputs"
    assert code[0].get("metadata", {}).get("tags") == ["parameters"], "the first code cell must be the parameters"
    assert cells[-1] is code[-1] and "".join(code[-1]["source"]).startswith("# Checks"), "no last Checks cell"
    for cell in code[:-1]:
        source = "".join(cell["source"])
        assert "scrapbook" not in source and "sb.glue" not in source, f"recording outside Checks: {source[:80]}"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tutorial_lib"):
                raise AssertionError(f"{notebook.name} imports from {node.module}; use `import tutorial_lib as tl`")
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name != "tutorial_lib" or alias.asname == "tl", "import tutorial_lib as tl"
                    assert not alias.name.startswith("tutorial_lib."), f"{notebook.name} imports {alias.name}"
    first = "".join(cells[0]["source"])
    assert "**Time:**" in first and "Not measured on a GPU" in first, "the first cell states the measured time"


MAX_STATEMENTS = 8  # per lesson cell: one idea, told by calling well-named functions


def _lesson_cell_problems(source):
    """What makes one lesson cell more than a few calls: function or class definitions, more than
    ``MAX_STATEMENTS`` statements (nested ones count), semicolons packing them, and the override strings that
    the typed steps spell out (``Global.mode=`` belongs in the CLI twin a step result prints)."""
    problems = []
    tree = ast.parse(source)
    statements = [n for n in ast.walk(tree) if isinstance(n, ast.stmt)]
    defined = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                                           ast.ClassDef))]
    if defined:
        problems.append(f"defines {', '.join(getattr(n, 'name', 'a lambda') for n in defined)}")
    if len(statements) > MAX_STATEMENTS:
        problems.append(f"{len(statements)} statements (at most {MAX_STATEMENTS})")
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    if any(t.type == tokenize.OP and t.string == ";" for t in tokens):
        problems.append("semicolons")
    if "Global.mode=" in source:
        problems.append("spells Global.mode= (use the typed step; its .command is the CLI twin)")
    return problems


def test_thin_cell_rule_can_fail():
    assert _lesson_cell_problems("result = tl.train(model, data)\nprint(result.command)") == []
    assert len(_lesson_cell_problems("def f():\n    return 1\nx = f(); y = lambda: 2")) == 2
    assert _lesson_cell_problems("\n".join(f"x{i} = {i}" for i in range(9)))[0].startswith("9 statements")
    assert _lesson_cell_problems('tl.run(m, ["Global.mode=train"])')


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_lesson_cells_are_thin(notebook):
    """Outside the parameters and Checks cells, every code cell calls a few named functions (issue: typed steps)."""
    code = [c for c in _cells(notebook) if c["cell_type"] == "code"]
    found = {}
    for number, cell in enumerate(code[1:-1], start=2):
        problems = _lesson_cell_problems("".join(cell["source"]))
        if problems:
            found[f"code cell {number}"] = problems
    assert not found, f"{notebook.name}: {found}"


# Prose numbers: a number a run produces must be printed by the run, or a re-run makes the text false. Markdown may
# hold numbers only where they are not results: inside code (`...`, fenced blocks: commands, keys, versions), the
# **Time:** line (written from the measured run by docs/walkthrough/build.py), dates, and step / notebook / section
# numbers. Identifiers with digits (NWPU VHR-10, ResNet-18, INT8, 8-bit) are words, not numbers.
_NOT_PROSE = [re.compile(p, re.S) for p in (r"```.*?```", r"`[^`]*`", r"\]\([^)]*\)", r"\*\*Time:\*\*[^\n]*(\n[^\n]+)*")]
_ALLOWED_NUMBERS = [re.compile(p, re.M) for p in (
    r"\b[Ss]teps? \d+(?:(?:–|-|, | and | or )\d+)*", r"\b[Nn]otebooks? \d+(?:(?:–|, | and | or )\d+)*",
    r"\b[Ss]ections? \d+", r"^#+ \d+[a-z]? ·", r"^\s*\d+\. ", r"\d{4}-\d{2}-\d{2}")]
_NUMBER = re.compile(r"(?<![\w.\-/−])[−-]?\d+(?:[.,]\d+)*(?![\w\-/])")


def _typed_numbers(markdown):
    text = markdown
    for pattern in _NOT_PROSE + _ALLOWED_NUMBERS:
        text = pattern.sub(" ", text)
    return [(number, line.strip()[:90]) for line in text.splitlines() for number in _NUMBER.findall(line)]


def test_typed_number_rule_can_fail():
    assert _typed_numbers("It reaches mask AP 0.31 after 5 epochs.") == [
        ("0.31", "It reaches mask AP 0.31 after 5 epochs."), ("5", "It reaches mask AP 0.31 after 5 epochs.")]
    assert _typed_numbers("## 3 · Step 5 and notebooks 06 and 07 use `-o Train.epochs_iters=10` on NWPU VHR-10, "
                          "INT8, 8-bit (2026-12-07)\n1. first\n**Time:** full run 8 s") == []


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_prose_types_no_number_a_run_produces(notebook):
    typed = [(i, found) for i, cell in enumerate(_cells(notebook)) if cell["cell_type"] == "markdown"
             for found in _typed_numbers("".join(cell["source"]))]
    assert not typed, (f"{notebook.name}: numbers typed into prose (print them from a cell, or put code in "
                       f"backticks): {typed[:5]}")


@pytest.mark.parametrize("run_id", list(RUNS))
def test_notebook_smoke_run(run_id, executed):
    _, scraps = executed(run_id)
    for name, expected in RUNS[run_id].expect.items():
        assert name in scraps, f"{run_id} did not record {name}"
        if callable(expected):
            assert expected(scraps[name]), f"{run_id}: {name}={scraps[name]!r}"
        else:
            assert scraps[name] == expected, f"{run_id}: {name}={scraps[name]!r}"
