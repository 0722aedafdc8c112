"""Step 4: convert LabelMe or VOC instance annotations to COCO in the tutorial layout.

Output (``dst_dir``)::

    images/                              copies of the source images (the originals are never modified)
    annotations/instance_train.json      COCO, polygon segmentation
    annotations/instance_val.json

Category ids are 1..N in the order of a label list (``label_list`` argument, or ``labels.txt`` /
``label.txt`` / ``class_names.txt`` in the source folder; LabelMe's ``__ignore__`` and ``_background_`` lines are
not classes), otherwise in sorted name order. The train/val split follows the
source when it has one (LabelMe: ``train_anno_list.txt``/``val_anno_list.txt``; VOC:
``ImageSets/Segmentation/{train,val}.txt``), otherwise it is a seeded shuffle with ``train_percent``
(default 80) of the images in train (at least one image in each split).

Sources:

* **LabelMe**: one JSON per image anywhere under ``src_dir`` with ``shapes`` of type polygon,
  rectangle or circle (other types are skipped and counted); shapes with the same ``label`` and
  ``group_id`` form one instance. As in LabelMe's own ``labelme2coco``, shapes labelled ``__ignore__`` are
  skipped and ``_background_`` is not a class (both counted in ``skipped_shapes``). ``imagePath`` is resolved
  relative to the JSON, then by name in the JSON's folder, ``images/`` and ``src_dir``; if the image is
  missing, embedded ``imageData`` is used.
* **VOC**: ``Annotations/<name>.xml``, ``JPEGImages/``, ``SegmentationObject/<name>.png`` (palette
  index k = the k-th ``<object>`` of the XML, 0 background, 255 void) and optionally
  ``SegmentationClass/<name>.png`` (used for the class when the XML has no k-th object: index k is the k-th
  class of the label list, or of the 20 PASCAL VOC classes when there is no list). LabelMe's VOC export
  (``labelme2voc``: ``JPEGImages/``, ``SegmentationClass/`` and ``SegmentationObject/`` PNGs -- or
  ``SegmentationClassPNG/``/``SegmentationObjectPNG/`` -- no ``Annotations/``, ``class_names.txt``) is read the
  same way. Masks become polygons from their outer contours (holes are filled).
"""
import base64
import io
import json
import math
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from shapely.geometry import LineString, Point, Polygon

from ..errors import UserError
from .categories import coco_categories
from .coco import load_coco

LABEL_FILES = ("labels.txt", "label.txt", "class_names.txt")
IGNORE_LABEL, BACKGROUND_LABEL = "__ignore__", "_background_"  # LabelMe's conventions, not classes
NOT_CLASSES = (IGNORE_LABEL, BACKGROUND_LABEL, "background")
# PASCAL VOC's 20 classes in palette-index order (index 1 = aeroplane): the classes of a SegmentationClass PNG
# when the dataset brings no label list
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")
CIRCLE_POINTS = 32
MAX_LISTED = 10  # problems named in one error message


# ----------------------------------------------------------------------------- shared helpers
def read_label_list(src_dir, label_list=None):
    """Class names from ``label_list`` (a list or a file path) or ``labels.txt`` in ``src_dir``; else None."""
    if isinstance(label_list, (list, tuple)):
        return [str(name) for name in label_list]
    candidates = [Path(label_list)] if label_list else [Path(src_dir) / name for name in LABEL_FILES]
    for path in candidates:
        if path.is_file():
            names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            return [n for n in names if n not in NOT_CLASSES]
    if label_list:
        raise UserError(f"label list {label_list} does not exist")
    return None


def _fail(what, problems):
    listed = "; ".join(problems[:MAX_LISTED])
    more = f"; and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    raise UserError(f"cannot convert {what}: {listed}{more}")


