"""Statistics of a checked dataset: counts per split and class, the class histogram and annotated examples.

Counting: like PaddleX, ``train_samples``/``val_samples`` count *annotations* (object instances) -- the tutorial's
"2989 / 932 samples". ``train_images`` and ``train_annotations`` say which is which.
"""
from collections import Counter
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np
from PIL import Image

from ..viz import draw_coco_image
from .coco import load_coco
from .image_checks import image_path
from .validate import SPLITS, background_images

SPLIT_COLORS = {"train": "#4477aa", "val": "#ee7733"}


@dataclass
class SplitStats:
    """Counts of one split; ``per_class`` is by category id and includes ids the categories do not list."""

    name: str
    images: int = 0
    annotations: int = 0
    background_images: int = 0
    crowd_annotations: int = 0
    per_class: Counter = field(default_factory=Counter)


def split_stats(split):
    """:class:`SplitStats` of a validated split (``validate.SplitData``)."""
    return SplitStats(split.name, len(split.images), split.num_annotations,
                      len(background_images(split)) if split.loaded else 0, split.crowd,
                      Counter(split.ann_category_ids))


def class_counts(stats, names):
    """``{split: {class name: annotations}}`` for every class (0 if none); ids missing from the categories appear
    as ``"id N"``."""
    counts = {}
    for s in stats:
        counts[s.name] = Counter({name: 0 for name in names.values()})
        for cid, n in s.per_class.items():
            counts[s.name][names.get(cid, f"id {cid}")] += n
    return counts


def paddlex_attributes(stats, names, sample_paths):
    """The ``attributes`` of ``check_dataset_result.json``: PaddleX's keys first, then the explicit counts."""
    attributes = {"num_classes": len(names)}
    for s in stats:
        attributes[f"{s.name}_samples"] = s.annotations
        attributes[f"{s.name}_sample_paths"] = sample_paths.get(s.name, [])
    attributes["class_names"] = [names[cid] for cid in sorted(names)]
    for s in stats:
        attributes.update({
            f"{s.name}_images": s.images,
            f"{s.name}_annotations": s.annotations,
            f"{s.name}_background_images": s.background_images,
            f"{s.name}_crowd_annotations": s.crowd_annotations,
            f"{s.name}_annotations_per_class": {names[cid]: s.per_class[cid] for cid in sorted(names)},
        })
    return attributes


# ----------------------------------------------------------------------------- the class histogram
def plot_class_histogram(counts, ax=None, title="annotations per class"):
    """Draw per-class annotation counts of each split as horizontal bars on ``ax`` (a new figure if None).

    ``counts`` is ``{split: {class name: count}}`` -- e.g. ``{s: result["attributes"][f"{s}_annotations_per_class"]
    for s in ("train", "val")}``. Class names stay horizontal and readable, the most frequent class on top, each
    bar labelled with its count. Returns the Axes.
    """
    splits = [s for s in SPLITS if s in counts] + [s for s in counts if s not in SPLITS]
    labels = sorted({name for s in splits for name in counts[s]},
                    key=lambda n: (-sum(counts[s].get(n, 0) for s in splits), n))
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8, max(3.0, 0.42 * len(labels) * max(1, len(splits)) / 2 + 1.4)), dpi=100,
                     layout="constrained")
        ax = fig.add_subplot()
    y = np.arange(len(labels))
    height = 0.8 / max(1, len(splits))
    for k, split in enumerate(splits):
        values = [counts[split].get(name, 0) for name in labels]
        offset = (k - (len(splits) - 1) / 2) * height
        bars = ax.barh(y + offset, values, height, label=f"{split} ({sum(values)})",
                       color=SPLIT_COLORS.get(split))
        ax.bar_label(bars, fontsize=8, padding=2)
    ax.set_yticks(y, labels, fontsize=9)
    ax.invert_yaxis()  # the most frequent class on top
    ax.set_xlabel("annotations (object instances)")
    ax.margins(x=0.12)  # room for the count labels
    ax.set_title(title)
    if splits:
        ax.legend(loc="lower right", fontsize=8)
    return ax


def save_class_histogram(counts, path):
    """:func:`plot_class_histogram` as a PNG (matplotlib's Agg canvas: no pyplot, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    ax = plot_class_histogram(counts)
    FigureCanvasAgg(ax.figure)
    path.parent.mkdir(parents=True, exist_ok=True)
    ax.figure.savefig(path)
    return path


# ----------------------------------------------------------------------------- demo images
def demo_images(split, dataset_dir, demo_dir, num_demo):
    """Draw up to ``num_demo`` error-free, readable images that have annotations; return their paths."""
    chosen = [i for i in sorted(split.readable) if i in split.good_images and i not in split.flawed_images][:num_demo]
    if not chosen:
        return []
    coco = load_coco({"images": [split.images[i] for i in chosen], "annotations": split.annotations_of(chosen),
                      "categories": [{"id": cid, "name": name} for cid, name in split.categories.items()]})
    paths = []
    for image_id in chosen:
        file_name = split.images[image_id]["file_name"]
        with Image.open(image_path(dataset_dir, file_name)) as image:
            rgb = np.asarray(image.convert("RGB"))
        path = demo_dir / f"{split.name}_{PurePosixPath(file_name.replace(chr(92), '/')).stem}.jpg"
        Image.fromarray(draw_coco_image(coco, image_id, rgb)).save(path, quality=90)
        paths.append(path)
    return paths
