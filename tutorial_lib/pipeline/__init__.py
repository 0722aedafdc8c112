"""Pipelines (steps 2 and 7): ``create_pipeline(...).predict(...)`` as in PaddleX.

    import tutorial_lib as tl
    pipeline = tl.create_pipeline("instance_segmentation", device="cpu")   # or "my_path/instance_segmentation.yaml"
    for result in pipeline.predict("data/remotesensing_demo.png"):
        result.print(); result.save_to_img("output/"); result.save_to_json("output/")

A pipeline wraps one exported model (the ``InstanceSegmentation`` sub-module of its YAML) with input handling
(paths, folders, arrays, lists, ``file://`` and http(s) URLs), sliced inference for large scenes and GeoTIFF
output. This layer only reads exported models: :func:`build_pipeline` takes an exported folder that
:func:`tutorial_lib.create_pipeline` (the one public entry, in the app layer) resolved through a model provider
(:mod:`tutorial_lib.providers`: a ``model_dir``, official weights or the shipped quick-start model).

Sliced inference takes two option objects, :class:`SliceOptions` and :class:`MergeOptions` (:mod:`.options`);
:meth:`InstanceSegmentationPipeline.predict_and_save` decides how an input is predicted (a folder: the resumable
batch; a GeoTIFF: georeferenced vectors and rasters; an image: sliced or whole) and writes the outputs.
"""
from ..errors import UserError
from .config import SUBMODULE, get_pipeline_config, load_pipeline_config
from .options import MergeOptions, SliceOptions, with_keywords
from .registry import list_pipelines

__all__ = ["InstanceSegmentationPipeline", "MergeOptions", "SliceOptions", "build_pipeline", "get_pipeline_config",
           "list_pipelines", "load_pipeline_config"]


