"""Pipelines (steps 2 and 7): ``create_pipeline(...).predict(...)`` as in PaddleX.

    import tutorial_lib as tl
    pipeline = tl.create_pipeline("instance_segmentation", device="cpu")   # or "my_path/instance_segmentation.yaml"
    for result in pipeline.predict("data/remotesensing_demo.png"):
        result.print(); result.save_to_img("output/"); result.save_to_json("output/")

A pipeline wraps one exported model (the ``InstanceSegmentation`` sub-module of its YAML) with input handling
(paths, folders, arrays, lists, ``file://`` and http(s) URLs), sliced inference for large scenes and GeoTIFF
output. With no ``model_dir`` it uses the cached quick-start model; :func:`tutorial_lib.create_pipeline` trains it
first when it is missing (:mod:`tutorial_lib.quickstart`).
"""
from ..errors import UserError
from .config import SUBMODULE, get_pipeline_config, load_pipeline_config, quickstart_export_dir
from .registry import list_pipelines

__all__ = ["InstanceSegmentationPipeline", "create_pipeline", "get_pipeline_config", "list_pipelines",
           "load_pipeline_config"]


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

    def predict(self, input, threshold=None, batch_size=None):
        """Yield one result per input image (``print()``, ``save_to_img()``, ``save_to_json()``, ``.json``)."""
        yield from self.predictor.predict(input, threshold=threshold, batch_size=batch_size)

    __call__ = predict

    def _tile_predictor(self, threshold, batch_size=1):
        """``tile -> result`` (``batch_size`` 1) or ``[tiles] -> [results]`` for sliced inference: the same model
        and threshold on every tile; the predictor splits a batch to what its model accepts."""
        if batch_size == 1:
            return lambda tile: next(self.predictor.predict(tile, threshold=threshold))
        return lambda tiles: list(self.predictor.predict(list(tiles), threshold=threshold, batch_size=len(tiles)))

    def predict_sliced(self, image, slice_size=512, overlap_ratio=0.2, threshold=None, match_iou=0.5, progress=True,
                       merge_mode="GREEDYNMM", match_metric="IOU", match_on="masks", match_threshold=None,
                       full_image=False, batch_size=None):
        """Sliced inference over one large image (path or RGB array); returns one merged
        :class:`~tutorial_lib.predict.InstanceSegResult` (cropped masks). Merge options: :mod:`.sliced`."""
        from ..predict import InstanceSegResult
        from ..predict.inputs import read_image
        from .sliced import sliced_predict

        path = None
        if not hasattr(image, "shape"):
            path, image = str(image), read_image(image)
        batch_size = self.predictor.batch_size if batch_size is None else int(batch_size)
        instances = sliced_predict(image, self._tile_predictor(threshold, batch_size), slice_size, overlap_ratio,
                                   match_iou if match_threshold is None else match_threshold, progress,
                                   merge_mode, match_metric, match_on, full_image, batch_size)
        return InstanceSegResult(path, instances, self.labels, image=image)

    def predict_geotiff(self, src, geojson_path, slice_size=512, overlap_ratio=0.2, threshold=None,
                        to_epsg4326=False, mask_path=None, progress=True, *, merge_mode="GREEDYNMM",
                        match_metric="IOU", match_on="masks", match_threshold=0.5, full_image=False,
                        batch_size=None, vector_path=None, instance_path=None, simplify_tolerance=0.0):
        """Sliced inference over a GeoTIFF read by windows, written as it streams: GeoJSON (RFC 7946 lon/lat),
        optionally GeoPackage/FlatGeobuf in the raster's CRS and class/instance COGs (see :mod:`.geo`)."""
        from .geo import predict_geotiff

        batch_size = self.predictor.batch_size if batch_size is None else int(batch_size)
        return predict_geotiff(self._tile_predictor(threshold, batch_size), src, geojson_path, slice_size,
                               overlap_ratio, to_epsg4326, mask_path, progress=progress, merge_mode=merge_mode,
                               match_metric=match_metric, match_on=match_on, match_threshold=match_threshold,
                               full_image=full_image, batch_size=batch_size, vector_path=vector_path,
                               instance_path=instance_path, simplify_tolerance=simplify_tolerance,
                               labels=self.labels)


def create_pipeline(pipeline="instance_segmentation", device="cpu", model_dir=None, run_mode=None,
                    use_hpip=False):
    """Build a pipeline from a registered name, a pipeline YAML or a dict.

    ``model_dir`` (or ``SubModules.InstanceSegmentation.model_dir`` in the YAML) is an exported model folder;
    when neither is set, the cached quick-start model (see :func:`tutorial_lib.create_pipeline`).
    ``run_mode``: ``paddle``, ``mkldnn`` (oneDNN; the CPU default), ``onnxruntime``, ``openvino`` (CPU),
    ``trt_fp32``/``trt_fp16`` (GPU).
    ``use_hpip=True`` picks the backend instead (see :func:`tutorial_lib.predict.backends.high_performance_mode`).
    """
    from ..predict import Predictor
    from ..predict.backends import high_performance_mode

    config = load_pipeline_config(pipeline)
    sub = config["SubModules"][SUBMODULE]
    if model_dir is None:
        model_dir = sub["model_dir"]
    if model_dir is None:
        model_dir = quickstart_export_dir()
        if not (model_dir / "inference.yml").is_file():
            raise UserError("no model_dir given and the quick-start model is not built yet: use "
                            "tutorial_lib.create_pipeline (it trains it once), or pass model_dir=<exported model>")
    if use_hpip:
        run_mode = high_performance_mode(model_dir, device)
    predictor = Predictor(model_dir, device=device, run_mode=run_mode, batch_size=sub["batch_size"],
                          threshold=sub["threshold"])
    return InstanceSegmentationPipeline(config, predictor)
