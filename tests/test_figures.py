"""The lessons' figures (tutorial_lib.figures): drawn from hand-made inputs whose answer is known, then read back
from the matplotlib artists (texts, bar widths, tick labels, rectangles), as a reader would read them."""
import contextlib
import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from tutorial_lib import figures
from tutorial_lib.structures import Instances

SIZE = 64


def square(x, y, s=16, size=SIZE):
    mask = np.zeros((size, size), bool)
    mask[y:y + s, x:x + s] = True
    return mask


def instances(masks, classes, scores=None):
    masks = np.array(masks, bool).reshape(len(masks), SIZE, SIZE)
    boxes = []
    for m in masks:
        ys, xs = np.nonzero(m)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    scores = np.linspace(0.95, 0.6, len(masks)) if scores is None else scores
    return Instances((SIZE, SIZE), boxes, scores, classes, masks)


def small_texts(fig, limit=9.0):
    """Every visible text of ``fig`` drawn smaller than ``limit`` points."""
    found = []
    for text in fig.findobj(Text):
        if text.get_visible() and text.get_text().strip() and text.get_fontsize() < limit:
            found.append((text.get_text(), text.get_fontsize()))
    return found


def rendered(fig):
    fig.canvas.draw()  # tick labels exist only once drawn
    return fig


# ----------------------------------------------------------------------------- the one vocabulary
# Ground truth: a1, a2 of class a; b1, b2 of class b. Predictions, best first, each of a known kind:
#   p1 a on a1 (correct), p2 a on a1 (duplicate), p3 b on a2 (confusion: takes a2), p4 b on b1 (correct),
#   p5 a half on b2 (confusion near b2, IoU 1/3: takes nothing), p6 b on nothing (background),
#   p7 a half on a2 (localisation: own class at IoU 1/3), p8 below the threshold. b2 is missed.
GT_SQUARES = [(0, 0, 0), (40, 0, 0), (0, 40, 1), (40, 40, 1)]


def _case():
    gt_masks = [square(x, y) for x, y, _ in GT_SQUARES]
    gt_classes = [c for _, _, c in GT_SQUARES]
    pred = instances([gt_masks[0], gt_masks[0], gt_masks[1], gt_masks[2], square(32, 40), square(22, 22, 8),
                      square(40, 8), square(20, 40, 8)],
                     [0, 0, 1, 1, 0, 1, 0, 0], [0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.2])
    return gt_masks, gt_classes, pred


