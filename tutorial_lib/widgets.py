"""Interactive browsers for the notebooks (ipywidgets).

Each browser draws into an ``ipywidgets.Image`` from plain numpy arrays, so it works the same in JupyterLab, in a
saved notebook reopened later (the image is part of the saved widget state) and in a test without a front end::

    browser = DatasetBrowser(dataset_dir, check_result=result)   # notebook 04
    browser                                # JupyterLab: controls + picture; papermill / HTML: a static picture
    browser.index.value = 3                # what a slider move does
    browser.image()                        # the RGB array now drawn (tests compare it)

- :class:`DatasetBrowser` (notebook 04): image picker, class filter, masks / boxes toggles, the check's problems;
- :class:`RunComparer` (notebook 05): pick training runs, overlay a metric from each run's ``metrics.csv``;
- :class:`PredictionBrowser` (notebook 06): score threshold and class filter over stored predictions, no re-run;
- :class:`SceneViewer` (notebook 07): a large scene with its tile grid, merged instances and GeoJSON polygons.

Each browser shows its controls and the picture in a front end that runs widgets, and a static PNG of the same
picture everywhere else (the display bundle carries both; papermill and nbconvert keep the PNG).

The lessons' helpers (tables, folded reports, run folders, sweeps) are in :mod:`tutorial_lib.lessons` and the
figures in :mod:`tutorial_lib.figures`; their old names here are re-exported for code that imported them from
this module.
"""
import html
import re
from pathlib import Path

import numpy as np

from .figures import plot_accuracy_vs_size, plot_merge_modes  # noqa: F401  (moved; old import path)
from .lessons import (GPU_MODEL, busiest_image, capture_output, default_model, fold, run_dir,  # noqa: F401
                      table, trained_model_dir)
from .structures import Instances
from .viz import class_color, coco_instances, draw_instances

__all__ = ["DatasetBrowser", "PredictionBrowser", "RunComparer", "SceneViewer"]


# ----------------------------------------------------------------------------- drawing helpers
def _encode(image, fmt):
    """RGB uint8 array -> PNG / JPEG bytes."""
    import cv2

    ext = ".jpg" if fmt == "jpeg" else ".png"
    params = [cv2.IMWRITE_JPEG_QUALITY, 85] if fmt == "jpeg" else []
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(image[..., ::-1]), params)
    if not ok:
        raise ValueError("could not encode the picture")
    return buf.tobytes()


def _figure_to_array(fig):
    """Render a matplotlib figure (Agg) to an RGB uint8 array and close it."""
    import matplotlib.pyplot as plt

    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    plt.close(fig)
    return np.ascontiguousarray(rgba[..., :3])


def _new_figure(width, height):
    """A figure that is never shown by pyplot's inline backend (drawn into the widget instead)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _names(labels):
    """Class names by id as a dict (``labels``: a list by id, or a dict)."""
    if isinstance(labels, dict):
        return {int(k): str(v) for k, v in labels.items()}
    return {i: str(name) for i, name in enumerate(labels or [])}


def _scale_factor(image, display_size):
    """The integer factor that brings ``image``'s longer side closest to ``display_size`` pixels without going
    below 1 (0 or None: 1): small scenes are enlarged before drawing, so that labels stay legible."""
    if not display_size:
        return 1
    return max(1, int(round(display_size / max(image.shape[:2]))))


def _upscale(image, instances, factor):
    """``image`` and ``instances`` enlarged by the integer ``factor`` (nearest neighbour: masks stay exact)."""
    if factor == 1:
        return image, instances
    big = np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
    size = (instances.image_size[0] * factor, instances.image_size[1] * factor)
    grow = lambda m: np.repeat(np.repeat(m, factor, axis=-2), factor, axis=-1)  # noqa: E731
    if instances.cropped:
        scaled = Instances(size, instances.boxes * factor, instances.scores, instances.class_ids,
                           [grow(m) for m in instances.masks], instances.mask_offsets * factor)
    else:
        scaled = Instances(size, instances.boxes * factor, instances.scores, instances.class_ids,
                           grow(instances.masks))
    return big, scaled


class _Browser:
    """Controls + one picture. Subclasses build ``self.controls`` and implement :meth:`image`."""

    image_format = "jpeg"

    def _build(self, controls, caption=""):
        import ipywidgets as widgets

        self.view = widgets.Image(format=self.image_format, layout=widgets.Layout(max_width="100%"))
        self.caption = widgets.HTML(caption)
        self.widget = widgets.VBox([widgets.HBox(controls, layout=widgets.Layout(flex_flow="row wrap")),
                                    self.caption, self.view])
        for control in controls:
            control.observe(lambda change: self.refresh(), names="value")
        self.refresh()

    def refresh(self):
        """Redraw the picture from the controls' values."""
        picture = self.image()
        self.view.value = _encode(picture, self.image_format)
        self.view.width = str(picture.shape[1])  # shown at its own size (never stretched), at most the cell's width
        self.caption.value = html.escape(self.describe())
        return picture

    def describe(self):
        return ""

    def _repr_mimebundle_(self, **kwargs):
        data = self.widget._repr_mimebundle_(**kwargs) or {}
        data["image/png"] = _encode(self.image(), "png")
        data["text/plain"] = self.describe() or type(self).__name__
        return data