def mask_polygons(mask):
    """Outer outlines of a binary mask as COCO polygons (flat lists).

    OpenCV's contours run through the centres of the boundary pixels; growing them by half a pixel
    (square corners) gives the outline of the pixels themselves, so that the polygon rasterises back to
    nearly the same mask, thin one-pixel parts included.
    """
    contours, _ = cv2.findContours(np.ascontiguousarray(mask, np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        points = contour.reshape(-1, 2).astype(float) + 0.5
        shape = Polygon(points) if len(points) >= 3 else LineString(points) if len(points) == 2 else Point(points[0])
        grown = shape.buffer(0.5, cap_style=3, join_style=2)
        for part in getattr(grown, "geoms", [grown]):
            polygons.append([round(float(v), 2) for xy in part.exterior.coords[:-1] for v in xy])
    return polygons


def _instance(polygons, width, height):
    """COCO geometry (clipped polygons, bbox, area) or None when nothing of the shape is left."""
    clipped = []
    for poly in polygons:
        pts = np.asarray(poly, float).reshape(-1, 2).clip([0, 0], [width, height])
        if len(pts) >= 3:
            clipped.append([round(float(v), 2) for v in pts.reshape(-1)])
    if not clipped:
        return None
    rle = mask_utils.merge(mask_utils.frPyObjects(clipped, height, width))
    area = float(mask_utils.area(rle))
    if area == 0:
        return None
    return {"segmentation": clipped, "area": area,
            "bbox": [round(float(v), 2) for v in mask_utils.toBbox(rle)], "iscrowd": 0}


def _assign_splits(records, train_percent, seed):
    """Give a seeded 'train'/'val' to records without one (at least one of each when possible)."""
    open_records = [r for r in records if r["split"] is None]
    if not open_records:
        return
    order = np.random.default_rng(seed).permutation(len(open_records))
    n_val = round(len(open_records) * (100 - train_percent) / 100)
    n_val = min(max(n_val, 1), len(open_records) - 1) if len(open_records) > 1 else 0
    for rank, index in enumerate(order):
        open_records[index]["split"] = "val" if rank < n_val else "train"


def _write_coco(records, names, dst_dir, source, split_rule):
    """Write images and the two annotation files; return a summary."""
    categories = coco_categories(names)
    cat_ids = {c["name"]: c["id"] for c in categories}
    shutil.rmtree(dst_dir, ignore_errors=True)
    (dst_dir / "images").mkdir(parents=True)
    (dst_dir / "annotations").mkdir()
    splits = {"train": {"images": [], "annotations": []}, "val": {"images": [], "annotations": []}}
    ann_id = 0
    for image_id, record in enumerate(records, start=1):
        (dst_dir / "images" / record["file_name"]).write_bytes(record["image_bytes"])
        split = splits[record["split"]]
        split["images"].append({"id": image_id, "file_name": record["file_name"],
                                "width": record["width"], "height": record["height"]})
        for label, geometry in record["instances"]:
            ann_id += 1
            split["annotations"].append({"id": ann_id, "image_id": image_id, "category_id": cat_ids[label],
                                         **geometry})
    for name, split in splits.items():
        data = {"info": {"description": f"converted by tutorial_lib from {source}", "split": name,
                         "split_rule": split_rule},
                "licenses": [], **split, "categories": categories}
        (dst_dir / "annotations" / f"instance_{name}.json").write_text(
            json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return {"dataset_dir": str(dst_dir), "categories": list(names), "split_rule": split_rule,
            **{f"{name}_images": len(s["images"]) for name, s in splits.items()},
            **{f"{name}_annotations": len(s["annotations"]) for name, s in splits.items()}}


def _finish(records, src_dir, dst_dir, label_list, train_percent, seed, source, listed_split, default_names=None):
    """Resolve category names, splits and write; shared by both converters."""
    labels = sorted({label for r in records for label, _ in r["instances"]})
    names = read_label_list(src_dir, label_list)
    if names is None:
        names = list(default_names) if default_names else labels
    unknown = [label for label in labels if label not in names]
    if unknown:
        _fail(src_dir, [f"label {label!r} is not in the label list {names}; add it to labels.txt (or class_names.txt)"
                        " or fix the annotation" for label in unknown])
    if not records:
        raise UserError(f"cannot convert {src_dir}: no annotated image found")
    _assign_splits(records, train_percent, seed)
    rule = listed_split if listed_split else f"seeded shuffle: {train_percent}% train (seed {seed})"
    return _write_coco(records, names, Path(dst_dir), f"{source} {src_dir}", rule)


def _prepare_dst(src_dir, dst_dir, overwrite):
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    if not src_dir.is_dir():
        raise UserError(f"source folder {src_dir} does not exist")
    src, dst = src_dir.resolve(), dst_dir.resolve()
    if dst == src or dst in src.parents:  # dst is replaced, so it must not hold the source
        raise UserError(f"the converted dataset cannot be written to {dst_dir}: it holds the source {src_dir}; "
                        "choose another output folder")
    if dst_dir.exists() and any(dst_dir.iterdir()) and not overwrite:
        raise UserError(f"{dst_dir} exists and is not empty; choose another folder or pass overwrite=True")
    return src_dir, dst_dir


def _unique_name(name, used):
    stem, suffix = PurePosixPath(name).stem, PurePosixPath(name).suffix
    candidate, k = name, 1
    while candidate in used:
        candidate, k = f"{stem}_{k}{suffix}", k + 1
    used.add(candidate)
    return candidate


def _image_info(data):
    """``(width, height, extension)`` of encoded image bytes."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size[0], image.size[1], "." + (image.format or "png").lower().replace("jpeg", "jpg")


def _read_list(path):
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ----------------------------------------------------------------------------- LabelMe
def _shape_polygon(shape):
    """Polygon points of one LabelMe shape, or None for shape types without an area."""
    points = np.asarray(shape.get("points") or [], float).reshape(-1, 2)
    kind = shape.get("shape_type") or "polygon"
    if kind == "polygon" and len(points) >= 3:
        return points.reshape(-1).tolist()
    if kind == "rectangle" and len(points) >= 2:
        (x1, y1), (x2, y2) = points.min(0), points.max(0)
        return [x1, y1, x2, y1, x2, y2, x1, y2]
    if kind == "circle" and len(points) == 2:
        (cx, cy), edge = points
        radius = float(np.hypot(*(edge - points[0])))
        angles = np.linspace(0, 2 * math.pi, CIRCLE_POINTS, endpoint=False)
        return np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], 1).reshape(-1).tolist()
    return None


def _labelme_image(json_path, data, src_dir):
    """Bytes and file name of the image a LabelMe JSON describes."""
    image_path = str(data.get("imagePath") or "").replace("\\", "/")
    name = PurePosixPath(image_path).name
    candidates = [json_path.parent / image_path] if image_path else []
    if name:
        candidates += [json_path.parent / name, src_dir / "images" / name, src_dir / name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.read_bytes(), name
    if data.get("imageData"):
        try:
            return base64.b64decode(data["imageData"], validate=True), name
        except ValueError:
            raise ValueError("its imageData is not valid base64") from None
    raise ValueError(f"image {image_path or '(no imagePath)'} not found next to the JSON, in images/ or in the source "
                     "folder, and the JSON has no imageData; put the image there or fix imagePath")


def _labelme_record(json_path, src_dir, skipped):
    data = json.loads(json_path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise ValueError("not a LabelMe file (no 'shapes' list)")
    image_bytes, name = _labelme_image(json_path, data, src_dir)
    width, height, extension = _image_info(image_bytes)
    groups = {}
    for index, shape in enumerate(data["shapes"]):
        label = str(shape.get("label") or "").strip()
        if label in (IGNORE_LABEL, BACKGROUND_LABEL):  # LabelMe: ignored regions, and background is no class
            skipped[label] = skipped.get(label, 0) + 1
            continue
        polygon = _shape_polygon(shape)
        if not label or polygon is None:
            kind = "no label" if not label else shape.get("shape_type") or "polygon"
            skipped[kind] = skipped.get(kind, 0) + 1
            continue
        key = (label, shape["group_id"]) if shape.get("group_id") is not None else (label, f"shape {index}")
        groups.setdefault(key, []).append(polygon)
    instances = []
    for (label, _), polygons in groups.items():
        geometry = _instance(polygons, width, height)
        if geometry is None:
            skipped["empty after clipping"] = skipped.get("empty after clipping", 0) + 1
        else:
            instances.append((label, geometry))
    return {"file_name": name or json_path.stem + extension, "image_bytes": image_bytes, "width": width,
            "height": height, "instances": instances, "split": None}


def convert_labelme(src_dir, dst_dir, label_list=None, train_percent=80, seed=0, overwrite=False):
    """Convert a LabelMe folder to COCO in ``dst_dir``; return a summary (counts, categories, split rule)."""
    src_dir, dst_dir = _prepare_dst(src_dir, dst_dir, overwrite)
    outside = dst_dir.resolve()
    json_paths = sorted(p for p in src_dir.rglob("*.json") if outside not in p.resolve().parents)
    if not json_paths:
        raise UserError(f"cannot convert {src_dir}: no LabelMe .json file found under it")
    lists = {split: src_dir / f"{split}_anno_list.txt" for split in ("train", "val")}
    listed = {}
    if all(path.is_file() for path in lists.values()):
        listed = {(src_dir / line).resolve(): split for split, path in lists.items() for line in _read_list(path)}
    records, problems, skipped, used = [], [], {}, set()
    for json_path in json_paths:
        try:
            record = _labelme_record(json_path, src_dir, skipped)
        except (ValueError, OSError) as exc:  # JSONDecodeError, bad image data, unreadable file
            problems.append(f"{json_path.relative_to(src_dir)}: {exc}")
            continue
        record["file_name"] = _unique_name(record["file_name"], used)
        record["split"] = listed.get(json_path.resolve()) if listed else None
        if listed and record["split"] is None:
            skipped["not in train/val_anno_list.txt"] = skipped.get("not in train/val_anno_list.txt", 0) + 1
            continue
        records.append(record)
    if problems:
        _fail(src_dir, problems)
    rule = "train_anno_list.txt / val_anno_list.txt" if listed else None
    summary = _finish(records, src_dir, dst_dir, label_list, train_percent, seed, "LabelMe", rule)
    return {**summary, "skipped_shapes": skipped}


# ----------------------------------------------------------------------------- VOC
def _palette_indices(path):
    with Image.open(path) as image:
        if image.mode not in ("P", "L"):
            raise ValueError(f"{path.name} is a {image.mode} image, not a palette/index PNG")
        return np.asarray(image)


def _mask_dir(src_dir, kind):
    """``SegmentationObject``/``SegmentationClass``, or LabelMe's ``...PNG`` folder when only that has PNGs."""
    plain = src_dir / kind
    if not any(plain.glob("*.png")) and any((src_dir / f"{kind}PNG").glob("*.png")):
        return src_dir / f"{kind}PNG"
    return plain


def _voc_record(stem, src_dir, names):
    """One image's instances; ``names`` None means the 20 VOC classes for class indices (flagged in the record)."""
    xml_path = src_dir / "Annotations" / f"{stem}.xml"
    root = ET.parse(xml_path).getroot() if xml_path.is_file() else None
    file_name = (root.findtext("filename") if root is not None else None) or f"{stem}.jpg"
    image_path = src_dir / "JPEGImages" / file_name
    if not image_path.is_file():
        matches = sorted((src_dir / "JPEGImages").glob(f"{stem}.*"))
        if not matches:
            raise ValueError(f"JPEGImages/{file_name} does not exist")
        image_path = matches[0]
    image_bytes = image_path.read_bytes()
    width, height, _ = _image_info(image_bytes)
    object_dir = _mask_dir(src_dir, "SegmentationObject")
    objects = _palette_indices(object_dir / f"{stem}.png")
    if objects.shape != (height, width):
        raise ValueError(f"{object_dir.name}/{stem}.png is {objects.shape[1]}x{objects.shape[0]}, the image "
                         f"{width}x{height}")
    class_path = _mask_dir(src_dir, "SegmentationClass") / f"{stem}.png"
    classes = _palette_indices(class_path) if class_path.is_file() else None
    xml_names = [(o.findtext("name") or "").strip() for o in root.findall("object")] if root is not None else []
    instances, default_classes = [], False
    for k in sorted(set(np.unique(objects).tolist()) - {0, 255}):
        mask = objects == k
        if k <= len(xml_names) and xml_names[k - 1]:
            label = xml_names[k - 1]
        elif classes is not None:
            class_names = names if names is not None else VOC_CLASSES
            default_classes |= names is None
            index = int(np.bincount(classes[mask]).argmax())
            if not 1 <= index <= len(class_names):
                list_name = "label list" if names is not None else "20 PASCAL VOC classes (no class_names.txt)"
                raise ValueError(f"object {k} has class index {index}, outside the {list_name}")
            label = class_names[index - 1]
        else:
            raise ValueError(f"object {k} of {object_dir.name}/{stem}.png has no <object> in the XML and no class "
                             "(needs SegmentationClass/)")
        geometry = _instance(mask_polygons(mask), width, height)
        if geometry is not None:
            instances.append((label, geometry))
    return {"file_name": image_path.name, "image_bytes": image_bytes, "width": width, "height": height,
            "instances": instances, "split": None, "default_classes": default_classes}


def convert_voc(src_dir, dst_dir, label_list=None, train_percent=80, seed=0, overwrite=False):
    """Convert a VOC instance-segmentation folder to COCO in ``dst_dir``; return a summary."""
    src_dir, dst_dir = _prepare_dst(src_dir, dst_dir, overwrite)
    object_dir = _mask_dir(src_dir, "SegmentationObject")
    if not object_dir.is_dir():
        raise UserError(f"cannot convert {src_dir}: VOC instance segmentation needs SegmentationObject/ "
                        "(and JPEGImages/; Annotations/ or SegmentationClass/ for the classes)")
    sets = src_dir / "ImageSets" / "Segmentation"
    listed = {}
    if (sets / "train.txt").is_file() and (sets / "val.txt").is_file():
        listed = {stem: split for split in ("train", "val") for stem in _read_list(sets / f"{split}.txt")}
        stems = sorted(listed)
    else:
        stems = sorted(p.stem for p in object_dir.glob("*.png"))
    names = read_label_list(src_dir, label_list)
    records, problems, used = [], [], set()
    for stem in stems:
        try:
            record = _voc_record(stem, src_dir, names)
        except (ValueError, OSError, ET.ParseError) as exc:
            problems.append(f"{stem}: {exc}")
            continue
        record["file_name"] = _unique_name(record["file_name"], used)
        record["split"] = listed.get(stem)
        records.append(record)
    if problems:
        _fail(src_dir, problems)
    rule = "ImageSets/Segmentation/train.txt / val.txt" if listed else None
    default = VOC_CLASSES if any(r["default_classes"] for r in records) else None
    return _finish(records, src_dir, dst_dir, label_list, train_percent, seed, "VOC", rule, default)


CONVERTERS = {"LabelMe": convert_labelme, "VOC": convert_voc}


def convert_dataset(src_dataset_type, src_dir, dst_dir, seed=0, train_percent=80, options=None):
    """Convert with the converter for ``src_dataset_type`` (``LabelMe``, ``VOC``, or ``GeoTIFF``: rasters and
    polygon labels chipped with the ``CheckDataset.convert`` keys in ``options``), replacing ``dst_dir``."""
    if src_dataset_type == "COCO":
        return {"src_dataset_type": "COCO", "dataset_dir": str(src_dir), "note": "already COCO; nothing converted"}
    if src_dataset_type == "GeoTIFF":  # chips are split by area there, never by train_percent
        from .geochips import chip_from_config

        return chip_from_config(src_dir, dst_dir, options or {}, seed)
    if src_dataset_type not in CONVERTERS:
        raise UserError(f"CheckDataset.convert.src_dataset_type={src_dataset_type!r} cannot be converted; use "
                        f"{' or '.join(CONVERTERS)} or GeoTIFF")
    summary = CONVERTERS[src_dataset_type](src_dir, dst_dir, train_percent=train_percent, seed=seed, overwrite=True)
    return {"src_dataset_type": src_dataset_type, "src_dir": str(src_dir), **summary}


# ----------------------------------------------------------------------------- COCO -> LabelMe / VOC (demos, tests)
def _coco_splits(dataset_dir):
    for split in ("train", "val"):
        yield split, load_coco(Path(dataset_dir) / "annotations" / f"instance_{split}.json")


def coco_to_labelme(dataset_dir, dst_dir, write_labels=True, embed_images=False):
    """Write a COCO dataset as a LabelMe folder (``images/``, ``annotations/*.json``, split lists, labels.txt)."""
    dataset_dir, dst_dir = Path(dataset_dir), Path(dst_dir)
    (dst_dir / "images").mkdir(parents=True, exist_ok=True)
    (dst_dir / "annotations").mkdir(exist_ok=True)
    lists = {}
    for split, coco in _coco_splits(dataset_dir):
        for image_id in sorted(coco.imgs):
            info = coco.imgs[image_id]
            data = (dataset_dir / "images" / info["file_name"]).read_bytes()
            if not embed_images:
                (dst_dir / "images" / info["file_name"]).write_bytes(data)
            shapes = []
            for group, ann in enumerate(coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))):
                polygons = ann["segmentation"] if isinstance(ann["segmentation"], list) else \
                    mask_polygons(coco.annToMask(ann))
                shapes += [{"label": coco.cats[ann["category_id"]]["name"],
                            "points": np.asarray(p).reshape(-1, 2).tolist(), "group_id": group,
                            "shape_type": "polygon", "flags": {}} for p in polygons]
            json_name = f"annotations/{PurePosixPath(info['file_name']).stem}.json"
            (dst_dir / json_name).write_text(json.dumps({
                "version": "5.2.1", "flags": {}, "shapes": shapes, "imagePath": f"../images/{info['file_name']}",
                "imageData": base64.b64encode(data).decode("ascii") if embed_images else None,
                "imageHeight": info["height"], "imageWidth": info["width"]}, indent=1, ensure_ascii=False),
                encoding="utf-8")
            lists.setdefault(split, []).append(json_name)
        names = [c["name"] for c in coco.loadCats(sorted(coco.cats))]
    for split, lines in lists.items():
        (dst_dir / f"{split}_anno_list.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if write_labels:
        (dst_dir / "labels.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return dst_dir


def voc_palette():
    """The PASCAL VOC colour map (index -> RGB), flattened for ``PIL.Image.putpalette``."""
    palette = []
    for index in range(256):
        r = g = b = 0
        for bit in range(8):
            r |= ((index >> (3 * bit)) & 1) << (7 - bit)
            g |= ((index >> (3 * bit + 1)) & 1) << (7 - bit)
            b |= ((index >> (3 * bit + 2)) & 1) << (7 - bit)
        palette += [r, g, b]
    return palette


def _save_indexed(array, path):
    image = Image.fromarray(array.astype(np.uint8), mode="P")
    image.putpalette(voc_palette())
    image.save(path)


def coco_to_voc(dataset_dir, dst_dir, write_labels=False):
    """Write a COCO dataset as a VOC instance-segmentation folder (later instances cover earlier ones)."""
    dataset_dir, dst_dir = Path(dataset_dir), Path(dst_dir)
    for sub in ("Annotations", "JPEGImages", "SegmentationObject", "SegmentationClass", "ImageSets/Segmentation"):
        (dst_dir / sub).mkdir(parents=True, exist_ok=True)
    for split, coco in _coco_splits(dataset_dir):
        cat_index = {cid: k + 1 for k, cid in enumerate(sorted(coco.cats))}
        stems = []
        for image_id in sorted(coco.imgs):
            info = coco.imgs[image_id]
            stem = PurePosixPath(info["file_name"]).stem
            shutil.copyfile(dataset_dir / "images" / info["file_name"], dst_dir / "JPEGImages" / info["file_name"])
            objects = np.zeros((info["height"], info["width"]), np.uint8)
            classes = np.zeros_like(objects)
            root = ET.Element("annotation")
            ET.SubElement(root, "filename").text = info["file_name"]
            size = ET.SubElement(root, "size")
            for key, value in (("width", info["width"]), ("height", info["height"]), ("depth", 3)):
                ET.SubElement(size, key).text = str(value)
            for k, ann in enumerate(coco.loadAnns(coco.getAnnIds(imgIds=[image_id])), start=1):
                mask = coco.annToMask(ann).astype(bool)
                objects[mask], classes[mask] = k, cat_index[ann["category_id"]]
                obj = ET.SubElement(root, "object")
                ET.SubElement(obj, "name").text = coco.cats[ann["category_id"]]["name"]
                box = ET.SubElement(obj, "bndbox")
                x, y, w, h = ann["bbox"]
                for key, value in (("xmin", x), ("ymin", y), ("xmax", x + w), ("ymax", y + h)):
                    ET.SubElement(box, key).text = str(int(round(value)))
            ET.ElementTree(root).write(dst_dir / "Annotations" / f"{stem}.xml", encoding="utf-8")
            _save_indexed(objects, dst_dir / "SegmentationObject" / f"{stem}.png")
            _save_indexed(classes, dst_dir / "SegmentationClass" / f"{stem}.png")
            stems.append(stem)
        (dst_dir / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(stems) + "\n")
        names = [coco.cats[cid]["name"] for cid in sorted(coco.cats)]
    if write_labels:
        (dst_dir / "labels.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return dst_dir
