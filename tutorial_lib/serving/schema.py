"""PaddleX 3.0's serving schema for the instance-segmentation pipeline, as pydantic models.

FastAPI validates request bodies with these models and shows them on ``/docs`` (OpenAPI). The fields follow
PaddleX's ``paddlex/inference/serving/schemas/instance_segmentation.py``: the request has ``image`` (base64 or
URL) and ``threshold``; every answer is ``{logId, errorCode, errorMsg}``, with ``result`` on success
(``errorCode`` 0, ``errorMsg`` "Success"). This server adds two optional request flags that PaddleX clients never
send: ``visualize`` (overlay image or not) and ``polygons`` (a GeoJSON polygon per instance beside the RLE mask),
and a GeoTIFF -> GeoJSON operation.

Bad requests get a 4xx in the same envelope: :func:`validation_message` turns pydantic's errors into one line a
person can act on (the HTTP status stays 400 for a malformed request, as this server always answered).
"""
from typing import Annotated, Any, Dict, Generic, List, Literal, Optional, Tuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from ..pipeline.options import MergeOptions, SliceOptions

INFER_ENDPOINT = "/instance-segmentation"
GEOTIFF_ENDPOINT = "/instance-segmentation/geotiff"

Threshold = Annotated[float, Field(ge=0, le=1, strict=True, description="minimum score of the instances kept")]
BoundingBox = Annotated[List[float], Field(min_length=4, max_length=4, description="x1, y1, x2, y2 in pixels")]


class InferRequest(BaseModel):
    """PaddleX's ``infer`` request (+ this server's optional ``visualize`` and ``polygons`` flags)."""

    model_config = ConfigDict(extra="forbid")

    image: StrictStr = Field(description="the image as base64 (optionally a data: URI), or an http(s) URL")
    threshold: Optional[Threshold] = None
    visualize: Optional[StrictBool] = Field(None, description="return the overlay image (default: the server's)")
    polygons: Optional[StrictBool] = Field(None, description="add each instance's outline as a GeoJSON geometry "
                                                             "in pixel coordinates (default: false)")


class Mask(BaseModel):
    rleResult: str = Field(description="COCO RLE counts (compressed string form)")
    size: Tuple[int, int] = Field(description="height, width")


class Instance(BaseModel):
    bbox: BoundingBox
    categoryId: int
    categoryName: str
    score: float
    mask: Mask
    polygon: Optional[Dict[str, Any]] = Field(None, description="only when the request asked for polygons")


class InferResult(BaseModel):
    instances: List[Instance]
    image: Optional[str] = Field(None, description="base64 JPEG of the drawn result, or null")


class GeoTiffRequest(BaseModel):
    """A GeoTIFF (base64 or URL) predicted with sliced inference; the answer is the GeoJSON that
    :meth:`~tutorial_lib.pipeline.InstanceSegmentationPipeline.predict_geotiff` writes."""

    model_config = ConfigDict(extra="forbid")

    image: StrictStr = Field(description="the GeoTIFF as base64, or an http(s) URL")
    threshold: Optional[Threshold] = None
    sliceSize: Annotated[int, Field(ge=64, le=4096, strict=True)] = 512
    overlapRatio: Annotated[float, Field(ge=0, lt=1, strict=True)] = 0.2
    epsg4326: StrictBool = Field(False, description="predict_geotiff's to_epsg4326: longitude/latitude "
                                                     "coordinates, refused for a raster without georeferencing")

    def slicing(self) -> SliceOptions:
        """``sliceSize`` and ``overlapRatio`` as the pipeline's :class:`~tutorial_lib.pipeline.SliceOptions`
        (the pipeline's tile batch size, no whole-scene pass)."""
        return SliceOptions(slice_size=self.sliceSize, overlap_ratio=self.overlapRatio)

    def merging(self) -> MergeOptions:
        """How tiles are merged: the pipeline's defaults (this request has no merge fields)."""
        return MergeOptions()


class GeoTiffResult(BaseModel):
    geojson: Dict[str, Any] = Field(description="a GeoJSON FeatureCollection, one (Multi)Polygon per instance "
                                                "(pixel coordinates for a raster without georeferencing)")
    instances: int
    crs: Optional[str] = Field(None, description="the raster's CRS, or null for a raster without georeferencing")


class HealthResult(BaseModel):
    status: str


ResultT = TypeVar("ResultT")


class ResultResponse(BaseModel, Generic[ResultT]):
    logId: str
    errorCode: Literal[0] = 0
    errorMsg: str = "Success"
    result: ResultT


class ErrorResponse(BaseModel):
    """PaddleX's ``NoResultResponse``: every error answer."""

    logId: str
    errorCode: int = Field(description="the HTTP status")
    errorMsg: str


ERROR_RESPONSES = {status: {"model": ErrorResponse, "description": text} for status, text in [
    (400, "malformed request: bad JSON, unknown or missing field, wrong type, not an image"),
    (413, "request body, image bytes or image pixels over the server's limits"),
    (422, "image URL refused or not fetched"),
    (503, "model not loaded and warmed up yet, too many requests in flight, or shutting down"),
]}


def _field(error):
    loc = [str(part) for part in error.get("loc", ()) if part != "body"]
    return loc[0] if loc else None


def validation_message(errors, fields=("image", "threshold", "visualize", "polygons")):
    """pydantic / FastAPI validation errors -> one message naming the field and what it must be."""
    messages = []
    for error in errors:
        kind, field, value = error.get("type", ""), _field(error), error.get("input")
        if kind == "json_invalid":
            return "the request body is not valid JSON"
        if field is None and kind in ("model_attributes_type", "dict_type", "missing", "model_type"):
            return "the request body must be a JSON object with an 'image' field"
        if kind == "extra_forbidden":
            unknown = sorted(_field(e) for e in errors if e.get("type") == "extra_forbidden")
            return f"unknown field(s) {unknown}; allowed: {', '.join(fields)}"
        if kind == "missing":
            messages.append(f"missing field '{field}'" + (" (base64-encoded image or http(s) URL)"
                                                           if field == "image" else ""))
        elif kind == "string_type":
            messages.append(f"'{field}' must be a string, got {type(value).__name__}")
        elif field == "threshold":
            if kind in ("greater_than_equal", "less_than_equal"):
                messages.append(f"'threshold' must lie in [0, 1], got {value}")
            else:
                messages.append(f"'threshold' must be a number in [0, 1], got {value!r}")
        elif kind == "bool_type":
            messages.append(f"'{field}' must be true, false or null, got {value!r}")
        else:
            messages.append(f"'{field}': {error.get('msg', kind)} (got {value!r})")
    return "; ".join(messages) or "invalid request"