# ----------------------------------------------------------------------------- notebook 04
_IMAGE_ID = re.compile(r"image id (\d+)")


def _ground_truth(coco, image_id):
    """:func:`tutorial_lib.viz.coco_instances`, except that an annotation whose mask cannot be decoded (the faults
    a check finds) gets an empty mask instead of failing the whole image."""
    try:
        return coco_instances(coco, image_id)
    except (TypeError, ValueError, IndexError):
        info = coco.imgs[image_id]
        size = (int(info["height"]), int(info["width"]))
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        masks = np.zeros((len(anns),) + size, bool)
        for i, ann in enumerate(anns):
            try:
                masks[i] = coco.annToMask(ann).astype(bool)
            except (TypeError, ValueError, IndexError):
                pass
        boxes = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in anns]
        return Instances(size, boxes, np.ones(len(anns)), [a["category_id"] for a in anns], masks)


class DatasetBrowser(_Browser):
    """Browse a COCO dataset: image picker (slider), class filter, masks / boxes toggles and, with a
    ``check_result`` (the dict ``check_dataset`` returns), the list of its problems: choosing one shows its image.

    Taught in notebooks/04_data.ipynb.
    """

    def __init__(self, dataset_dir, split="train", check_result=None, max_problems=200, display_size=512):
        import ipywidgets as widgets

        from .data.coco import load_coco

        self.dataset_dir = Path(dataset_dir)
        self.display_size = display_size
        self.coco = load_coco(self.dataset_dir / "annotations" / f"instance_{split}.json")
        self.image_ids = sorted(self.coco.imgs)
        self.names = {cid: cat["name"] for cid, cat in self.coco.cats.items()}
        self.problems = self._problems(check_result)[:max_problems]
        self.index = widgets.IntSlider(0, 0, max(0, len(self.image_ids) - 1), description="image",
                                       continuous_update=False)
        self.classes = widgets.SelectMultiple(options=[("all classes", -1)] + [(n, c) for c, n in self.names.items()],
                                              value=(-1,), description="classes", rows=4)
        self.show_masks = widgets.Checkbox(True, description="masks", indent=False)
        self.show_boxes = widgets.Checkbox(True, description="boxes", indent=False)
        self.problem = widgets.Dropdown(
            options=[("(no problem selected)", -1)] + [(self._problem_label(p), i)
                                                       for i, p in enumerate(self.problems)],
            value=-1, description="problem", layout=widgets.Layout(width="95%"))
        self.problem.observe(self._jump_to_problem, names="value")
        controls = [self.index, self.classes, self.show_masks, self.show_boxes]
        self._build(controls)
        self.widget.children = (self.problem,) + self.widget.children

    def _problems(self, check_result):
        if not check_result:
            return []
        by_name = {img["file_name"]: img_id for img_id, img in self.coco.imgs.items()}
        found = []
        for problem in check_result.get("errors", []) + check_result.get("warnings", []):
            image_id = problem.get("image_id")
            if image_id is None:
                match = _IMAGE_ID.search(problem.get("message", ""))
                image_id = int(match.group(1)) if match else None
            if image_id is None:
                name = str(problem.get("file", "")).split("images/", 1)[-1]
                image_id = by_name.get(name)
            found.append({**problem, "image_id": image_id})
        return found

    @staticmethod
    def _problem_label(problem):
        text = f"{problem['level']} · {problem['kind']} · {problem['message']}"
        return text if len(text) <= 140 else text[:137] + "..."

    def _jump_to_problem(self, change):
        if change["new"] is None or change["new"] < 0:
            return
        image_id = self.problems[change["new"]]["image_id"]
        if image_id in self.image_ids:
            self.index.value = self.image_ids.index(image_id)  # triggers refresh
        else:
            self.refresh()

    @property
    def image_id(self):
        return self.image_ids[self.index.value]

    def shown(self):
        """The ground-truth :class:`Instances` drawn now (after the class filter; class ids = category ids)."""
        inst = _ground_truth(self.coco, self.image_id)
        if -1 in self.classes.value or not self.classes.value:
            return inst
        return inst[np.isin(inst.class_ids, list(self.classes.value))]

    def image(self):
        from .predict.inputs import read_image

        info = self.coco.imgs[self.image_id]
        path = self.dataset_dir / "images" / info["file_name"]
        if path.is_file():
            picture = read_image(str(path))
        else:  # a missing image file is one of the problems the check finds: show a grey placeholder
            picture = np.full((int(info["height"]), int(info["width"]), 3), 128, np.uint8)
        picture, shown = _upscale(picture, self.shown(), _scale_factor(picture, self.display_size))
        return draw_instances(picture, shown, self.names, show_scores=False,
                              show_masks=self.show_masks.value, show_boxes=self.show_boxes.value)

    def describe(self):
        info = self.coco.imgs[self.image_id]
        issues = [p for p in self.problems if p["image_id"] == self.image_id]
        text = f"{info['file_name']} (image id {self.image_id}): {len(self.shown())} instances shown"
        if issues:
            text += f"; {len(issues)} problem(s): " + "; ".join(f"{p['kind']}" for p in issues)
        if not (self.dataset_dir / "images" / info["file_name"]).is_file():
            text += " -- image file missing"
        return text


