"""Validation of a COCO instance-segmentation dataset: every problem, as :class:`~.problems.Problem` records.

This module walks the annotation files and runs the dataset-wide checks; one image's checks are in
:mod:`.image_checks`, one annotation's geometry in :mod:`.annotation_checks`.

The layout is the tutorial's ``intseg_remote_sense_coco``::

    DIR/images/...                        ``file_name`` in the JSON is relative to images/
    DIR/annotations/instance_train.json   COCO, polygon or RLE segmentation
    DIR/annotations/instance_val.json

Every problem is collected, not just the first. *Errors* mean the dataset cannot be used as it is; *warnings* are
worth a look but the data can be trained on.

Scale: annotation files are streamed (:mod:`.jsonstream`), one annotation at a time, and only compact indexes are
kept (ids, image and category ids, the problems found), so memory hardly grows with the dataset. Images are
checked in a thread pool: JPEGs are entropy-decoded completely but at 1/8 scale (a truncated file still fails),
PNGs have every chunk's CRC verified up to ``IEND``; other formats are decoded in full.
"""
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .annotation_checks import IS_KIND, bbox_problem, check_segmentation
from .image_checks import finish_image_checks, image_path, start_image_checks
from .images import strict_decoding
from .jsonstream import JsonStream, NotStreamable
from .problems import BySeverity, Problems

SPLITS = ("train", "val")
MIN_IMAGES = 10  # fewer images than this per split: a warning
PROGRESS_MIN_IMAGES = 200  # show a progress bar from this many images per split
DEMO_CACHE_IMAGES = 24  # annotations kept whole for this many images of lowest id (demo drawing), per split
IMAGE_THREADS = min(4, os.cpu_count() or 1)

FIELDS = {
    "images": {"id": "int", "file_name": "text", "width": "int", "height": "int"},
    "annotations": {"id": "int", "image_id": "int", "category_id": "int",
                    "segmentation": "polygon list or RLE object", "bbox": "list", "area": "number"},
    "categories": {"id": "int", "name": "text"},
}


@dataclass
class SplitData:
    """What one annotation file holds, in compact form: the checker never keeps every annotation."""

    name: str
    rel: str  # e.g. "annotations/instance_train.json"
    loaded: bool = False
    images: dict = field(default_factory=dict)  # id -> image entry (first of duplicates)
    categories: dict = field(default_factory=dict)  # id -> name
    ann_ids: list = field(default_factory=list)  # per well-formed annotation (the first of duplicate ids)
    ann_image_ids: list = field(default_factory=list)
    ann_category_ids: list = field(default_factory=list)
    ann_positions: list = field(default_factory=list)  # index in the file's 'annotations' list
    crowd: int = 0
    readable: set = field(default_factory=set)  # image ids whose file decodes at the size the JSON says
    flawed_images: set = field(default_factory=set)  # image ids with an erroneous annotation
    good_images: set = field(default_factory=set)  # image ids with an annotation without any error
    source: object = None  # the annotation list (file read whole) or the path to re-stream for demo annotations
    cache: dict = field(default_factory=dict)  # image id -> whole annotations, for the lowest image ids
    probes: list = field(default_factory=list, repr=False)  # (image entry, pending image check)

    @property
    def num_annotations(self):
        return len(self.ann_image_ids)

    def annotations_of(self, image_ids):
        """The whole annotation entries of ``image_ids`` (from the cache, else by reading the file again)."""
        wanted = set(image_ids)
        if wanted <= set(self.cache):
            return [ann for i in sorted(wanted) for ann in self.cache[i]]
        positions = {pos for pos, img in zip(self.ann_positions, self.ann_image_ids) if img in wanted}
        if isinstance(self.source, list):
            return [self.source[pos] for pos in sorted(positions)]
        with open(self.source, "rb") as fp:
            for key, value, is_array in JsonStream(fp).members():
                if key == "annotations" and is_array:
                    return [ann for pos, ann in enumerate(value) if pos in positions]
        return []


# ----------------------------------------------------------------------------- entries
def _describe(value):
    return "nothing (missing)" if value is None else f"{type(value).__name__} {json.dumps(value)[:40]}"


_EXACT_TYPES = {"int": {int}, "number": {int, float}, "text": {str}, "list": {list},
                "polygon list or RLE object": {list, dict}}
_FAST_FIELDS = {section: [(key, _EXACT_TYPES[kind], kind) for key, kind in fields.items()]
                for section, fields in FIELDS.items()}


