"""Step 4: check a COCO instance-segmentation dataset (``Global.mode=check_dataset``).

The layout is the tutorial's ``intseg_remote_sense_coco``::

    DIR/images/...                        ``file_name`` in the JSON is relative to images/
    DIR/annotations/instance_train.json   COCO, polygon or RLE segmentation
    DIR/annotations/instance_val.json

Every problem is collected, not just the first. *Errors* mean the dataset cannot be used as it is
(``check_pass: false``); *warnings* are reported and the check still passes. The report is
``{output}/check_dataset_result.json`` in PaddleX's schema plus explicit counts, with a class
histogram and demo images under ``{output}/check_dataset/``.

Counting: like PaddleX, ``train_samples``/``val_samples`` count *annotations* (object instances) --
the tutorial's "2989 / 932 samples". ``train_images`` and ``train_annotations`` say which is which.
"""
import json
import math
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from tqdm.auto import tqdm

from ..config import save_config
from ..errors import UserError
from ..viz import draw_coco_image
from .coco import load_coco
from .images import strict_decoding

SPLITS = ("train", "val")
MIN_IMAGES = 10  # fewer images than this per split: a warning
COORD_TOLERANCE = 1.0  # pixels a polygon may reach beyond the image border
BBOX_TOLERANCE = 2.0  # pixels (plus 5 % of the box size) between a bbox and its mask's box
PROGRESS_MIN_IMAGES = 200  # show a progress bar from this many images per split
SAMPLE_HINT = "python -m tutorial_lib sample --output data/remote_sense_sample"

_IS = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    "text": lambda v: isinstance(v, str) and v.strip() != "",
    "list": lambda v: isinstance(v, list),
    "polygon list or RLE object": lambda v: isinstance(v, (list, dict)),
}
FIELDS = {
    "images": {"id": "int", "file_name": "text", "width": "int", "height": "int"},
    "annotations": {"id": "int", "image_id": "int", "category_id": "int",
                    "segmentation": "polygon list or RLE object", "bbox": "list", "area": "number"},
    "categories": {"id": "int", "name": "text"},
}


class Problems:
    """Every error and warning found, in the order found."""

    def __init__(self):
        self.items = []

    def error(self, kind, file, message):
        self.items.append({"level": "error", "kind": kind, "file": str(file), "message": message})

    def warning(self, kind, file, message):
        self.items.append({"level": "warning", "kind": kind, "file": str(file), "message": message})

    def of(self, level):
        return [p for p in self.items if p["level"] == level]

    def counts(self, level):
        return dict(Counter(p["kind"] for p in self.of(level)))


@dataclass
class SplitData:
    """What one annotation file holds once its well-formed entries are indexed."""

    name: str
    rel: str  # e.g. "annotations/instance_train.json"
    loaded: bool = False
    images: dict = field(default_factory=dict)  # id -> image entry (first of duplicates)
    categories: dict = field(default_factory=dict)  # id -> name
    annotations: list = field(default_factory=list)  # well-formed entries
    good_annotations: list = field(default_factory=list)  # entries without any error
    readable: set = field(default_factory=set)  # image ids whose file decodes at the size the JSON says
    flawed_images: set = field(default_factory=set)  # image ids with an erroneous annotation
    crowd: int = 0


# ----------------------------------------------------------------------------- loading and structure
def _load_json(path, rel, problems):
    """``(True, data)`` or ``(False, None)`` after recording why the file cannot be read."""
    if not path.is_file():
        problems.error("missing_annotation_file", rel,
                       f"{rel} does not exist; a COCO dataset needs annotations/instance_train.json and "
                       "annotations/instance_val.json -- add it, or convert (CheckDataset.convert) or split "
                       "(CheckDataset.split) your annotations")
        return False, None
    try:
        return True, json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        problems.error("invalid_json", rel, f"{rel} is not UTF-8 text; re-save it as UTF-8 JSON")
    except json.JSONDecodeError as exc:
        problems.error("invalid_json", rel, f"{rel} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                                            f"{exc.msg}); the file may be truncated -- re-export or restore it")
    return False, None