# ----------------------------------------------------------------------------- notebook 05
class RunComparer(_Browser):
    """Overlay one metric of several training runs, read from each run's ``metrics.csv``.

    ``runs``: {name: run folder} (each holding ``metrics.csv``). Taught in notebooks/05_train_and_evaluate.ipynb.
    """

    image_format = "png"

    def __init__(self, runs, metric="mask_AP", selected=None):
        import ipywidgets as widgets
        import pandas as pd

        self.histories = {}
        for name, folder in runs.items():
            csv = Path(folder) / "metrics.csv"
            if csv.is_file():
                self.histories[str(name)] = pd.read_csv(csv)
        if not self.histories:
            from .errors import UserError

            raise UserError(f"none of the runs has a metrics.csv: {', '.join(str(Path(f)) for f in runs.values())}")
        columns = sorted({c for h in self.histories.values() for c in h.columns if c not in ("epoch",)})
        names = list(self.histories)
        self.runs = widgets.SelectMultiple(options=names, value=tuple(selected or names), description="runs",
                                           rows=min(8, len(names)))
        self.metric = widgets.Dropdown(options=columns, value=metric if metric in columns else columns[0],
                                       description="metric")
        self._build([self.runs, self.metric])

    def curves(self):
        """{run name: (epochs, values)} of the runs and metric chosen now."""
        out = {}
        for name in self.runs.value:
            history = self.histories[name]
            if self.metric.value in history:
                out[name] = (history["epoch"].to_numpy(), history[self.metric.value].to_numpy(dtype=float))
        return out

    def image(self):
        fig = _new_figure(7.5, 3.6)
        ax = fig.add_subplot()
        for name, (epochs, values) in self.curves().items():
            ax.plot(epochs, values, marker="o", label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(self.metric.value)
        ax.grid(alpha=0.3)
        if self.curves():
            ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        fig.tight_layout()
        return _figure_to_array(fig)

    def describe(self):
        return f"{self.metric.value} of {len(self.runs.value)} run(s)"


# ----------------------------------------------------------------------------- notebook 06
class PredictionBrowser(_Browser):
    """Stored predictions (``InstanceSegResult``s, or (RGB image, :class:`Instances`) pairs with ``labels``)
    redrawn under a score threshold and a class filter, without running the model again.

    Predict once with a low threshold, then explore. Taught in notebooks/06_predict.ipynb.
    """

    def __init__(self, results, labels=None, threshold=0.5, titles=None, display_size=512):
        import ipywidgets as widgets

        self.display_size = display_size
        self.items = []
        for i, item in enumerate(results):
            if isinstance(item, tuple):
                image, instances = item
                title = titles[i] if titles else f"image {i}"
            else:
                image = item.image if item.image is not None else _read(item.input_path)
                instances, labels = item.instances, labels or item.labels
                title = Path(item.input_path).name if item.input_path else f"array {i}"
            self.items.append((np.asarray(image), instances, title))
        if not self.items:
            raise ValueError("PredictionBrowser needs at least one prediction")
        self.names = _names(labels)
        present = sorted({int(c) for _, inst, _ in self.items for c in inst.class_ids})
        self.picker = widgets.Dropdown(options=[(t, i) for i, (_, _, t) in enumerate(self.items)], value=0,
                                       description="image")
        self.threshold = widgets.FloatSlider(float(threshold), min=0.0, max=1.0, step=0.01, description="score >=",
                                             continuous_update=False, readout_format=".2f")
        self.classes = widgets.SelectMultiple(options=[("all classes", -1)] + [(self.names.get(c, str(c)), c)
                                                                             for c in present],
                                              value=(-1,), description="classes", rows=4)
        self.show_masks = widgets.Checkbox(True, description="masks", indent=False)
        self.show_boxes = widgets.Checkbox(True, description="boxes", indent=False)
        controls = ([self.picker] if len(self.items) > 1 else []) + [self.threshold, self.classes,
                                                                       self.show_masks, self.show_boxes]
        self._build(controls)

    def shown(self):
        """The :class:`Instances` drawn now: the chosen image's, at least ``threshold``, of the chosen classes."""
        _, instances, _ = self.items[self.picker.value]
        keep = instances.scores >= self.threshold.value
        if self.classes.value and -1 not in self.classes.value:
            keep &= np.isin(instances.class_ids, list(self.classes.value))
        return instances[keep]

    def image(self):
        picture, _, _ = self.items[self.picker.value]
        picture, shown = _upscale(picture, self.shown(), _scale_factor(picture, self.display_size))
        return draw_instances(picture, shown, self.names, show_masks=self.show_masks.value,
                              show_boxes=self.show_boxes.value)

    def describe(self):
        _, instances, title = self.items[self.picker.value]
        return f"{title}: {len(self.shown())} of {len(instances)} stored instances shown"


def _read(path):
    from .predict.inputs import read_image

    return read_image(str(path))


# ----------------------------------------------------------------------------- notebook 07
class SceneViewer(_Browser):
    """A large scene with the tiles sliced inference used, the merged instances and GeoJSON polygons.

    ``instances``: :class:`Instances` on the whole scene; ``tiles``: (x0, y0, x1, y1) windows; ``geojson``: a
    FeatureCollection drawn through the raster's ``transform`` (rasterio's pixel -> map affine; None: the
    coordinates are pixels) and ``crs`` (see :meth:`_pixel_polygons`). Taught in notebooks/07_integrate.ipynb.
    """

    def __init__(self, scene, instances, labels=None, tiles=(), geojson=None, transform=None, crs=None,
                 display_size=768):
        import ipywidgets as widgets

        self.display_size = display_size
        self.scene = np.asarray(scene)
        self.instances = instances
        self.names = _names(labels)
        self.tiles = [tuple(int(v) for v in t) for t in tiles]
        self.polygons = self._pixel_polygons(geojson, transform, crs)
        self.show_tiles = widgets.Checkbox(bool(self.tiles), description="tile grid", indent=False)
        self.show_instances = widgets.Checkbox(True, description="merged instances", indent=False)
        self.show_polygons = widgets.Checkbox(bool(self.polygons), description="GeoJSON polygons", indent=False)
        self.show_labels = widgets.Checkbox(False, description="labels", indent=False)
        self.threshold = widgets.FloatSlider(0.0, min=0.0, max=1.0, step=0.01, description="score >=",
                                             continuous_update=False, readout_format=".2f")
        self._build([self.threshold, self.show_tiles, self.show_instances, self.show_polygons, self.show_labels])

    @staticmethod
    def _pixel_polygons(geojson, transform, crs):
        """[(class id, (K, 2) float pixel ring)] of every polygon exterior in ``geojson``.

        Coordinates are in the GeoJSON's own CRS: its legacy ``crs`` member where present, else longitude /
        latitude (RFC 7946) when the raster has a ``crs``; they are reprojected to ``crs`` and mapped to pixels
        through the inverse of ``transform``. Without ``transform`` they are pixels already."""
        if not geojson:
            return []
        rings = []
        for feature in geojson.get("features", []):
            geom = feature.get("geometry") or {}
            props = feature.get("properties") or {}
            class_id = int(props.get("cls_id", props.get("category_id", 0)) or 0)
            if geom.get("type") == "Polygon":
                rings += [(class_id, geom["coordinates"][0])]
            elif geom.get("type") == "MultiPolygon":
                rings += [(class_id, poly[0]) for poly in geom["coordinates"]]
        source = (geojson.get("crs") or {}).get("properties", {}).get("name")
        source = source or ("EPSG:4326" if crs is not None else None)
        out = []
        for class_id, ring in rings:
            pts = np.asarray(ring, float)[:, :2]
            if crs is not None and source is not None and str(source) != str(crs):
                from rasterio.warp import transform as reproject

                xs, ys = reproject(source, crs, pts[:, 0].tolist(), pts[:, 1].tolist())
                pts = np.stack([xs, ys], 1)
            if transform is not None:
                inv = ~transform  # an affine.Affine (rasterio): its first six coefficients map x, y to col, row
                pts = np.stack([inv.a * pts[:, 0] + inv.b * pts[:, 1] + inv.c,
                                inv.d * pts[:, 0] + inv.e * pts[:, 1] + inv.f], 1)
            out.append((class_id, pts))
        return out

    def image(self):
        import cv2

        shown = self.instances.filter(self.threshold.value) if self.show_instances.value \
            else Instances.empty(self.instances.image_size)
        f = _scale_factor(self.scene, self.display_size)
        scene, shown = _upscale(self.scene, shown, f)
        picture = draw_instances(scene, shown, self.names, show_scores=False, show_labels=self.show_labels.value)
        thickness = max(1, round(max(picture.shape[:2]) / 500))
        if self.show_polygons.value:
            for class_id, pts in self.polygons:
                ring = [np.round(pts * f).astype(np.int32)]
                cv2.polylines(picture, ring, True, (255, 255, 255), thickness + 1, cv2.LINE_AA)
                cv2.polylines(picture, ring, True, class_color(class_id), thickness, cv2.LINE_AA)
        if self.show_tiles.value:
            for x0, y0, x1, y1 in self.tiles:
                cv2.rectangle(picture, (x0 * f, y0 * f), (x1 * f - 1, y1 * f - 1), (255, 255, 0), thickness,
                              cv2.LINE_4)
        return picture

    def describe(self):
        parts = []
        if self.show_tiles.value:
            parts.append(f"{len(self.tiles)} tiles")
        if self.show_instances.value:
            parts.append(f"{len(self.instances.filter(self.threshold.value))} merged instances")
        if self.show_polygons.value:
            parts.append(f"{len(self.polygons)} GeoJSON polygons")
        h, w = self.scene.shape[:2]
        return f"{w} x {h} scene: " + (", ".join(parts) or "nothing overlaid")