class InstanceSegmentationPipeline:
    """The ``instance_segmentation`` pipeline over a :class:`tutorial_lib.predict.Predictor`."""

    def __init__(self, config, predictor, model_source="model_dir"):
        self.config = config
        self.predictor = predictor
        self.model_source = model_source  # model_dir, official weights or quick-start model

    @property
    def model_name(self):
        """The model that runs (from its ``inference.yml``)."""
        return self.predictor.model_name

    @property
    def labels(self):
        return self.predictor.labels

    def predict(self, input, threshold=None, batch_size=None, *, slicing=None, merging=None, progress=True):
        """Yield one result per input image (``print()``, ``save_to_img()``, ``save_to_json()``, ``.json``).

        With ``slicing`` (:class:`SliceOptions` with a ``slice_size``) every image is predicted tile by tile and
        merged by ``merging`` (:class:`MergeOptions`), as :meth:`predict_sliced`; ``batch_size`` then counts tiles
        where ``slicing.batch_size`` is None.
        """
        if slicing is None or slicing.slice_size is None:
            yield from self.predictor.predict(input, threshold=threshold, batch_size=batch_size)
            return
        if batch_size is not None:
            slicing = slicing.with_batch_size(int(batch_size))
        if isinstance(input, str) or hasattr(input, "__fspath__"):
            from pathlib import Path

            if not Path(str(input)).is_dir() and not str(input).startswith(("http://", "https://", "file://")):
                yield self._sliced(str(input), None, threshold, slicing, merging, progress)
                return
        from ..predict.inputs import iter_sources

        for path, load in iter_sources(input):
            yield self._sliced(path, load(), threshold, slicing, merging, progress)

    __call__ = predict

    def _tile_predictor(self, threshold, batch_size=1):
        """``tile -> result`` (``batch_size`` 1) or ``[tiles] -> [results]`` for sliced inference: the same model
        and threshold on every tile; the predictor splits a batch to what its model accepts."""
        if batch_size == 1:
            return lambda tile: next(self.predictor.predict(tile, threshold=threshold))
        return lambda tiles: list(self.predictor.predict(list(tiles), threshold=threshold, batch_size=len(tiles)))

    def _sliced(self, path, image, threshold, slicing, merging, progress):
        """One image (``image``, or read from ``path`` when None) predicted tile by tile and merged."""
        from ..predict import InstanceSegResult
        from ..predict.inputs import read_image
        from .sliced import sliced_predict

        if image is None:
            image = read_image(path)
        slicing = slicing.with_batch_size(self.predictor.batch_size)
        instances = sliced_predict(image, self._tile_predictor(threshold, slicing.batch_size), slicing, merging,
                                   progress)
        return InstanceSegResult(path, instances, self.labels, image=image)

    def predict_sliced(self, image, *, threshold=None, slicing=None, merging=None, progress=True, **options):
        """Sliced inference over one large image (path or RGB array); returns one merged
        :class:`~tutorial_lib.predict.InstanceSegResult` (cropped masks).

        ``slicing`` / ``merging``: :class:`SliceOptions` / :class:`MergeOptions` (defaults when None); single options
        may also be given by name (``slice_size=256, overlap_ratio=0.25, merge_mode="NMS"``, ...), replacing theirs.
        """
        slicing, merging = with_keywords(slicing, merging, options)
        if slicing.slice_size is None:
            raise UserError("predict_sliced needs a slice_size in pixels, got None; give slice_size=512 (or use "
                            "predict() to predict the image whole)")
        if hasattr(image, "shape"):
            return self._sliced(None, image, threshold, slicing, merging, progress)
        return self._sliced(str(image), None, threshold, slicing, merging, progress)

    def predict_geotiff(self, src, geojson_path, *, threshold=None, slicing=None, merging=None, to_epsg4326=False,
                        mask_path=None, vector_path=None, instance_path=None, simplify_tolerance=0.0, progress=True,
                        **options):
        """Sliced inference over a GeoTIFF read by windows, written as it streams: GeoJSON (RFC 7946 lon/lat),
        optionally GeoPackage/FlatGeobuf in the raster's CRS and class/instance COGs (see :mod:`.geo`).
        ``slicing``, ``merging`` and single options by name as in :meth:`predict_sliced`."""
        from .geo import predict_geotiff

        slicing, merging = with_keywords(slicing, merging, options)
        slicing = slicing.with_batch_size(self.predictor.batch_size)
        return predict_geotiff(self._tile_predictor(threshold, slicing.batch_size), src, geojson_path,
                               slicing=slicing, merging=merging, to_epsg4326=to_epsg4326, mask_path=mask_path,
                               vector_path=vector_path, instance_path=instance_path,
                               simplify_tolerance=simplify_tolerance, labels=self.labels, progress=progress,
                               raster=getattr(self.predictor, "raster_settings", None))

    def predict_and_save(self, input, save_path, *, threshold=None, slicing=None, merging=None, to_epsg4326=False,
                         simplify_tolerance=0.0, overwrite=False, progress=True):
        """Predict ``input`` and write its outputs into the folder ``save_path``; the pipeline decides how: a
        folder -> the resumable batch (:func:`.batch.predict_folder`); a GeoTIFF (georeferenced, or any TIFF with a
        ``slice_size``) -> GeoJSON, GeoPackage and class/instance COGs; an image -> ``<stem>_res.png`` / ``.json``,
        sliced when ``slicing`` has a ``slice_size``. ``slicing`` None: ``SliceOptions(slice_size=None)``.
        Returns a :class:`.batch.SavedPrediction`."""
        from .batch import predict_input

        return predict_input(self, input, save_path, threshold=threshold, slicing=slicing, merging=merging,
                             to_epsg4326=to_epsg4326, simplify_tolerance=simplify_tolerance, overwrite=overwrite,
                             progress=progress)


def build_pipeline(config, model_dir, device="cpu", run_mode=None, use_hpip=False, model_source="model_dir"):
    """The pipeline of a validated pipeline ``config`` (:func:`load_pipeline_config`) over the exported model folder
    ``model_dir`` (already resolved: use :func:`tutorial_lib.create_pipeline` for names, YAML paths and the
    model providers). ``run_mode``: ``paddle``, ``mkldnn`` (oneDNN; the CPU default), ``onnxruntime``, ``openvino``
    (CPU), ``trt_fp32``/``trt_fp16`` (GPU); ``use_hpip=True`` picks the backend instead (see
    :func:`tutorial_lib.predict.backends.high_performance_mode`). ``model_source`` says where the model came from.
    """
    from ..predict import Predictor
    from ..predict.backends import high_performance_mode

    sub = config["SubModules"][SUBMODULE]
    if use_hpip:
        run_mode = high_performance_mode(model_dir, device)
    predictor = Predictor(model_dir, device=device, run_mode=run_mode, batch_size=sub["batch_size"],
                          threshold=sub["threshold"])
    return InstanceSegmentationPipeline(config, predictor, model_source=model_source)
