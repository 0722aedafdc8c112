"""The lessons' figures, drawn natively with matplotlib and meant to be read: every one returns its ``Figure``.

Layer ``viz`` (beside :mod:`tutorial_lib.viz`): drawing only, from numbers and :class:`Instances` (numpy and
matplotlib, no paddle, no files read), so that the training engine writes its PNGs with the same functions the
notebooks show (``confusion_matrix.png`` is :func:`plot_confusion`, ``error_breakdown.png`` :func:`plot_errors`)::

    tl.plot_history({"fine-tuned": run.history, "from scratch": scratch.history})   # loss (log) and val AP
    tl.plot_confusion(evaluation.confusion)         # each object once; the predictions that took no object
    tl.plot_errors(evaluation.errors, evaluation.confusion)
    fig, counts = tl.error_grid(images, ground_truth, predictions, labels)   # ground truth | prediction | errors
    tl.plot_lr_grid(sweep_table)                   # mask AP against the learning rate, the chosen one marked
    fig, counts = tl.plot_before_after(images, general, fine_tuned, labels, ground_truth)

One vocabulary, shared with :mod:`tutorial_lib.engine.metrics` and with the captions: a prediction scoring at
least the threshold is **correct** when it takes an object of its class at mask IoU >= 0.5; otherwise it is a
**localisation** error (an object of its class within IoU 0.1-0.5), a **confusion** (another class's object: it
takes that object at IoU >= 0.5, or lies within 0.1-0.5 of it), a **duplicate** (its object was already taken) or
**background** (no object of any class within IoU 0.1). An object that no prediction took is **missed**. The grids
call every prediction that is not correct **false**.

Figures are plain ``matplotlib.figure.Figure`` objects (not pyplot's), with readable fonts (at least 9 pt at the
figure's size): a notebook shows one when a cell ends with it, exactly once, and nothing leaks into later cells.
"""
import functools
import io

import numpy as np

from .viz import class_color, draw_instances

__all__ = ["ERROR_COLORS", "match_errors", "plot_history", "plot_confusion", "plot_errors", "error_grid",
           "plot_lr_grid", "plot_ground_truth", "plot_prediction", "plot_images", "plot_latency", "plot_before_after",
           "plot_accuracy_vs_size", "plot_merge_modes", "plot_seam_zoom", "plot_geoscene", "save"]

PREDICTION_KINDS = ("correct", "localisation", "confusion", "duplicate", "background")
NO_OBJECT_KINDS = ("localisation", "confusion", "duplicate")  # besides background: predictions that took no object
# one colour per outcome, the same in every figure: found (green), false (red shades), missed (orange)
ERROR_COLORS = {"correct": "#2ca02c", "localisation": "#fc9272", "confusion": "#ef3b2c", "duplicate": "#cb181d",
                "background": "#99000d", "false": "#e41a1c", "missed": "#ff7f0e"}
DEFINITIONS = {
    "correct": "its class, IoU ≥ 0.5",
    "localisation": "own class, IoU 0.1–0.5",
    "confusion": "another class's object",
    "duplicate": "its object already taken",
    "background": "no object within IoU 0.1",
    "missed": "no prediction took it",
}
STYLE = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9.5,
         "ytick.labelsize": 9.5, "legend.fontsize": 9, "figure.titlesize": 12}


# ----------------------------------------------------------------------------- figures
def _style():
    import matplotlib

    return matplotlib.rc_context(STYLE)


@functools.lru_cache(maxsize=None)
def _figure_class():
    from matplotlib.figure import Figure

    class ReadableFigure(Figure):
        """A figure a notebook shows as PNG when a cell ends with it (also where pyplot was never imported)."""

        def _repr_png_(self):
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
            return buffer.getvalue()

    return ReadableFigure


def _figure(width, height, layout="constrained"):
    """A figure outside pyplot (nothing shown twice, nothing left open) that a notebook displays as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = _figure_class()(figsize=(width, height), dpi=100, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def save(fig, path, dpi=100):
    """Write ``fig`` as a PNG (the whole figure, nothing cut off); return the path as a string."""
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return str(path)


def _pretty(name):
    return str(name).replace("_", " ")


def _plain_log_ticks(ax):
    """Log-axis tick labels as plain numbers (0.5, 1, 2), not powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def _label_line_ends(ax, gap=0.065):
    """Name each line of ``ax`` at its last point, inside the axes (room is made on the right; labels pushed
    apart vertically so that none overlaps another): read without a legend."""
    from matplotlib.transforms import blended_transform_factory

    lines = [line for line in ax.lines if not str(line.get_label()).startswith("_")]
    if not lines:
        return
    x0, x1 = ax.get_xlim()
    ax.set_xlim(x0, x1 + (x1 - x0) * 0.38)
    ax.autoscale_view(scalex=False)
    to_axes = ax.transAxes.inverted()
    ends = []
    for line in lines:
        x, y = line.get_xdata()[-1], line.get_ydata()[-1]
        ends.append([float(to_axes.transform(ax.transData.transform((x, y)))[1]), x, line])
    ends.sort(key=lambda item: item[0])
    for i in range(1, len(ends)):  # push up what is too close to the one below
        ends[i][0] = max(ends[i][0], ends[i - 1][0] + gap)
    overflow = ends[-1][0] - 0.97
    if overflow > 0:  # then shift all down, still apart
        for item in ends:
            item[0] -= overflow
    where = blended_transform_factory(ax.transData, ax.transAxes)
    for y, x, line in ends:
        ax.text(x + (x1 - x0) * 0.03, y, line.get_label(), transform=where, va="center", fontsize=9.5,
                color=line.get_color())