def _describe(value):
    return "nothing (missing)" if value is None else f"{type(value).__name__} {json.dumps(value)[:40]}"


def _entries(data, rel, problems):
    """Check the top-level types and every entry's fields; return ``{section: [well-formed entries]}``."""
    if not isinstance(data, dict):
        problems.error("wrong_type", rel, f"{rel}: the top level must be a JSON object with 'images', "
                                          f"'annotations' and 'categories', got {type(data).__name__}")
        return None
    sections = {}
    for section, fields in FIELDS.items():
        items = data.get(section)
        if not isinstance(items, list):
            problems.error("wrong_type", rel, f"{rel}: '{section}' must be a list, got {_describe(items)}; "
                                              "fix the file's structure (see the COCO format)")
            items = []
        sections[section] = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                problems.error("wrong_type", rel, f"{rel}: {section}[{index}] must be an object, got {_describe(item)}")
                continue
            wrong = [f"'{key}' must be {kind}, got {_describe(item.get(key))}"
                     for key, kind in fields.items() if not _IS[kind](item.get(key))]
            if wrong:
                name = f" (id {item['id']})" if _IS["int"](item.get("id")) else ""
                problems.error("wrong_type", rel, f"{rel}: {section}[{index}]{name}: {'; '.join(wrong)}; fix the entry")
            else:
                sections[section].append(item)
    return sections


def _index(items, key, kind, rel, problems, label):
    """``{item[key]: item}`` keeping the first of duplicates; every duplicate is an error."""
    index = {}
    for item in items:
        value = item[key]
        if value in index:
            problems.error(kind, rel, f"{rel}: {label} {value!r} is used twice; {label}s must be unique -- "
                                      "renumber or remove the duplicate")
        else:
            index[value] = item
    return index