def _coco(gt_masks, gt_classes):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    anns = []
    for k, (m, c) in enumerate(zip(gt_masks, gt_classes)):
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode()
        ys, xs = np.nonzero(m)
        anns.append({"id": k + 1, "image_id": 1, "category_id": c + 1, "segmentation": rle, "iscrowd": 0,
                     "area": int(m.sum()), "bbox": [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1,
                                                    int(np.ptp(ys)) + 1]})
    coco = COCO()
    coco.dataset = {"images": [{"id": 1, "file_name": "one.png", "width": SIZE, "height": SIZE}],
                    "annotations": anns, "categories": [{"id": 1, "name": "plane"}, {"id": 2, "name": "ship"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


@pytest.fixture(scope="module")
def evaluation():
    """The engine's own analysis of the hand-made case, stored the way evaluate_result.json stores it."""
    from tutorial_lib.engine.metrics import confusion_data, error_analysis

    gt_masks, gt_classes, pred = _case()
    analysis = error_analysis(_coco(gt_masks, gt_classes), {1: pred}, {1: 0, 2: 1}, 2, score_threshold=0.5)
    return confusion_data(analysis, ["plane", "ship"]), analysis["counts"]


def test_the_engine_counts_each_kind_of_the_hand_made_case(evaluation):
    confusion, errors = evaluation
    assert errors == {"correct": 2, "localisation": 1, "confusion": 2, "duplicate": 1, "background": 1, "missed": 1}
    assert confusion["matrix"] == [[1, 1, 0], [0, 1, 1], [0, 1, 0]]   # the background row: p6 only
    assert confusion["no_object"]["rows"] == ["localisation", "confusion", "duplicate"]
    assert confusion["no_object"]["matrix"] == [[1, 0], [1, 0], [1, 0]]


def _matrix_cells(fig):
    """{row label: {column label: count}} read from the drawn confusion matrix."""
    ax = rendered(fig).axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    cols = [t.get_text() for t in ax.get_xticklabels()]
    cells = {r: {} for r in rows}
    for text in ax.texts:
        x, y = text.get_position()
        if float(x).is_integer() and float(y).is_integer() and text.get_text().isdigit():
            cells[rows[int(y)]][cols[int(x)]] = int(text.get_text())
    return cells


def _bars(fig):
    """{kind: bar length} read from the drawn error breakdown."""
    ax = rendered(fig).axes[0]
    names = {round(tick, 3): label.get_text().split("\n")[0] for tick, label in zip(ax.get_yticks(),
                                                                                    ax.get_yticklabels())}
    return {names[round(p.get_y() + p.get_height() / 2, 3)]: p.get_width() for p in ax.patches
            if isinstance(p, Rectangle) and round(p.get_y() + p.get_height() / 2, 3) in names}


def test_confusion_matrix_and_error_chart_tell_the_same_numbers(evaluation):
    confusion, errors = evaluation
    cells = _matrix_cells(figures.plot_confusion(confusion))
    bars = _bars(figures.plot_errors(errors, confusion))
    assert bars == {k: errors[k] for k in figures.PREDICTION_KINDS + ("missed",)}
    background = sum(cells["background (1)"].values())
    assert background == bars["background"] == 1               # the matrix's background row is the chart's bar
    assert sum(cells[f"{r} ({t})"].get(r, 0) for r, t in (("plane", 2), ("ship", 2))) == bars["correct"]
    off_diagonal = cells["plane (2)"].get("ship", 0) + cells["ship (2)"].get("plane", 0)
    assert off_diagonal + sum(cells["confusion (1)"].values()) == bars["confusion"]
    assert sum(row.get("missed", 0) for row in cells.values()) == bars["missed"]
    assert sum(cells["localisation (1)"].values()) == bars["localisation"]
    assert sum(cells["duplicate (1)"].values()) == bars["duplicate"]


def test_the_engine_writes_its_pngs_with_these_drawings():
    from tutorial_lib.engine import evaluate

    assert evaluate.plot_confusion is figures.plot_confusion and evaluate.plot_errors is figures.plot_errors


def test_evaluation_figures_are_readable_and_titled(evaluation):
    confusion, errors = evaluation
    matrix, chart = rendered(figures.plot_confusion(confusion)), rendered(figures.plot_errors(errors, confusion))
    assert not small_texts(matrix) and not small_texts(chart)
    assert matrix.axes[0].get_title() == "Confusion matrix (score ≥ 0.5, mask IoU ≥ 0.5)"
    assert "score ≥ 0.5" in chart.axes[0].get_title()
    shares = [t.get_text() for t in chart.axes[0].texts]
    assert "2  (29% of 7 predictions)" in shares and "1  (25% of 4 objects)" in shares
    assert figures.plot_confusion(confusion)._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"


def test_match_errors_follows_the_engine_rule():
    """Figures and engine count the same: correct predictions and missed objects equal match_image's."""
    from pycocotools import mask as mask_utils

    from tutorial_lib.engine.metrics import match_image

    gt_masks, gt_classes, pred = _case()
    pred = pred.filter(0.5)
    rles = [mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) for m in gt_masks]
    entries, missed = match_image(pred, rles, np.array(gt_classes))
    truth = instances(gt_masks, gt_classes)
    found = figures.match_errors(pred, truth)
    order = np.argsort(-pred.scores, kind="stable")
    assert [kind == "correct" for kind, _, _ in entries] == found["correct"][order].tolist()
    assert missed == [gt_classes[i] for i in np.flatnonzero(found["missed"])] == [1]


# ----------------------------------------------------------------------------- error grid, before / after
def _grid_case():
    """2 correct, 1 false (on background), 1 missed; plus a second image predicted perfectly."""
    truth = instances([square(2, 2), square(30, 2), square(2, 30)], [0, 1, 0])
    pred = instances([square(2, 2), square(30, 2), square(44, 44, 10)], [0, 1, 1], [0.9, 0.8, 0.7])
    image = np.full((SIZE, SIZE, 3), 90, np.uint8)
    return [image, image.copy()], [truth, truth], [pred, truth]


def test_error_grid_counts_and_marks_each_outcome():
    images, truths, preds = _grid_case()
    fig, counts = figures.error_grid(images, truths, preds, ["plane", "ship"], titles=["a.png", "b.png"])
    assert counts == [
        {"image": "a.png", "objects": 3, "predictions": 3, "correct": 2, "false": 1, "missed": 1},
        {"image": "b.png", "objects": 3, "predictions": 3, "correct": 3, "false": 0, "missed": 0}]
    rendered(fig)
    axes = np.array(fig.axes).reshape(2, 3)
    assert [ax.get_title() for ax in axes[0]] == ["ground truth: 3 objects", "prediction: 3 (score ≥ 0.5)",
                                                  "2 correct · 1 false · 1 missed"]
    assert axes[1, 0].get_ylabel() == "b.png"
    outlines = [(to_hex(p.get_edgecolor()), p.get_linestyle()) for p in axes[0, 2].patches]
    assert sorted(outlines) == sorted([(figures.ERROR_COLORS["correct"], "-")] * 2
                                      + [(figures.ERROR_COLORS["false"], "-"), (figures.ERROR_COLORS["missed"], "--")])
    missed = next(p for p in axes[0, 2].patches if p.get_linestyle() == "--")
    assert missed.get_xy() == (1.5, 29.5)                       # around the object at (2, 30)
    outcomes, classes = ([t.get_text() for t in legend.get_texts()] for legend in fig.legends)
    assert classes == ["plane", "ship"] and outcomes[2] == "missed (no prediction took it)"
    assert not small_texts(fig)


def test_error_grid_applies_the_score_threshold():
    images, truths, preds = _grid_case()
    _, counts = figures.error_grid(images[:1], truths[:1], preds[:1], ["plane", "ship"], score_threshold=0.85)
    assert (counts[0]["predictions"], counts[0]["correct"], counts[0]["false"], counts[0]["missed"]) == (1, 1, 0, 2)


def test_before_after_counts_each_model_on_the_same_images():
    images, truths, preds = _grid_case()
    empty = [Instances.empty((SIZE, SIZE))] * 2
    fig, counts = figures.plot_before_after(images, empty, preds, ["plane", "ship"], ground_truth=truths,
                                            titles=["a.png", "b.png"])
    assert [(c["image"], c["model"], c["correct"], c["false"], c["missed"]) for c in counts] == [
        ("a.png", "general model", 0, 0, 3), ("a.png", "fine-tuned", 2, 1, 1),
        ("b.png", "general model", 0, 0, 3), ("b.png", "fine-tuned", 3, 0, 0)]
    titles = [ax.get_title() for ax in rendered(fig).axes]
    assert titles[:3] == ["ground truth: 3 objects", "general model: 0 correct · 0 false · 3 missed",
                          "fine-tuned: 2 correct · 1 false · 1 missed"]
    assert not small_texts(fig)


# ----------------------------------------------------------------------------- curves
def _history(peak_epoch, top, epochs=6):
    return [{"epoch": e, "loss": 3.0 / e, "loss_mask": 1.0 / e, "mask_AP": top - 0.02 * abs(e - peak_epoch),
             "mask_AP50": min(1.0, 1.5 * top)} for e in range(1, epochs + 1)]


def test_history_overlays_runs_on_shared_axes_with_integer_epochs():
    from types import SimpleNamespace

    runs = {"fine-tuned": pd.DataFrame(_history(4, 0.5)), "from scratch": SimpleNamespace(history=_history(6, 0.1))}
    fig = rendered(figures.plot_history(runs))
    loss_ax, ap_ax = fig.axes
    assert loss_ax.get_yscale() == "log"
    for ax in (loss_ax, ap_ax):
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert labels and all(label.isdigit() for label in labels)
        assert {int(label) for label in labels} <= set(range(1, 7))
    assert [line.get_label() for line in loss_ax.lines] == ["fine-tuned", "from scratch"]
    assert {t.get_text() for t in loss_ax.texts} == {"fine-tuned", "from scratch"}   # named at their ends
    colors = {line.get_label(): line.get_color() for line in ap_ax.lines if not line.get_label().startswith("_")}
    assert colors["fine-tuned: mask AP"] == colors["fine-tuned: mask AP50"] != colors["from scratch: mask AP"]
    stars = [line for line in ap_ax.lines if line.get_marker() == "*"]
    assert sorted((s.get_xdata()[0], round(s.get_ydata()[0], 3)) for s in stars) == [(4, 0.5), (6, 0.1)]
    legend = [t.get_text() for t in ap_ax.get_legend().get_texts()]
    assert legend[:2] == ["fine-tuned", "from scratch"] and "mask AP50" in legend
    assert not small_texts(fig)


def test_history_of_one_run_shows_every_loss_term():
    fig = rendered(figures.plot_history(_history(2, 0.3, epochs=2), title="run 1"))
    assert [line.get_label() for line in fig.axes[0].lines] == ["loss", "loss mask"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["1", "2"]
    assert fig._suptitle.get_text() == "run 1"


def test_lr_grid_marks_the_choice_and_both_sides():
    table = pd.DataFrame({"learning rate": [0.01, 0.001, 0.002, 0.005, 0.02], "epochs": 2,
                          "best mask AP": [0.22, 0.05, 0.18, 0.31, 0.01], "mask AP50": [0.4, 0.1, 0.3, 0.6, 0.02]})
    fig = rendered(figures.plot_lr_grid(table))
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.001", "0.002", "0.005", "0.01", "0.02"]
    star = next(line for line in ax.lines if line.get_marker() == "*")
    assert (star.get_xdata()[0], star.get_ydata()[0]) == (0.005, 0.31)
    assert {"too low", "too high"} <= {t.get_text() for t in ax.texts}
    assert ax.get_title() == "Learning-rate grid: best mask AP after 2 epochs"
    assert "chosen: 0.005" in [t.get_text() for t in ax.get_legend().get_texts()]
    edge = rendered(figures.plot_lr_grid(table, chosen=0.001)).axes[0]
    assert "too low" not in {t.get_text() for t in edge.texts} and "too high" in {t.get_text() for t in edge.texts}
    assert not small_texts(fig)


def test_figures_stay_out_of_pyplot():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    figures.plot_history(_history(2, 0.3))
    assert plt.get_fignums() == before