def _integer_epochs(ax, epochs):
    """Whole-number epoch ticks, only where there are epochs (at most about ten of them)."""
    from matplotlib.ticker import MaxNLocator

    if not len(epochs):
        return
    low, high = min(epochs), max(epochs)
    ticks = [t for t in MaxNLocator(integer=True, nbins=10).tick_values(low, high) if low <= t <= high]
    ax.set_xticks(ticks, [str(int(t)) for t in ticks])
    ax.set_xlim(low - 0.4, high + 0.4)


# ----------------------------------------------------------------------------- training curves
def _history_frame(history):
    import pandas as pd

    history = getattr(history, "history", history)  # a TrainResult
    frame = history.copy() if isinstance(history, pd.DataFrame) else pd.DataFrame(list(history))
    if "epoch" not in frame:
        raise ValueError("a history needs an 'epoch' column (the rows of metrics.csv)")
    return frame.apply(pd.to_numeric, errors="coerce").sort_values("epoch")


def plot_history(history, metrics=("mask_AP", "mask_AP50"), title="Training curves: loss and val AP per epoch"):
    """Loss (log scale, left) and val ``metrics`` (right) per epoch, from the rows of ``metrics.csv``.

    ``history``: a DataFrame, a list of row dicts or a ``TrainResult``; or ``{run name: one of these}`` to
    overlay several runs on the same axes ("fine-tuned" vs "from scratch"). One run shows every loss term (the
    total bold); several runs show each run's total loss in its own colour, and the metrics by line style. A star
    marks each run's best epoch by the first metric."""
    from matplotlib.lines import Line2D

    runs = history if isinstance(history, dict) else {"": history}
    frames = {str(name): _history_frame(h) for name, h in runs.items()}
    several = len(frames) > 1
    styles = ["-", "--", ":", "-."]
    with _style():
        fig = _figure(11, 4.2)
        loss_ax, ap_ax = fig.subplots(1, 2)
        epochs = sorted({int(e) for f in frames.values() for e in f["epoch"].dropna()})
        ap_top = 0.0
        for k, (name, frame) in enumerate(frames.items()):
            color = f"C{k}"
            losses = ["loss"] if several else [c for c in frame.columns if c.startswith("loss")]
            for j, column in enumerate(c for c in losses if c in frame):
                data = frame[["epoch", column]].dropna()
                data = data[data[column] > 0]
                if data.empty:
                    continue
                total = column == "loss"
                loss_ax.plot(data["epoch"], data[column], marker="o", ms=4, lw=2.4 if total else 1.3,
                             color=color if several or total else f"C{j}", label=name if several else _pretty(column))
            for j, metric in enumerate(m for m in metrics if m in frame):
                data = frame[["epoch", metric]].dropna()
                if data.empty:
                    continue
                ap_top = max(ap_top, float(data[metric].max()))
                label = f"{name}: {_pretty(metric)}" if several else _pretty(metric)
                ap_ax.plot(data["epoch"], data[metric], marker="o", ms=4, lw=2, ls=styles[j % len(styles)],
                           color=color if several else f"C{j}", label=label)
                if j == 0:
                    best = data.loc[data[metric].idxmax()]
                    ap_ax.plot([best["epoch"]], [best[metric]], marker="*", ms=15, color=color if several else "C0",
                               mec="black", mew=0.8, ls="none", zorder=5)
        loss_ax.set_yscale("log")
        _plain_log_ticks(loss_ax)
        loss_ax.set_title("training loss (log scale)")
        loss_ax.set_ylabel("mean loss per epoch")
        ap_ax.set_title("validation")
        ap_ax.set_ylabel("COCO AP on the val split")
        ap_ax.set_ylim(0, max(0.1, min(1.0, ap_top * 1.5)))  # headroom for the legend above the curves
        for ax in (loss_ax, ap_ax):
            ax.set_xlabel("epoch")
            _integer_epochs(ax, epochs)
            ax.grid(alpha=0.3)
        _label_line_ends(loss_ax)
        if ap_ax.lines:
            shown = [m for m in metrics if any(m in f for f in frames.values())]
            if several:  # colours are runs, line styles are metrics
                handles = [Line2D([], [], color=f"C{k}", lw=2.5) for k in range(len(frames))]
                names = list(frames)
                handles += [Line2D([], [], color="black", lw=1.8, ls=styles[j % len(styles)])
                            for j in range(len(shown))]
                names += [_pretty(m) for m in shown]
            else:
                handles, names = ap_ax.get_legend_handles_labels()
            handles.append(Line2D([], [], marker="*", ms=12, color="grey", mec="black", ls="none"))
            names.append(f"best epoch ({_pretty(shown[0])})" if shown else "best epoch")
            ap_ax.legend(handles, names, loc="upper center", ncol=3, handlelength=2.8, columnspacing=1.2,
                         framealpha=0.9)
        if title:
            fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------- evaluation
def _confusion_parts(confusion):
    """(class names, object rows (N, N+1), no-object rows [(kind, (N,) counts)], score threshold)."""
    matrix = np.asarray(confusion["matrix"], np.int64)
    classes = list(confusion["rows"][:-1])
    n = len(classes)
    extra = confusion.get("no_object") or {"rows": [], "matrix": []}
    rows = [(kind, np.asarray(values, np.int64)[:n]) for kind, values in zip(extra["rows"], extra["matrix"])]
    rows.append((confusion["rows"][-1], matrix[n, :n]))
    return classes, matrix[:n], rows, confusion.get("score_threshold")


