"""Batch prediction over a folder of scenes: resumable, every output written atomically.

Each scene's outputs are written to a temporary name and moved into place (``os.replace``), so an output that
exists is complete. A scene is finished when all of its outputs exist; a rerun after a crash or a kill skips
finished scenes, removes the temporaries the interrupted run left, and redoes the scene it was in, so it ends
with exactly the outputs an uninterrupted run writes.

Georeferenced rasters get the GeoTIFF outputs of :mod:`.geo` (GeoJSON, GeoPackage, class and instance COGs);
other images get PaddleX's ``<stem>_res.png`` and ``<stem>_res.json`` (sliced when ``slicing`` has a
``slice_size``). :func:`predict_input` is the one place that decides how any input is predicted and saved.
"""
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from tqdm.auto import tqdm

from ..errors import UserError
from .options import SliceOptions
from .vectors import TMP_MARK, temp_path

AUTOMATIC = SliceOptions(slice_size=None)  # GeoTIFFs in automatic tiles, other images whole

GEO_SUFFIXES = (".tif", ".tiff")
_TEMPORARY = re.compile(re.escape(TMP_MARK) + r"\d+")


def scene_files(folder):
    """The images and rasters in ``folder`` (sorted by name)."""
    from ..predict.inputs import IMAGE_SUFFIXES

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    stems = [p.stem for p in files]
    twins = sorted({s for s in stems if stems.count(s) > 1})
    if twins:
        raise UserError(f"{folder}: several files share the name(s) {', '.join(twins)} (their outputs would "
                        "overwrite each other); rename them or predict them one by one")
    return files


def geo_outputs(out, stem):
    """The outputs of one georeferenced scene, by role."""
    return {"geojson_path": out / f"{stem}.geojson", "vector_path": out / f"{stem}.gpkg",
            "mask_path": out / f"{stem}_mask.tif", "instance_path": out / f"{stem}_instances.tif"}


def image_outputs(out, stem):
    return {"image": out / f"{stem}_res.png", "json": out / f"{stem}_res.json"}


def remove_temporaries(out):
    """Delete what an interrupted run left half-written in ``out`` (names carrying ``.tmp-<pid>``)."""
    removed = []
    for path in Path(out).iterdir():
        if path.is_file() and _TEMPORARY.search(path.name):
            path.unlink()
            removed.append(path.name)
    return removed


def _save_result(result, paths):
    for kind, target in paths.items():
        tmp = temp_path(target)
        if kind == "image":
            result.save_to_img(tmp)
        else:
            result.save_to_json(tmp)
        os.replace(tmp, target)


def predict_scene(pipeline, path, out, *, slicing=AUTOMATIC, merging=None, threshold=None):
    """Predict one scene and write its outputs (atomically); returns a summary dict. ``slicing`` /
    ``merging``: :class:`~.options.SliceOptions` / :class:`~.options.MergeOptions`."""
    from .geo import is_georeferenced_file

    path, out = Path(path), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in GEO_SUFFIXES and is_georeferenced_file(path):
        outputs = geo_outputs(out, path.stem)
        summary = pipeline.predict_geotiff(str(path), outputs["geojson_path"], threshold=threshold, slicing=slicing,
                                           merging=merging, mask_path=outputs["mask_path"], progress=False,
                                           vector_path=outputs["vector_path"], instance_path=outputs["instance_path"])
        return {"input": str(path), **summary}
    result = next(iter(pipeline.predict(str(path), threshold=threshold, slicing=slicing, merging=merging,
                                        progress=False)))
    outputs = image_outputs(out, path.stem)
    _save_result(result, outputs)
    return {"input": str(path), "instances": len(result), **{k: str(v) for k, v in outputs.items()}}


def expected_outputs(path, out):
    path = Path(path)
    if path.suffix.lower() in GEO_SUFFIXES:
        from .geo import is_georeferenced_file

        if is_georeferenced_file(path):
            return list(geo_outputs(Path(out), path.stem).values())
    return list(image_outputs(Path(out), path.stem).values())


def predict_folder(pipeline, folder, save_path, *, slicing=AUTOMATIC, merging=None, threshold=None, progress=True,
                   overwrite=False):
    """Predict every scene of ``folder`` into ``save_path`` with a progress bar, skipping finished scenes
    (``overwrite=True`` redoes them). ``slicing`` / ``merging``: :class:`~.options.SliceOptions` /
    :class:`~.options.MergeOptions` (default: GeoTIFFs in automatic tiles, other images whole). Returns a summary
    dict."""
    files = scene_files(folder)
    out = Path(save_path)
    out.mkdir(parents=True, exist_ok=True)
    remove_temporaries(out)
    done, skipped = [], []
    bar = tqdm(files, desc="scenes", unit="scene", disable=not progress)
    for path in bar:
        bar.set_postfix_str(path.name)
        if not overwrite and all(p.is_file() for p in expected_outputs(path, out)):
            skipped.append(str(path))
            continue
        done.append(predict_scene(pipeline, path, out, slicing=slicing, merging=merging, threshold=threshold))
    bar.close()
    return {"scenes": len(files), "predicted": done, "skipped": skipped, "save_path": str(out)}


@dataclass
class SavedPrediction:
    """What :func:`predict_input` predicted and wrote: ``kind`` is ``folder`` (``summary`` of the batch),
    ``geotiff`` (``summary`` of :func:`.geo.predict_geotiff`) or ``images`` (``results``, each saved as
    ``<stem>_res.png`` and ``<stem>_res.json``)."""

    kind: str
    save_path: Path
    summary: Optional[Dict[str, Any]] = None
    results: List[Any] = field(default_factory=list)


def predict_input(pipeline, input, save_path, *, threshold=None, slicing=None, merging=None, to_epsg4326=False,
                  simplify_tolerance=0.0, overwrite=False, progress=True):
    """Predict any input (a folder, a GeoTIFF, an image, an array, a URL) with ``pipeline`` and write its outputs
    into ``save_path``: the decision :meth:`~tutorial_lib.pipeline.InstanceSegmentationPipeline.predict_and_save`
    and the CLI rely on. A folder runs :func:`predict_folder`; a georeferenced TIFF, or any TIFF when
    ``slicing.slice_size`` is set, runs GeoTIFF prediction (georeferencing kept); anything else is predicted as
    images, sliced when ``slicing.slice_size`` is set. ``slicing`` None: :data:`AUTOMATIC`."""
    from .geo import is_georeferenced_file

    slicing = AUTOMATIC if slicing is None else slicing
    out = Path(save_path)
    name = str(input) if isinstance(input, (str, os.PathLike)) else ""  # a path or URL; "" for arrays and lists
    if name and Path(name).is_dir():
        summary = predict_folder(pipeline, input, out, slicing=slicing, merging=merging, threshold=threshold,
                                 progress=progress, overwrite=overwrite)
        return SavedPrediction("folder", out, summary=summary)
    if name.lower().endswith(GEO_SUFFIXES) and (slicing.slice_size or is_georeferenced_file(input)):
        summary = pipeline.predict_geotiff(input, threshold=threshold, slicing=slicing, merging=merging,
                                           to_epsg4326=to_epsg4326, simplify_tolerance=simplify_tolerance,
                                           progress=progress, **geo_outputs(out, Path(name).stem))
        return SavedPrediction("geotiff", out, summary=summary)
    results = []
    for result in pipeline.predict(input, threshold=threshold, slicing=slicing, merging=merging, progress=progress):
        result.save_to_img(out)
        result.save_to_json(out)
        results.append(result)
    return SavedPrediction("images", out, results=results)