def _plainly_well_formed(section, item):
    """The common case, cheaply: every field has exactly the JSON type it needs (a finite number, a non-blank text)."""
    for key, types, kind in _FAST_FIELDS[section]:
        value = item.get(key)
        if type(value) not in types or (kind == "number" and not math.isfinite(value)) or (
                kind == "text" and not value.strip()):
            return False
    return True


def _wrong_fields(section, index, item, rel, problems):
    """Record what is malformed about one entry; True if it is well-formed."""
    if type(item) is dict and _plainly_well_formed(section, item):
        return True
    if not isinstance(item, dict):
        problems.add(f"entries:{section}", "wrong_type", rel,
                     f"{rel}: {section}[{index}] must be an object, got {_describe(item)}")
        return False
    wrong = [f"'{key}' must be {kind}, got {_describe(item.get(key))}"
             for key, kind in FIELDS[section].items() if not IS_KIND[kind](item.get(key))]
    if wrong:
        entry_id = item["id"] if IS_KIND["int"](item.get("id")) else None
        name = f" (id {entry_id})" if entry_id is not None else ""
        problems.add(f"entries:{section}", "wrong_type", rel, f"{rel}: {section}[{index}]{name}: {'; '.join(wrong)}",
                     "fix the entry", id=entry_id)
    return not wrong


def _index(items, key, kind, rel, problems, label, stage):
    """``{item[key]: item}`` keeping the first of duplicates; every duplicate is an error."""
    index = {}
    for item in items:
        value = item[key]
        if value in index:
            problems.add(stage, kind, rel, f"{rel}: {label} {value!r} is used twice; {label}s must be unique",
                         "renumber or remove the duplicate", id=value)
        else:
            index[value] = item
    return index


class _SplitReader:
    """Takes one annotation file's top-level members in file order and checks them as they come.

    Annotations are checked one by one as soon as the images are known; only their ids and problems are kept.
    Categories usually come last in COCO files, so the category check of each annotation waits for :meth:`finish`.
    """

    def __init__(self, split, problems, on_images=None):
        self.split, self.problems, self.on_images = split, problems, on_images
        self.sections = {}  # section -> list of well-formed entries (annotations: None, they are not kept)
        self.wrong_sections = {}  # section -> a value that is not a list
        self.pending = None  # annotations that came before 'images': checked in finish()
        self.seen_ids = set()
        self.ann_problems = {}  # position in split.ann_* -> [(kind, message, fix), ...], or None: unknown image
        self.cache_ids = set()

    def member(self, key, value, is_array):
        if key not in FIELDS:
            return
        if not is_array:
            self.wrong_sections[key] = value
        elif key != "annotations":
            self.sections[key] = [item for index, item in enumerate(value)
                                  if _wrong_fields(key, index, item, self.split.rel, self.problems)]
            if key == "images":
                self._index_images()
        else:
            self.sections[key] = None
            if isinstance(value, list):  # the file was read whole: demo annotations come from this list
                self.split.source = value
            if "images" in self.sections:
                for index, item in enumerate(value):
                    self._annotation(index, item)
            else:
                self.pending = self.split.source = list(value)

    def _index_images(self):
        rel = self.split.rel
        self.split.images = _index(self.sections["images"], "id", "duplicate_image_id", rel, self.problems,
                                   "image id", "index:images")
        _index(list(self.split.images.values()), "file_name", "duplicate_file_name", rel, self.problems, "file_name",
               "index:images")
        self.cache_ids = set(sorted(self.split.images)[:DEMO_CACHE_IMAGES])
        if self.on_images:
            self.on_images(self.split)

    def _annotation(self, index, ann):
        split, rel = self.split, self.split.rel
        if not _wrong_fields("annotations", index, ann, rel, self.problems):
            return
        if ann["id"] in self.seen_ids:
            self.problems.add("index:annotations", "duplicate_annotation_id", rel,
                              f"{rel}: annotation id {ann['id']!r} is used twice; annotation ids must be unique",
                              "renumber or remove the duplicate", id=ann["id"])
            return
        self.seen_ids.add(ann["id"])
        position = len(split.ann_ids)
        split.ann_ids.append(ann["id"])
        split.ann_image_ids.append(ann["image_id"])
        split.ann_category_ids.append(ann["category_id"])
        split.ann_positions.append(index)
        img = split.images.get(ann["image_id"])
        if img is None:
            self.ann_problems[position] = None  # no other check
            return
        if img["id"] in self.cache_ids:
            split.cache.setdefault(img["id"], []).append(ann)
        found = []
        iscrowd = ann.get("iscrowd", 0)
        if iscrowd not in (0, 1) or isinstance(iscrowd, bool):
            found.append(("wrong_type", f"iscrowd must be 0 or 1, got {iscrowd!r}", ""))
        split.crowd += iscrowd == 1
        if img["width"] > 0 and img["height"] > 0:
            box, segmentation_problems = check_segmentation(ann["segmentation"], img["width"], img["height"])
            found += segmentation_problems
            if box is not None:
                mismatch = bbox_problem(ann["bbox"], box)
                found += [mismatch] if mismatch else []
        if found:
            self.ann_problems[position] = found

    def finish(self):
        split, rel, problems = self.split, self.split.rel, self.problems
        for section in FIELDS:
            if section not in self.sections:
                problems.add(f"entries:{section}", "wrong_type", rel,
                             f"{rel}: '{section}' must be a list, got {_describe(self.wrong_sections.get(section))}",
                             "fix the file's structure (see the COCO format)")
                self.member(section, [], True)
        if self.pending is not None:
            for index, item in enumerate(self.pending):
                self._annotation(index, item)
        cats = _index(self.sections["categories"], "id", "duplicate_category_id", rel, problems, "category id",
                      "index:categories")
        _index(list(cats.values()), "name", "duplicate_category_name", rel, problems, "category name",
               "index:categories")
        split.categories = {cid: cat["name"] for cid, cat in cats.items()}
        if not split.categories:
            problems.add("index:categories", "no_categories", rel, f"{rel} lists no categories",
                         "add the class list ('categories')")
        self._annotation_problems()
        split.loaded = True

    def _annotation_problems(self):
        """Record the annotations' problems in file order, the category check first, as an annotation reads."""
        split, rel, known = self.split, self.split.rel, self.split.categories
        for position, (ann_id, image_id, category_id) in enumerate(
                zip(split.ann_ids, split.ann_image_ids, split.ann_category_ids)):
            found = self.ann_problems.get(position, [])
            if found is None:
                self.problems.add("annotations", "unknown_image_id", rel,
                                  f"{rel}: annotation id {ann_id} refers to image_id {image_id}, which is not in "
                                  "'images'", "fix image_id or delete the annotation", id=ann_id)
                continue
            if category_id not in known:
                found = [("unknown_category_id", f"category_id {category_id} is not one of the categories "
                                                 f"{sorted(known)}", "fix category_id or add the category")] + found
            if not found:
                split.good_images.add(image_id)
                continue
            img = split.images[image_id]
            where = f"{rel}: annotation id {ann_id} (image id {img['id']}, {img['file_name']})"
            for kind, message, fix in found:
                self.problems.add("annotations", kind, rel, f"{where}: {message}", fix, id=ann_id)
            split.flawed_images.add(image_id)