def plot_confusion(confusion, title=None):
    """The evaluation's confusion matrix (``EvalResult.confusion``, ``evaluate_result.json``'s
    ``confusion_matrix``), drawn as a table of counts.

    Above the line, each val object once, in its class's row: under the class of the prediction that took it (the
    diagonal is correct) or under *missed*. Below the line, the predictions that took no object, by kind; the
    *background* row is the error chart's *background* bar. Colours: green correct, red false, orange missed."""
    from matplotlib.colors import to_rgb

    classes, objects, no_object, threshold = _confusion_parts(confusion)
    n = len(classes)
    rows = classes + [kind for kind, _ in no_object]
    cols = classes + ["missed"]
    grid = np.zeros((len(rows), n + 1), np.int64)
    grid[:n] = objects
    for r, (_, values) in enumerate(no_object):
        grid[n + r, :n] = values
    top = max(1, int(grid.max()))
    colors = np.ones(grid.shape + (3,))
    for (i, j), value in np.ndenumerate(grid):
        if value:
            kind = "missed" if j == n else "correct" if i == j else "false"
            strength = 0.25 + 0.6 * np.log1p(value) / np.log1p(top)
            colors[i, j] = 1 - strength * (1 - np.array(to_rgb(ERROR_COLORS[kind])))
    with _style():
        fig = _figure(1.9 + 0.62 * len(cols), 1.9 + 0.42 * len(rows))
        ax = fig.subplots()
        ax.imshow(colors, aspect="auto", interpolation="nearest")
        for (i, j), value in np.ndenumerate(grid):
            if value:
                ax.text(j, i, str(value), ha="center", va="center", fontsize=10,
                        fontweight="bold" if (i == j or j == n) else "normal")
        ax.set_xticks(range(len(cols)), [_pretty(c) for c in cols], rotation=40, ha="right", rotation_mode="anchor")
        totals = grid.sum(1)
        ax.set_yticks(range(len(rows)), [f"{_pretty(r)} ({t})" for r, t in zip(rows, totals)])
        for tick in ax.get_yticklabels()[n:]:
            tick.set_fontstyle("italic")
        ax.axhline(n - 0.5, color="black", lw=1.5)
        ax.axvline(n - 0.5, color="black", lw=1.5)
        ax.set_xticks(np.arange(-0.5, len(cols)), minor=True)
        ax.set_yticks(np.arange(-0.5, len(rows)), minor=True)
        ax.grid(which="minor", color="#dddddd", lw=0.6)
        ax.tick_params(which="minor", length=0)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("row (total)")
        for middle, text in (((n - 1) / 2, "each object once"), (n + (len(rows) - n - 1) / 2, "no object taken")):
            ax.annotate(text, xy=(1.01, 1 - (middle + 0.5) / len(rows)), xycoords="axes fraction", rotation=270,
                        va="center", ha="left", fontsize=10, color="#444444")
        fig.supxlabel("Above the line: every val object once, under the class of the prediction that took it "
                      "(diagonal: correct,\noff-diagonal: confusion) or as missed. Below: the predictions that took "
                      "no object. background: no object\nof any class within IoU 0.1; localisation: its own class "
                      "within IoU 0.1–0.5; confusion: another class's object within\n0.1–0.5; duplicate: its "
                      "object was already taken by a better-scoring prediction.", fontsize=9, color="#333333",
                      x=0.02, ha="left", linespacing=1.4)
        at = f"score ≥ {threshold:g}, " if threshold is not None else ""
        ax.set_title(title or f"Confusion matrix ({at}mask IoU ≥ 0.5)")
    return fig