# ----------------------------------------------------------------------------- images
def _image_path(dataset_dir, file_name):
    relative = PurePosixPath(file_name.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts:
        return None
    return dataset_dir / "images" / relative


def _stem(file_name):
    return PurePosixPath(file_name.replace("\\", "/")).stem


EXIF_ORIENTATION = 0x0112
ORIENTATIONS = {2: "mirrored", 3: "rotated 180°", 4: "flipped upside down", 5: "mirrored and rotated 90°",
                6: "rotated 90° clockwise", 7: "mirrored and rotated 90°", 8: "rotated 90° counter-clockwise"}


def _decoded_size(path):
    """``((width, height), orientation, None)`` if the file decodes completely, else ``(None, None, reason)``.

    The size is the one OpenCV decodes -- what training (paddledet's ``Decode``) and prediction see: with an
    EXIF orientation tag (5 to 8) OpenCV turns the image by 90°, so width and height swap.
    """
    try:
        with strict_decoding(), Image.open(path) as image:
            image.load()
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
            width, height = image.size
    except Exception as exc:  # PIL raises many types for broken files
        return None, None, str(exc) or type(exc).__name__
    orientation = orientation if orientation in ORIENTATIONS else 1
    return ((height, width) if orientation >= 5 else (width, height)), orientation, None


def _check_images(split, dataset_dir, problems, progress):
    rel = split.rel
    images = list(split.images.values())
    bar = tqdm(images, desc=f"checking {split.name} images", unit="img",
               disable=not progress or len(images) < PROGRESS_MIN_IMAGES)
    for img in bar:
        where = f"{rel}: image id {img['id']} ({img['file_name']})"
        if img["width"] <= 0 or img["height"] <= 0:
            problems.error("wrong_type", rel, f"{where}: width and height must be positive, got "
                                              f"{img['width']}x{img['height']}; set the real image size")
            continue
        path = _image_path(dataset_dir, img["file_name"])
        if path is None:
            problems.error("bad_file_name", rel, f"{where}: file_name must be a path relative to images/ without "
                                                 "'..' or a leading '/'; move the file into images/ and fix the name")
            continue
        if not path.is_file():
            problems.error("missing_image_file", rel, f"{where}: images/{img['file_name']} does not exist; copy the "
                                                      "image into images/ or remove the image and its annotations")
            continue
        size, orientation, reason = _decoded_size(path)
        turned = f" once its EXIF orientation ({ORIENTATIONS.get(orientation)}) is applied, as OpenCV does in " \
                 "training and prediction," if orientation != 1 else ""
        if size is None:
            problems.error("unreadable_image", rel, f"{where}: images/{img['file_name']} cannot be decoded "
                                                    f"({reason}); re-export the image or remove it from the JSON")
        elif size != (img["width"], img["height"]):
            fix = ("save the image with the rotation applied and no orientation tag (PIL.ImageOps.exif_transpose) "
                   "and check that its annotations were drawn on that view" if orientation != 1 else
                   "set width/height to the real size or restore the image")
            problems.error("image_size_mismatch", rel,
                           f"{where}: the file is {size[0]}x{size[1]} (width x height){turned} but the JSON says "
                           f"{img['width']}x{img['height']}; {fix}")
        else:
            split.readable.add(img["id"])
            if orientation != 1:
                problems.warning("exif_orientation", rel,
                                 f"{where}: the file carries EXIF orientation {orientation} "
                                 f"({ORIENTATIONS[orientation]}); training and prediction see it turned that way. "
                                 "Make sure the annotations were drawn on the turned view, or save the image with "
                                 "the rotation applied and no tag (PIL.ImageOps.exif_transpose)")


# ----------------------------------------------------------------------------- annotations
def _rle_total(counts):
    """Sum of the runs of a compressed COCO RLE string (decoded here, so that bad strings never reach C)."""
    runs, index, total = [], 0, 0
    while index < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if index >= len(counts):
                raise ValueError("ends in the middle of a number")
            code = ord(counts[index]) - 48
            if not 0 <= code < 64:
                raise ValueError(f"contains the invalid character {counts[index]!r}")
            value |= (code & 0x1F) << (5 * shift)
            more = bool(code & 0x20)
            shift += 1
            index += 1
            if not more and code & 0x10:
                value |= -1 << (5 * shift)
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            raise ValueError("decodes to a negative run length")
        runs.append(value)
        total += value
    return total


def _polygon_area(xs, ys):
    return 0.5 * abs(float(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))


def _segmentation(segm, width, height):
    """``(rle, [(kind, text), ...])`` for one segmentation; ``rle`` is None when there are problems."""
    if isinstance(segm, list):
        if not segm:
            return None, [("degenerate_segmentation", "the segmentation is an empty list; draw the outline or "
                                                      "delete the annotation")]
        found, polygons = [], []
        for k, poly in enumerate(segm):
            if not isinstance(poly, list) or not all(_IS["number"](v) for v in poly):
                found.append(("wrong_type", f"polygon {k} must be a flat list of numbers [x1, y1, x2, y2, ...]"))
            elif len(poly) % 2:
                found.append(("degenerate_segmentation", f"polygon {k} has an odd number of coordinates "
                                                         f"({len(poly)}); write x, y pairs"))
            elif len(poly) < 6:
                found.append(("degenerate_segmentation", f"polygon {k} has {len(poly) // 2} point(s), a polygon "
                                                         "needs at least 3; redraw it or delete the annotation"))
            else:
                xs, ys = np.array(poly[0::2], float), np.array(poly[1::2], float)
                if _polygon_area(xs, ys) == 0:
                    found.append(("degenerate_segmentation", f"polygon {k} has zero area (its points lie on a "
                                                             "line); redraw it or delete the annotation"))
                elif (xs.min() < -COORD_TOLERANCE or ys.min() < -COORD_TOLERANCE
                      or xs.max() > width + COORD_TOLERANCE or ys.max() > height + COORD_TOLERANCE):
                    found.append(("out_of_bounds", f"polygon {k} spans x {xs.min():g}..{xs.max():g}, y "
                                                   f"{ys.min():g}..{ys.max():g}, outside the {width}x{height} "
                                                   "image; clip the points to the image (or check the image id)"))
                else:
                    polygons.append(poly)
        if found:
            return None, found
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    else:
        size, counts = segm.get("size"), segm.get("counts")
        if size != [height, width]:
            return None, [("rle_size_mismatch", f"the RLE size {size} is not the image's [height, width] = "
                                                f"[{height}, {width}]; re-encode the mask at the image size")]
        if isinstance(counts, list) and all(_IS["int"](c) and c >= 0 for c in counts):
            total = sum(counts)
            rle = mask_utils.frPyObjects(segm, height, width) if total == height * width else None
        elif isinstance(counts, str):
            try:
                total = _rle_total(counts)
            except ValueError as exc:
                return None, [("invalid_rle", f"the compressed RLE string {exc}; re-encode the mask "
                                              "(pycocotools.mask.encode)")]
            rle = {"size": size, "counts": counts.encode("ascii")} if total == height * width else None
        else:
            return None, [("invalid_rle", "RLE 'counts' must be a list of non-negative ints or a compressed "
                                          "string; re-encode the mask (pycocotools.mask.encode)")]
        if rle is None:
            return None, [("invalid_rle", f"the RLE runs cover {total} pixels, not height x width = "
                                          f"{height * width}; re-encode the mask at the image size")]
    if mask_utils.area(rle) == 0:
        return None, [("degenerate_segmentation", "the mask covers no pixel (zero area); redraw it or delete the "
                                                  "annotation")]
    return rle, []


def _bbox_problem(bbox, rle):
    if len(bbox) != 4 or not all(_IS["number"](v) for v in bbox):
        return "wrong_type", f"bbox must be 4 numbers [x, y, width, height], got {json.dumps(bbox)[:60]}"
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        return "degenerate_bbox", f"bbox {bbox} has a width or height <= 0; recompute it from the mask"
    mx, my, mw, mh = (float(v) for v in mask_utils.toBbox(rle))
    tolerance = BBOX_TOLERANCE + 0.05 * max(mw, mh)
    if max(abs(x - mx), abs(y - my), abs(x + w - mx - mw), abs(y + h - my - mh)) > tolerance:
        return "bbox_mismatch", (f"bbox {[round(v, 1) for v in bbox]} does not match the mask's box "
                                 f"{[round(v, 1) for v in (mx, my, mw, mh)]}; recompute the bbox from the mask "
                                 "(pycocotools.mask.toBbox)")
    return None


def _check_annotations(split, problems):
    for ann in split.annotations:
        where = f"{split.rel}: annotation id {ann['id']}"
        img = split.images.get(ann["image_id"])
        if img is None:
            problems.error("unknown_image_id", split.rel, f"{where} refers to image_id {ann['image_id']}, which is "
                                                          "not in 'images'; fix image_id or delete the annotation")
            continue
        where += f" (image id {img['id']}, {img['file_name']})"
        found = []
        if ann["category_id"] not in split.categories:
            found.append(("unknown_category_id", f"category_id {ann['category_id']} is not one of the categories "
                                                 f"{sorted(split.categories)}; fix category_id or add the category"))
        iscrowd = ann.get("iscrowd", 0)
        if iscrowd not in (0, 1) or isinstance(iscrowd, bool):
            found.append(("wrong_type", f"iscrowd must be 0 or 1, got {iscrowd!r}"))
        split.crowd += iscrowd == 1
        if img["width"] > 0 and img["height"] > 0:
            rle, segmentation_problems = _segmentation(ann["segmentation"], img["width"], img["height"])
            found += segmentation_problems
            if rle is not None:
                bbox_problem = _bbox_problem(ann["bbox"], rle)
                found += [bbox_problem] if bbox_problem else []
        for kind, text in found:
            problems.error(kind, split.rel, f"{where}: {text}")
        if found:
            split.flawed_images.add(img["id"])
        else:
            split.good_annotations.append(ann)


def _load_split(dataset_dir, name, problems, progress):
    rel = f"annotations/instance_{name}.json"
    split = SplitData(name, rel)
    ok, data = _load_json(dataset_dir / rel, rel, problems)
    sections = _entries(data, rel, problems) if ok else None
    if sections is None:
        return split
    split.loaded = True
    split.images = _index(sections["images"], "id", "duplicate_image_id", rel, problems, "image id")
    _index(list(split.images.values()), "file_name", "duplicate_file_name", rel, problems, "file_name")
    cats = _index(sections["categories"], "id", "duplicate_category_id", rel, problems, "category id")
    _index(list(cats.values()), "name", "duplicate_category_name", rel, problems, "category name")
    split.categories = {cid: cat["name"] for cid, cat in cats.items()}
    if not split.categories:
        problems.error("no_categories", rel, f"{rel} lists no categories; add the class list ('categories')")
    annotations = _index(sections["annotations"], "id", "duplicate_annotation_id", rel, problems, "annotation id")
    split.annotations = list(annotations.values())
    if (dataset_dir / "images").is_dir():
        _check_images(split, dataset_dir, problems, progress)
    _check_annotations(split, problems)
    return split


# ----------------------------------------------------------------------------- whole-dataset checks
def _compare_categories(train, val, problems):
    if not (train.loaded and val.loaded) or train.categories == val.categories:
        return
    differences = []
    for label, ids in (("only in train", set(train.categories) - set(val.categories)),
                       ("only in val", set(val.categories) - set(train.categories))):
        source = train if label == "only in train" else val
        if ids:
            differences.append(f"{label}: " + ", ".join(f"{i}={source.categories[i]}" for i in sorted(ids)))
    renamed = [f"{i}={train.categories[i]}/{val.categories[i]}" for i in sorted(set(train.categories)
               & set(val.categories)) if train.categories[i] != val.categories[i]]
    if renamed:
        differences.append("same id, other name: " + ", ".join(renamed))
    problems.error("category_mismatch", "annotations/",
                   f"instance_train.json and instance_val.json list different categories ({'; '.join(differences)});"
                   " both must list the same categories with the same ids -- copy one 'categories' list into the other")


def _split_warnings(split, names, problems):
    with_objects = {ann["image_id"] for ann in split.annotations}
    background = [img["file_name"] for img in split.images.values() if img["id"] not in with_objects]
    if background:
        problems.warning("background_images", split.rel,
                         f"{split.rel}: {len(background)} of {len(split.images)} images have no annotation "
                         f"(background-only, e.g. {', '.join(background[:3])}); they are kept and train as negatives "
                         "-- remove them from 'images' if that is not intended")
    if len(split.images) < MIN_IMAGES:
        problems.warning("few_images", split.rel, f"{split.rel}: only {len(split.images)} images; {MIN_IMAGES} or "
                                                  "more per split are needed for a meaningful training/evaluation")
    present = {ann["category_id"] for ann in split.annotations}
    empty = [names[cid] for cid in sorted(split.categories) if cid not in present]
    if empty and split.images:
        problems.warning("empty_class", split.rel, f"{split.rel}: no annotation of {', '.join(empty)}; the model "
                                                   f"cannot learn or be evaluated on it -- add examples")
    return len(background)


def _unused_files(dataset_dir, splits, problems):
    referenced = {str(_image_path(dataset_dir, img["file_name"])) for s in splits for img in s.images.values()}
    files = sorted(p for p in (dataset_dir / "images").rglob("*") if p.is_file() and str(p) not in referenced)
    if files:
        names = ", ".join(str(p.relative_to(dataset_dir / "images")) for p in files[:3])
        problems.warning("unused_image_files", "images/", f"images/ holds {len(files)} file(s) that no annotation file "
                                                          f"lists (e.g. {names}); add them to a split or remove them")
    train_names = {img["file_name"] for img in splits[0].images.values()}
    both = sorted(train_names & {img["file_name"] for img in splits[1].images.values()})
    if both:
        problems.warning("image_in_both_splits", "annotations/",
                         f"{len(both)} image(s) are in both train and val (e.g. {', '.join(both[:3])}); the validation "
                         "score will be too optimistic -- keep each image in one split")


# ----------------------------------------------------------------------------- outputs
def _histogram(splits, names, path):
    """Per-class train/val annotation counts, sorted by total, as a PNG (matplotlib's Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = {s.name: Counter(names.get(a["category_id"], f"id {a['category_id']}") for a in s.annotations)
              for s in splits}
    labels = sorted(set(names.values()) | set(counts["train"]) | set(counts["val"]),
                    key=lambda n: (-(counts["train"][n] + counts["val"][n]), n))
    fig = Figure(figsize=(max(6.0, 0.7 * len(labels) + 2), 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    for offset, split, color in ((-0.2, "train", "#4477aa"), (0.2, "val", "#ee7733")):
        values = [counts[split][n] for n in labels]
        bars = ax.bar(x + offset, values, 0.4, label=f"{split} ({sum(values)})", color=color)
        ax.bar_label(bars, fontsize=7, padding=1)
    ax.set_xticks(x, labels, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("annotations (instances)")
    ax.set_title("annotations per class")
    ax.legend()
    fig.subplots_adjust(left=0.08, right=0.98, top=0.92, bottom=0.25)  # room for the rotated names, one draw
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _demo_images(split, dataset_dir, demo_dir, num_demo):
    """Draw up to ``num_demo`` error-free images that have annotations; return their paths."""
    with_objects = {ann["image_id"] for ann in split.good_annotations}
    chosen = [i for i in sorted(split.readable) if i in with_objects and i not in split.flawed_images][:num_demo]
    if not chosen:
        return []
    coco = load_coco({"images": [split.images[i] for i in chosen],
                      "annotations": [a for a in split.good_annotations if a["image_id"] in chosen],
                      "categories": [{"id": cid, "name": name} for cid, name in split.categories.items()]})
    paths = []
    for image_id in chosen:
        file_name = split.images[image_id]["file_name"]
        with Image.open(_image_path(dataset_dir, file_name)) as image:
            rgb = np.asarray(image.convert("RGB"))
        path = demo_dir / f"{split.name}_{_stem(file_name)}.jpg"
        Image.fromarray(draw_coco_image(coco, image_id, rgb)).save(path, quality=90)
        paths.append(path)
    return paths


def check_coco_dataset(dataset_dir, output_dir, num_demo=4, progress=True, extra=None):
    """Check ``dataset_dir`` and write ``{output_dir}/check_dataset_result.json``; return the result dict.

    ``extra`` (a dict) is merged into the result before it is written (the mode adds its convert and
    split summaries). The result never raises for problems in the data: they are listed in it.
    """
    dataset_dir, output_dir = Path(dataset_dir), Path(output_dir)
    problems = Problems()
    if not (dataset_dir / "images").is_dir():
        problems.error("missing_images_dir", "images/", f"{dataset_dir}/images/ does not exist; put the image files "
                                                        "there (file_name in the JSON is relative to images/)")
    splits = [_load_split(dataset_dir, name, problems, progress) for name in SPLITS]
    _compare_categories(*splits, problems)
    names = {**splits[1].categories, **splits[0].categories}
    background = {s.name: _split_warnings(s, names, problems) for s in splits if s.loaded}
    if (dataset_dir / "images").is_dir():
        _unused_files(dataset_dir, splits, problems)

    vis_dir = output_dir / "check_dataset"
    shutil.rmtree(vis_dir / "demo_img", ignore_errors=True)
    (vis_dir / "demo_img").mkdir(parents=True)
    histogram = _histogram(splits, names, vis_dir / "histogram.png")
    attributes = {"num_classes": len(names)}
    for s in splits:
        demos = _demo_images(s, dataset_dir, vis_dir / "demo_img", num_demo)
        attributes[f"{s.name}_samples"] = len(s.annotations)
        attributes[f"{s.name}_sample_paths"] = [str(p.relative_to(output_dir)) for p in demos]
    attributes["class_names"] = [names[cid] for cid in sorted(names)]
    for s in splits:
        per_class = Counter(a["category_id"] for a in s.annotations)
        attributes.update({
            f"{s.name}_images": len(s.images),
            f"{s.name}_annotations": len(s.annotations),
            f"{s.name}_background_images": background.get(s.name, 0),
            f"{s.name}_crowd_annotations": s.crowd,
            f"{s.name}_annotations_per_class": {names[cid]: per_class[cid] for cid in sorted(names)},
        })
    errors, warnings = problems.of("error"), problems.of("warning")
    result = {
        "done_flag": True,
        "check_pass": not errors,
        "attributes": attributes,
        "analysis": {"histogram": str(histogram.relative_to(output_dir))},
        "dataset_path": str(dataset_dir),
        "show_type": "image",
        "dataset_type": "COCOInstSegDataset",
        "notes": {"samples": "train_samples/val_samples count annotations (object instances), as PaddleX does; "
                             "train_images/val_images count images"},
        "problem_counts": {"errors": problems.counts("error"), "warnings": problems.counts("warning")},
        "errors": errors,
        "warnings": warnings,
        **(extra or {}),
    }
    write_result(result, output_dir)
    return result


def write_result(result, output_dir):
    path = Path(output_dir) / "check_dataset_result.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def format_summary(result, per_kind=3):
    """A readable text summary of a check result: counts, then the first problems of each kind."""
    a = result["attributes"]
    lines = [f"check_dataset {'PASSED' if result['check_pass'] else 'FAILED'}: {result['dataset_path']} "
             f"({a['num_classes']} classes)"]
    for split in SPLITS:
        lines.append(f"  {split}: {a[f'{split}_images']} images ({a[f'{split}_background_images']} background-only), "
                     f"{a[f'{split}_annotations']} annotations")
    for level in ("errors", "warnings"):
        counts = result["problem_counts"][level]
        lines.append(f"  {len(result[level])} {level}" + (
            ": " + ", ".join(f"{kind} x{n}" for kind, n in counts.items()) if counts else ""))
        for kind, n in counts.items():
            shown = [p["message"] for p in result[level] if p["kind"] == kind][:per_kind]
            lines += [f"    - {message}" for message in shown]
            if n > len(shown):
                lines.append(f"    ... and {n - len(shown)} more {kind} (all listed in check_dataset_result.json)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the mode
def _dataset_dir(cfg):
    value = cfg["Global"].get("dataset_dir")
    if not value:
        raise UserError(f"Global.dataset_dir is not set; pass -o Global.dataset_dir=DIR (no data yet? {SAMPLE_HINT})")
    path = Path(value)
    if not path.is_dir():
        raise UserError(f"Global.dataset_dir={value} is not a folder; check the path (no data yet? {SAMPLE_HINT})")
    return path


def check_dataset(cfg):
    """``Global.mode=check_dataset``: convert (if enabled), split (if enabled), then check, as PaddleX does."""
    from .convert import convert_dataset
    from .split import split_dataset

    dataset_dir = _dataset_dir(cfg)
    output_dir = Path(cfg["Global"]["output"])
    seed = cfg["Global"]["seed"]
    save_config(cfg, output_dir / "config.yaml")
    extra = {"convert": None, "split": None}
    convert, split = cfg["CheckDataset"]["convert"], cfg["CheckDataset"]["split"]
    if convert["enable"]:
        # originals are never modified: the COCO result goes to {output}/converted_dataset and is checked there
        extra["convert"] = convert_dataset(convert["src_dataset_type"], dataset_dir,
                                           output_dir / "converted_dataset", seed=seed)
        dataset_dir = Path(extra["convert"]["dataset_dir"])
    if split["enable"]:
        extra["split"] = split_dataset(dataset_dir, split["train_percent"], split["val_percent"], seed=seed)
    result = check_coco_dataset(dataset_dir, output_dir, extra=extra)
    print(format_summary(result))
    print(f"  report: {output_dir / 'check_dataset_result.json'}")
    return result