# ----------------------------------------------------------------------------- one annotation file
def _read_whole(path, rel, problems):
    """The parsed file, or None after recording why it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        problems.add("file", "invalid_json", rel, f"{rel} is not UTF-8 text", "re-save it as UTF-8 JSON")
    except json.JSONDecodeError as exc:
        problems.add("file", "invalid_json", rel, f"{rel} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                                                  f"{exc.msg})", "the file may be truncated -- re-export or restore it")
    return None


def load_split(dataset_dir, name, problems, on_images=None, stream=True):
    """Read and check ``annotations/instance_{name}.json``: a :class:`SplitData`.

    ``on_images(split)`` is called as soon as the images are known (to start checking the image files while the
    annotations are read). The file is streamed; if it cannot be (invalid JSON, unusual layout) it is read whole.
    """
    rel = f"annotations/instance_{name}.json"
    path = dataset_dir / rel
    if not path.is_file():
        problems.add("file", "missing_annotation_file", rel,
                     f"{rel} does not exist; a COCO dataset needs annotations/instance_train.json and "
                     "annotations/instance_val.json", "add it, or convert (CheckDataset.convert) or split "
                                                      "(CheckDataset.split) your annotations")
        return SplitData(name, rel)
    if stream:
        split, found = SplitData(name, rel, source=path), Problems()
        reader = _SplitReader(split, found, on_images)
        try:
            with open(path, "rb") as fp:
                for key, value, is_array in JsonStream(fp).members():
                    reader.member(key, value, is_array)
        except NotStreamable:
            for _, probe in split.probes:  # the images are checked again once the file is read whole
                getattr(probe, "cancel", lambda: None)()
        else:
            reader.finish()
            problems.extend(found)
            return split
    split = SplitData(name, rel)
    data = _read_whole(path, rel, problems)
    if data is None:
        return split
    if not isinstance(data, dict):
        problems.add("file", "wrong_type", rel, f"{rel}: the top level must be a JSON object with 'images', "
                                                f"'annotations' and 'categories', got {type(data).__name__}")
        return split
    reader = _SplitReader(split, problems, on_images)
    for section in FIELDS:
        if section in data:
            reader.member(section, data[section], isinstance(data[section], list))
    reader.finish()
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
    problems.add("dataset", "category_mismatch", "annotations/",
                 f"instance_train.json and instance_val.json list different categories ({'; '.join(differences)}); "
                 "both must list the same categories with the same ids",
                 "copy one 'categories' list into the other")


def background_images(split):
    """Images of ``split`` without any annotation (kept: they train as negatives)."""
    with_objects = set(split.ann_image_ids)
    return [img for img in split.images.values() if img["id"] not in with_objects]


def _split_checks(split, names, problems):
    rel = split.rel
    if split.name == "train" and split.num_annotations == 0 and split.images:
        problems.add("dataset", "no_train_annotations", rel,
                     f"{rel}: none of its {len(split.images)} images has an annotation, so there is nothing to train "
                     "on", "annotate objects in the train images (LabelMe: check that the shapes are not all "
                           "__ignore__), or re-split with CheckDataset.split so that train gets annotated images",
                     severity="error")
    background = background_images(split)
    if background:
        names_shown = ", ".join(img["file_name"] for img in background[:3])
        problems.add("dataset", "background_images", rel,
                     f"{rel}: {len(background)} of {len(split.images)} images have no annotation (background-only, "
                     f"e.g. {names_shown}); they are kept and train as negatives",
                     "remove them from 'images' if that is not intended", severity="warning")
    if len(split.images) < MIN_IMAGES:
        problems.add("dataset", "few_images", rel, f"{rel}: only {len(split.images)} images; {MIN_IMAGES} or more "
                                                   "per split are needed for a meaningful training/evaluation",
                     severity="warning")
    present = set(split.ann_category_ids)
    empty = [names[cid] for cid in sorted(split.categories) if cid not in present]
    if empty and split.images:
        problems.add("dataset", "empty_class", rel, f"{rel}: no annotation of {', '.join(empty)}; the model cannot "
                                                    "learn or be evaluated on it", "add examples", severity="warning")


def _unused_files(dataset_dir, splits, problems):
    referenced = {str(image_path(dataset_dir, img["file_name"])) for s in splits for img in s.images.values()}
    files = sorted(p for p in (dataset_dir / "images").rglob("*") if p.is_file() and str(p) not in referenced)
    if files:
        names = ", ".join(str(p.relative_to(dataset_dir / "images")) for p in files[:3])
        problems.add("dataset", "unused_image_files", "images/",
                     f"images/ holds {len(files)} file(s) that no annotation file lists (e.g. {names})",
                     "add them to a split or remove them", severity="warning")
    train_names = {img["file_name"] for img in splits[0].images.values()}
    both = sorted(train_names & {img["file_name"] for img in splits[1].images.values()})
    if both:
        problems.add("dataset", "image_in_both_splits", "annotations/",
                     f"{len(both)} image(s) are in both train and val (e.g. {', '.join(both[:3])}); the validation "
                     "score will be too optimistic", "keep each image in one split", severity="warning")


@dataclass
class Validation(BySeverity):
    """The outcome of :func:`validate_dataset`: the problems, and the splits in compact form for the statistics."""

    dataset_dir: object
    splits: list
    problems: list  # Problem records, errors and warnings, in the order found

    @property
    def names(self):
        """Category id -> name; train's names win where the splits differ."""
        return {**self.splits[1].categories, **self.splits[0].categories}



def validate_dataset(dataset_dir, progress=True, progress_min_images=PROGRESS_MIN_IMAGES):
    """Check the JSON files, every image and every annotation of a COCO dataset; never raises for bad data."""
    start = Problems()
    images_dir = dataset_dir / "images"
    if not images_dir.is_dir():
        start.add("file", "missing_images_dir", "images/", f"{dataset_dir}/images/ does not exist",
                  "put the image files there (file_name in the JSON is relative to images/)")
    problems, splits = start.items, []
    with strict_decoding(), ThreadPoolExecutor(IMAGE_THREADS) as pool:
        on_images = (lambda split: start_image_checks(split, dataset_dir, pool)) if images_dir.is_dir() else None
        for name in SPLITS:
            found = Problems()
            split = load_split(dataset_dir, name, found, on_images)
            finish_image_checks(split, found, progress, progress_min_images)
            problems += found.items
            splits.append(split)
    checks = Problems()
    _compare_categories(*splits, checks)
    names = {**splits[1].categories, **splits[0].categories}
    for split in splits:
        if split.loaded:
            _split_checks(split, names, checks)
    if images_dir.is_dir():
        _unused_files(dataset_dir, splits, checks)
    return Validation(dataset_dir, splits, problems + checks.items)