def plot_errors(errors, confusion=None, score_threshold=None, title=None):
    """The error breakdown (``EvalResult.errors``): one bar per kind of prediction, then the missed objects.

    With ``confusion`` (the same evaluation's matrix) each bar is also given as a share: of the predictions, or of
    the objects for *missed*. Its *background* bar is the matrix's *background* row."""
    kinds = list(PREDICTION_KINDS) + ["missed"]
    counts = [int(errors.get(k, 0)) for k in kinds]
    predictions = sum(counts[:-1])
    objects = int(np.asarray(_confusion_parts(confusion)[1]).sum()) if confusion is not None else None
    if score_threshold is None and confusion is not None:
        score_threshold = confusion.get("score_threshold")
    y = np.array([0, 1, 2, 3, 4, 5.6])  # a gap between the predictions and the objects
    with _style():
        fig = _figure(8.2, 4.4)
        ax = fig.subplots()
        bars = ax.barh(y, counts, color=[ERROR_COLORS[k] for k in kinds], height=0.7)
        bars[-1].set_hatch("//")
        bars[-1].set_edgecolor("white")
        ax.set_yticks(y, [f"{k}\n({DEFINITIONS[k]})" for k in kinds], fontsize=9.5)
        ax.invert_yaxis()
        right = max(counts + [1])
        for bar, kind, value in zip(bars, kinds, counts):
            text = str(value)
            if kind == "missed" and objects:
                text += f"  ({value / objects:.0%} of {objects} objects)"
            elif kind == "correct" and predictions:
                text += f"  ({value / predictions:.0%} of {predictions} predictions)"
            elif kind != "missed" and predictions:
                text += f"  ({value / predictions:.0%})"
            ax.text(bar.get_width() + right * 0.01, bar.get_y() + bar.get_height() / 2, text, va="center",
                    fontsize=10)
        ax.set_xlim(0, right * 1.6)
        ax.axhline(4.8, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("count")
        ax.grid(axis="x", alpha=0.3)
        at = f" (score ≥ {score_threshold:g})" if score_threshold is not None else ""
        ax.set_title(title or f"Error breakdown{at}: every prediction, then the objects none took")
    return fig


# ----------------------------------------------------------------------------- predictions against ground truth
def _mask_ious(a, b):
    """(len(a), len(b)) mask IoU of two :class:`Instances` of one image."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    fa = a.full_masks().reshape(len(a), -1).astype(np.float32)
    fb = b.full_masks().reshape(len(b), -1).astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def match_errors(prediction, truth, iou=0.5):
    """Which of ``prediction``'s instances are correct and which of ``truth``'s objects are missed, by mask IoU,
    highest score first (the rule of :func:`tutorial_lib.engine.metrics.match_image`): a prediction takes the best
    free object of its class at IoU >= ``iou`` (correct); a prediction of a class whose object is already taken
    takes nothing (a duplicate); otherwise it takes the best free object of another class at IoU >= ``iou`` (a
    confusion, false, and that object is not missed).

    Returns ``{"correct": bool per prediction, "missed": bool per object}``."""
    order = np.argsort(-prediction.scores, kind="stable")
    ious = _mask_ious(prediction, truth)
    classes = truth.class_ids
    taken = np.zeros(len(truth), bool)
    correct = np.zeros(len(prediction), bool)
    for p in order:
        same = classes == prediction.class_ids[p]
        free_same = np.where(same & ~taken, ious[p], -1.0)
        free_any = np.where(~taken, ious[p], -1.0)
        if free_same.size and free_same.max() >= iou:
            taken[int(free_same.argmax())] = correct[p] = True
        elif same.any() and ious[p][same].max() >= iou:
            continue
        elif free_any.size and free_any.max() >= iou:
            taken[int(free_any.argmax())] = True
    return {"correct": correct, "missed": ~taken}


def _names(labels):
    if isinstance(labels, dict):
        return {int(k): str(v) for k, v in labels.items()}
    return {i: str(name) for i, name in enumerate(labels or [])}


def _as_image(image):
    if isinstance(image, np.ndarray):
        return np.ascontiguousarray(image[..., :3])
    import cv2

    array = cv2.imread(str(image), cv2.IMREAD_COLOR)
    if array is None:
        raise ValueError(f"cannot read image {image}")
    return np.ascontiguousarray(array[..., ::-1])


def _image_name(image, i):
    return f"image {i + 1}" if isinstance(image, np.ndarray) else str(getattr(image, "name", image)).split("/")[-1]


def _truth_list(ground_truth, images):
    """Ground truth per image as :class:`Instances` with class ids 0..N-1 (a COCO object: looked up by the
    images' file names, category ids in sorted order as the engine numbers them)."""
    if hasattr(ground_truth, "imgs") and hasattr(ground_truth, "getAnnIds"):
        from .viz import coco_instances

        coco = ground_truth
        by_name = {name: image_id for image_id, info in coco.imgs.items()
                   for name in (info["file_name"], str(info["file_name"]).split("/")[-1])}
        cat_ids = sorted(coco.cats)
        out = []
        for image in images:
            image_id = image if isinstance(image, (int, np.integer)) else by_name[_image_name(image, 0)]
            inst = coco_instances(coco, image_id)
            inst.class_ids = np.array([cat_ids.index(int(c)) for c in inst.class_ids], np.int64)
            out.append(inst)
        return out
    return [getattr(t, "instances", t) for t in ground_truth]


def _outline(ax, instances, color, dashed=False):
    from matplotlib.patches import Rectangle

    for x1, y1, x2, y2 in instances.boxes:
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1 + 1, y2 - y1 + 1, fill=False, ec=color, lw=2.2,
                               ls="--" if dashed else "-"))


def _dimmed(image):
    grey = image.astype(np.float32).mean(-1, keepdims=True)
    return (0.55 * (0.3 * image + 0.7 * grey) + 0.45 * 255 * 0.35).astype(np.uint8)


def _panel(ax, picture, title):
    ax.imshow(picture)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def _draw_errors(ax, picture, prediction, truth, match):
    """The errors panel: the image dimmed, correct predictions green, false ones red, missed objects orange
    dashed."""
    ax.imshow(_dimmed(picture))
    _outline(ax, prediction[np.flatnonzero(~match["correct"])], ERROR_COLORS["false"])
    _outline(ax, truth[np.flatnonzero(match["missed"])], ERROR_COLORS["missed"], dashed=True)
    _outline(ax, prediction[np.flatnonzero(match["correct"])], ERROR_COLORS["correct"])
    ax.set_xticks([])
    ax.set_yticks([])


def _counts_text(counts):
    return f"{counts['correct']} correct · {counts['false']} false · {counts['missed']} missed"


def _legend(fig, names, classes, outcomes=True):
    """Two legends: above, how the outcomes are outlined; below, the class colours."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if outcomes:
        fig.legend(handles=[
            Line2D([], [], color=ERROR_COLORS["correct"], lw=2.5, label="correct (its class, IoU ≥ 0.5)"),
            Line2D([], [], color=ERROR_COLORS["false"], lw=2.5,
                   label="false (wrong class or place, duplicate, background)"),
            Line2D([], [], color=ERROR_COLORS["missed"], lw=2.5, ls="--", label="missed (no prediction took it)")],
            loc="outside upper center", ncol=3, frameon=False)
    fig.legend(handles=[Patch(color=np.array(class_color(c)) / 255, label=_pretty(names.get(c, c)))
                        for c in sorted(classes)], loc="outside lower center", ncol=5, frameon=False)


def error_grid(images, ground_truth, predictions, labels=None, score_threshold=0.5, iou=0.5, titles=None):
    """Ground truth | prediction | errors, one row per image (4-6 val images read well).

    ``images``: RGB arrays or paths; ``ground_truth``: :class:`Instances` per image (class ids 0..N-1) or a COCO
    object (``tl.load_coco``; ``images`` then are paths of its images or image ids); ``predictions``:
    :class:`Instances` or prediction results per image, class ids 0..N-1; ``labels``: class names by id. The errors
    panel outlines correct predictions in green, false ones in red and missed objects in orange (dashed); one
    legend names the classes. Returns ``(figure, counts)``: counts is one dict per image (``image``,
    ``objects``, ``predictions``, ``correct``, ``false``, ``missed``), so prose can be rendered from the numbers."""
    images = list(images)
    truths = _truth_list(ground_truth, images)
    if labels is None and hasattr(ground_truth, "cats"):
        labels = [ground_truth.cats[c]["name"] for c in sorted(ground_truth.cats)]
    names = _names(labels)
    preds = [getattr(p, "instances", p).filter(score_threshold) for p in predictions]
    if not len(images) == len(truths) == len(preds):
        raise ValueError(f"{len(images)} images, {len(truths)} ground truths and {len(preds)} predictions")
    pictures = [_as_image(im) if not isinstance(im, (int, np.integer)) else None for im in images]
    table, classes = [], set()
    with _style():
        height = pictures[0].shape[0] / pictures[0].shape[1] if pictures and pictures[0] is not None else 1.0
        fig = _figure(11, 3.55 * height * len(images) + 0.9)
        axes = fig.subplots(len(images), 3, squeeze=False)
        for i, (picture, truth, pred) in enumerate(zip(pictures, truths, preds)):
            name = titles[i] if titles else _image_name(images[i], i)
            if picture is None:
                picture = np.full(truth.image_size + (3,), 128, np.uint8)
            match = match_errors(pred, truth, iou)
            counts = {"image": name, "objects": len(truth), "predictions": len(pred),
                      "correct": int(match["correct"].sum()), "false": int((~match["correct"]).sum()),
                      "missed": int(match["missed"].sum())}
            table.append(counts)
            classes |= {int(c) for c in truth.class_ids} | {int(c) for c in pred.class_ids}
            _panel(axes[i, 0], draw_instances(picture, truth, names, show_scores=False, show_labels=False),
                   f"ground truth: {len(truth)} objects")
            axes[i, 0].set_ylabel(name, fontsize=10)
            _panel(axes[i, 1], draw_instances(picture, pred, names, show_scores=False, show_labels=False),
                   f"prediction: {len(pred)} (score ≥ {score_threshold:g})")
            _draw_errors(axes[i, 2], picture, pred, truth, match)
            axes[i, 2].set_title(_counts_text(counts), fontsize=10)
        _legend(fig, names, classes)
    return fig, table


def _coco_names(coco):
    """Class names in the engine's order (category ids sorted), as :func:`_truth_list` numbers them."""
    return [coco.cats[c]["name"] for c in sorted(coco.cats)]


def plot_ground_truth(image, ground_truth, labels=None, title=None):
    """One scene as it is and with its ground truth drawn (each object its own tinted mask and outline).

    ``image``: an RGB array or a path; ``ground_truth``: :class:`Instances` (class ids 0..N-1) or a COCO object
    holding the image (looked up by file name; ``labels`` then default to its category names)."""
    picture = _as_image(image)
    truth = _truth_list(ground_truth, [image])[0]
    if labels is None and hasattr(ground_truth, "cats"):
        labels = _coco_names(ground_truth)
    names = _names(labels)
    with _style():
        fig = _figure(11, 5.9)
        axes = fig.subplots(1, 2)
        _panel(axes[0], picture, title or _image_name(image, 0))
        _panel(axes[1], draw_instances(picture, truth, names, show_scores=False, show_labels=False),
               f"ground truth: {len(truth)} objects")
        _legend(fig, names, set(int(c) for c in truth.class_ids), outcomes=False)
    return fig


def plot_prediction(image, result, threshold=None, title=None):
    """The input and what a model found on it, side by side. ``result``: a prediction result (its
    ``visualize()`` draws the instances it kept; ``len(result)`` counts them); ``threshold``: said in the title."""
    picture = _as_image(image)
    kept = f" (score ≥ {threshold:g})" if threshold is not None else ""
    with _style():
        fig = _figure(11, 5.6)
        axes = fig.subplots(1, 2)
        _panel(axes[0], picture, title or f"input: {_image_name(image, 0)}")
        _panel(axes[1], result.visualize(), f"prediction: {len(result)} instances{kept}")
    return fig


def plot_images(panels, title=None):
    """Pictures side by side: ``panels`` maps each panel's title to an RGB array or an image path."""
    with _style():
        fig = _figure(5.5 * len(panels), 5.6)
        axes = np.atleast_1d(fig.subplots(1, len(panels)))
        for ax, (name, picture) in zip(axes, panels.items()):
            _panel(ax, _as_image(picture), name)
        if title:
            fig.suptitle(title)
    return fig


def plot_latency(published, measured, input_size, x="gpu_ms", y="mask_ap"):
    """Accuracy against latency: the sizes PaddleX publishes (GPU milliseconds) beside what this machine measured
    (``measured``: a DataFrame indexed by model with ``dygraph_ms``), on one log-scaled time axis."""
    rows = published.loc[[name for name in published.index if str(name).startswith("Mask-RT-DETR-")]]
    with _style():
        fig = _figure(7.5, 4.2)
        ax = fig.subplots()
        ax.plot(rows[x], rows[y], "o-", label="PaddleX, GPU")
        ax.plot(measured["dygraph_ms"], published.loc[measured.index, y], "s-",
                label=f"this CPU, dygraph, {input_size} px")
        for name, row in rows.iterrows():
            ax.annotate(str(name).rsplit("-", 1)[-1], (row[x], row[y]), xytext=(5, -12), textcoords="offset points")
        ax.set_xscale("log")
        ax.margins(y=0.1)  # room for the size labels under the lowest point
        ax.set_xlabel("latency per image (ms, log scale)")
        ax.set_ylabel("COCO mask AP (%)")
        ax.set_title("Mask-RT-DETR: accuracy vs latency")
        ax.legend(loc="upper center")
        ax.grid(alpha=0.3)
    return fig


def plot_before_after(images, before, after, labels=None, ground_truth=None, names=("general model", "fine-tuned"),
                      score_threshold=0.5, iou=0.5, titles=None):
    """The same images side by side: predictions of ``before`` (the general model) and ``after`` (the fine-tuned
    one), one row per image; with ``ground_truth`` also the objects first, and each prediction panel outlines its
    correct (green), false (red) and missed (orange, dashed) instances, counted in its title.

    Returns ``(figure, counts)``: one dict per image and model (``image``, ``model``, ``objects`` (with ground
    truth), ``predictions``, ``correct``, ``false``, ``missed``)."""
    images = list(images)
    truths = _truth_list(ground_truth, images) if ground_truth is not None else None
    if labels is None and hasattr(ground_truth, "cats"):
        labels = [ground_truth.cats[c]["name"] for c in sorted(ground_truth.cats)]
    class_names = _names(labels)
    runs = [[getattr(p, "instances", p).filter(score_threshold) for p in preds] for preds in (before, after)]
    columns = (1 if truths else 0) + 2
    table, classes = [], set()
    with _style():
        pictures = [_as_image(im) for im in images]
        height = pictures[0].shape[0] / pictures[0].shape[1] if pictures else 1.0
        fig = _figure(3.7 * columns, 3.55 * height * len(images) + 0.9)
        axes = fig.subplots(len(images), columns, squeeze=False)
        for i, picture in enumerate(pictures):
            name = titles[i] if titles else _image_name(images[i], i)
            if truths:
                truth = truths[i]
                classes |= {int(c) for c in truth.class_ids}
                _panel(axes[i, 0], draw_instances(picture, truth, class_names, show_scores=False, show_labels=False),
                       f"ground truth: {len(truth)} objects")
            axes[i, 0].set_ylabel(name, fontsize=10)
            for k, (model, preds) in enumerate(zip(names, runs)):
                pred = preds[i]
                classes |= {int(c) for c in pred.class_ids}
                ax = axes[i, k + (1 if truths else 0)]
                row = {"image": name, "model": model, "predictions": len(pred)}
                _panel(ax, draw_instances(picture, pred, class_names, show_scores=False, show_labels=False,
                                          show_boxes=not truths), f"{model}: {len(pred)} instances")
                if truths:
                    match = match_errors(pred, truths[i], iou)
                    row.update(objects=len(truths[i]), correct=int(match["correct"].sum()),
                               false=int((~match["correct"]).sum()), missed=int(match["missed"].sum()))
                    _outline(ax, pred[np.flatnonzero(~match["correct"])], ERROR_COLORS["false"])
                    _outline(ax, truths[i][np.flatnonzero(match["missed"])], ERROR_COLORS["missed"], dashed=True)
                    _outline(ax, pred[np.flatnonzero(match["correct"])], ERROR_COLORS["correct"])
                    ax.set_title(f"{model}: {_counts_text(row)}", fontsize=10)
                table.append(row)
        _legend(fig, class_names, classes, outcomes=bool(truths))
    return fig, table


# ----------------------------------------------------------------------------- tuning
def plot_lr_grid(table, chosen=None, metric="best mask AP", title=None):
    """``metric`` against the learning rate (log axis) from a sweep's table (columns ``learning rate``, the metric,
    optionally ``mask AP50`` and ``epochs``); ``chosen`` (default: the best rate) is starred, and the rates below
    and above it are marked "too low" / "too high"."""
    import pandas as pd

    data = (table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)).sort_values("learning rate")
    rates = data["learning rate"].to_numpy(float)
    values = data[metric].to_numpy(float)
    if chosen is None:
        chosen = float(rates[int(np.nanargmax(values))])
    with _style():
        fig = _figure(7.5, 4.2)
        ax = fig.subplots()
        ax.plot(rates, values, marker="o", ms=7, lw=2, color="C0", label=_pretty(metric))
        if "mask AP50" in data and metric != "mask AP50":
            ax.plot(rates, data["mask AP50"].to_numpy(float), marker="s", ms=5, lw=1.5, ls="--", color="C1",
                    label="mask AP50 (same epoch)")
        at = int(np.argmin(np.abs(rates - chosen)))
        ax.plot([rates[at]], [values[at]], marker="*", ms=22, color="gold", mec="black", mew=1, ls="none",
                zorder=5, label=f"chosen: {rates[at]:g}")
        ax.set_xscale("log")
        ax.set_xticks(rates, [f"{r:g}" for r in rates])
        ax.minorticks_off()
        low, high = rates.min(), rates.max()
        ax.set_xlim(low / 1.6, high * 1.6)
        top = max(0.1, float(np.nanmax(data[[c for c in (metric, "mask AP50") if c in data]].to_numpy(float))) * 1.3)
        ax.set_ylim(0, top)
        if at > 0:
            ax.axvspan(low / 1.6, np.sqrt(rates[at - 1] * rates[at]), color="C0", alpha=0.07, lw=0)
            ax.text(low / 1.5, top * 0.96, "too low", va="top", fontsize=10, color="#1f4e79")
        if at < len(rates) - 1:
            ax.axvspan(np.sqrt(rates[at] * rates[at + 1]), high * 1.6, color="C3", alpha=0.07, lw=0)
            ax.text(high * 1.5, top * 0.96, "too high", va="top", ha="right", fontsize=10, color="#8b1a1a")
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("mask AP on the val split")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower center")
        epochs = sorted(set(data["epochs"])) if "epochs" in data else []
        after = f" after {epochs[0]} epoch{'s' if epochs[0] != 1 else ''}" if len(epochs) == 1 else ""
        ax.set_title(title or f"Learning-rate grid: {_pretty(metric)}{after}")
    return fig


# ----------------------------------------------------------------------------- models and scenes
def plot_accuracy_vs_size(models, x="size_mb", y="mask_ap", xlabel="model size (MB)", ylabel="COCO mask AP (%)",
                          title="accuracy vs size (PaddleX's published numbers)"):
    """Scatter ``models`` (a DataFrame indexed by name, with ``family``) with every point labelled, labels placed
    so that they overlap neither each other nor the axes' border, and the legend outside the plot."""
    data = models.dropna(subset=[x, y])
    fig = _figure(9.5, 5.0, layout=None)
    ax = fig.subplots()
    for family, group in data.groupby("family", sort=False):
        ax.scatter(group[x], group[y], s=55, label=family, zorder=3)
    xs, ys = data[x].to_numpy(float), data[y].to_numpy(float)
    ax.set_xlim(0, xs.max() * 1.35)
    ax.set_ylim(ys.min() - 2.5, ys.max() + 2.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    taken = [ax.transData.transform((px, py)) for px, py in zip(xs, ys)]  # keep labels off the points too
    placed = []
    offsets = [(7, -3), (7, 6), (7, -12), (-7, -3), (-7, 6), (-7, -12), (7, 14), (7, -20), (-7, 14), (-7, -20)]
    for name, px, py in sorted(zip(data.index, xs, ys), key=lambda t: (-t[2], t[1])):
        for dx, dy in offsets:
            text = ax.annotate(name, (px, py), xytext=(dx, dy), textcoords="offset points", fontsize=9,
                               ha="left" if dx > 0 else "right", va="bottom")
            box = text.get_window_extent(renderer).expanded(1.02, 1.1)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            clear = not any(box.overlaps(other) for other in placed) and not any(
                box.contains(tx, ty) for tx, ty in taken)
            if inside and clear:
                placed.append(box)
                break
            text.remove()
        else:  # no free spot: keep the first one (still inside the axes)
            text = ax.annotate(name, (px, py), xytext=offsets[0], textcoords="offset points", fontsize=9)
            placed.append(text.get_window_extent(renderer))
    return fig


def plot_merge_modes(scene, results, tiles=(), labels=None, columns=2):
    """One panel per merge mode: ``results`` maps a title to the :class:`Instances` (or a result holding them) that
    sliced inference merged with it over the same RGB ``scene``; ``tiles`` (x0, y0, x1, y1) are drawn as dashed
    rectangles, so that objects cut by a tile border are easy to find. Each title gets the instance count."""
    from matplotlib.patches import Rectangle

    results = {name: getattr(value, "instances", value) for name, value in results.items()}
    rows = -(-len(results) // columns)
    fig = _figure(5.2 * columns, 5.2 * rows * scene.shape[0] / scene.shape[1], layout=None)
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat[len(results):]:
        ax.axis("off")
    for ax, (name, instances) in zip(axes.flat, results.items()):
        ax.imshow(draw_instances(scene, instances, labels, show_scores=False, show_labels=False))
        for x0, y0, x1, y1 in tiles:
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ls="--", lw=0.8, ec="white",
                                       alpha=0.7))
        ax.set_title(f"{name}: {len(instances)} instances", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


SEAM_COLOR = "#111111"  # tile edges in plot_seam_zoom (dark: no instance colour is)


def _instance_colors(n):
    """``n`` RGB colours, neighbours in the list far apart in hue (golden-ratio steps), bright enough to read on a
    dimmed picture."""
    import colorsys

    return [colorsys.hsv_to_rgb((0.08 + 0.618034 * k) % 1.0, 0.85, 1.0) for k in range(n)]


def plot_seam_zoom(view, columns=None, title=None):
    """One window of a scene around tile seams, one panel per merge setting: how each merge put cut objects together.

    ``view`` (what :meth:`tutorial_lib.pipeline.merge_study.MergeStudy.seam_view` returns) has ``image`` (the
    window's RGB pixels), ``window`` ``(x0, y0, x1, y1)`` in raster pixels, ``truth`` (label polygons), ``merged``
    ``{setting: polygons}``, ``tiles`` (tile windows) and ``counts`` ``{setting: {"objects crossing seams",
    "split", "duplicates", "instances"}}``, all in raster pixels. Tile edges are dashed, the ground truth outlined in
    white, and every merged instance filled in a colour of its own: an object left in pieces shows two colours
    meeting at a tile edge, a duplicate as overlapping outlines. Each title gives the setting and its counts in the
    window."""
    from matplotlib.collections import PolyCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    x0, y0, x1, y1 = view.window
    names = list(view.merged)
    columns = columns or (len(names) if len(names) <= 3 else -(-len(names) // 2))
    rows = -(-len(names) // columns)
    extent = (x0, x1, y1, y0)
    background = _dimmed(np.asarray(view.image))
    with _style():
        fig = _figure(4.3 * columns, 4.3 * rows * (y1 - y0) / (x1 - x0) + 1.1)
        axes = fig.subplots(rows, columns, squeeze=False)
        for ax in axes.flat[len(names):]:
            fig.delaxes(ax)
        for ax, name in zip(axes.flat, names):
            ax.imshow(background, extent=extent, interpolation="nearest")
            polygons = list(view.merged[name])
            colors = _instance_colors(len(polygons))
            for k, geometry in enumerate(polygons):
                rings = _outlines(geometry)
                if rings:
                    ax.add_collection(PolyCollection(rings, closed=True, facecolors=(*colors[k], 0.42),
                                                     edgecolors=colors[k], linewidths=1.6))
            truth = [ring for geometry in view.truth for ring in _outlines(geometry)]
            if truth:
                ax.add_collection(PolyCollection(truth, closed=True, facecolors="none", edgecolors="white",
                                                 linewidths=1.2))
            for x in sorted({v for t in view.tiles for v in (t[0], t[2]) if x0 < v < x1}):
                ax.axvline(x, color=SEAM_COLOR, ls=(0, (5, 4)), lw=1.3)
            for y in sorted({v for t in view.tiles for v in (t[1], t[3]) if y0 < v < y1}):
                ax.axhline(y, color=SEAM_COLOR, ls=(0, (5, 4)), lw=1.3)
            ax.set_xlim(x0, x1)
            ax.set_ylim(y1, y0)
            ax.set_xticks([])
            ax.set_yticks([])
            c = view.counts.get(name, {})
            ax.set_title(f"{name}\n{c.get('split', 0)} of {c.get('objects crossing seams', 0)} seam-crossing "
                         f"objects split · {c.get('duplicates', 0)} duplicates · {c.get('instances', 0)} instances",
                         fontsize=9.5)
        fig.legend(handles=[Line2D([], [], color=SEAM_COLOR, lw=1.5, ls=(0, (5, 4)), label="tile edges"),
                            Line2D([], [], color="white", lw=1.5, label="ground truth",
                                   path_effects=_halo()),
                            Patch(facecolor=(*_instance_colors(1)[0], 0.42), edgecolor=_instance_colors(1)[0],
                                  label="output instances, each its own colour (two on one object: split or twice)")],
                   loc="outside lower center", ncols=3, frameon=False)
        fig.suptitle(title or f"Merges around tile seams: raster pixels {x0}-{x1} x {y0}-{y1}")
    return fig


def _halo():
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=3, foreground="#555555")]


NODATA_COLOR, NODATA_HATCH = "#c8c8c8", "////"  # no-data pixels: hatched grey (no class colour is grey)


def _outlines(geometry):
    """The rings (exteriors and holes) of a (Multi)Polygon or a collection, as (n, 2) arrays."""
    parts = getattr(geometry, "geoms", [geometry])
    rings = []
    for part in parts:
        if hasattr(part, "geoms"):
            rings += _outlines(part)
        elif part.geom_type == "Polygon" and not part.is_empty:
            rings += [np.asarray(part.exterior.coords)] + [np.asarray(r.coords) for r in part.interiors]
    return rings


def _scene_panel(ax, view, colors, linewidth, fill):
    """One view of :func:`plot_geoscene`: the picture in raster pixel coordinates, no-data tinted, outlines."""
    import matplotlib
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import to_rgba

    col, row, width, height = view.window
    extent = (col, col + width, row + height, row)
    ax.imshow(view.image, extent=extent, interpolation="nearest" if view.scale >= 1 else "antialiased")
    if view.valid is not None and not view.valid.all():
        tint = np.zeros(view.valid.shape + (4,), np.float32)
        tint[~view.valid] = to_rgba(NODATA_COLOR, 0.9)
        ax.imshow(tint, extent=extent, interpolation="nearest")
        with matplotlib.rc_context({"hatch.color": "#555555", "hatch.linewidth": 0.8}):
            rows, cols = view.valid.shape
            xs, ys = col + (np.arange(cols) + 0.5) * width / cols, row + (np.arange(rows) + 0.5) * height / rows
            ax.contourf(xs, ys, (~view.valid).astype(np.float32), levels=[0.5, 1.5], colors="none",
                        hatches=[NODATA_HATCH])
    for name in colors:
        rings = [ring for found, geometry in view.objects if found == name for ring in _outlines(geometry)]
        if rings:
            color = np.array(colors[name]) / 255
            ax.add_collection(PolyCollection(rings, closed=True, edgecolors=color, linewidths=linewidth,
                                             facecolors=np.append(color, fill)))
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("column (px)")
    ax.set_ylabel("row (px)")


def plot_geoscene(preview, title=None):
    """A GeoTIFF scene and its labels (``preview``: what ``tl.scene_preview`` returns: ``image``, ``valid``,
    ``objects`` [(class, polygon in raster pixels)], ``window``, ``scale``, ``facts``, ``detail``): the whole scene
    decimated, no-data pixels hatched grey, every label polygon outlined in its class's colour; beside it, when the
    preview has one, its full-resolution detail (marked on the whole scene by a dashed square). Axes count raster
    pixels; the legend gives each class's number of polygons; ``title`` replaces the first panel's."""
    from matplotlib.patches import Patch, Rectangle

    names = sorted({name for name, _ in preview.objects})
    colors = {name: class_color(k) for k, name in enumerate(names)}
    views = [preview] + ([preview.detail] if preview.detail is not None else [])
    with _style():
        fig = _figure(6.2 * len(views), 6.6)
        axes = np.atleast_1d(fig.subplots(1, len(views)))
        small = preview.scale < 0.5  # thin empty outlines where objects are a few pixels
        _scene_panel(axes[0], preview, colors, 0.6 if small else 1.3, 0.0 if small else 0.18)
        width, height = preview.window[2], preview.window[3]
        facts = preview.facts
        crs = f"\nraster in {facts['CRS']}, labels from {facts['label CRS']}" if facts.get("CRS") else ""
        shown = f", shown at 1/{1 / preview.scale:.3g} scale" if preview.scale < 1 else ""
        axes[0].set_title(title or f"{facts.get('raster', 'the raster')}: {width:,} x {height:,} px{shown}{crs}")
        if preview.detail is not None:
            col, row, w, h = preview.detail.window
            axes[0].add_patch(Rectangle((col, row), w, h, fill=False, ec="white", lw=1.6, ls="--"))
            _scene_panel(axes[1], preview.detail, colors, 1.3, 0.18)
            axes[1].set_title(f"the dashed square at full resolution\n({w} x {h} px from column {col}, row {row})")
        counts = {name: sum(1 for found, _ in preview.objects if found == name) for name in names}
        handles = [Patch(facecolor="none", edgecolor=np.array(colors[n]) / 255, lw=2,
                         label=f"{_pretty(n)} ({counts[n]})") for n in names]
        if preview.valid is not None and not preview.valid.all():
            handles.append(Patch(facecolor=NODATA_COLOR, edgecolor="#555555", hatch=NODATA_HATCH, label="no data"))
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), frameon=False)
    return fig
