"""The operations: PaddleX's instance segmentation of one image, and a GeoTIFF predicted slice by slice into GeoJSON.

Each is one small function over the shared infrastructure (:class:`.infra.ServerState`: admission, the decode
threads, PaddleX's envelope for every failure): it reads the request in a decode thread, hands the model thread
(:class:`.worker.ModelWorker`) one job and turns the answer into PaddleX's ``result``.
"""
import asyncio
import json
import os
import tempfile
import threading

from starlette.requests import Request

from .errors import RequestError, envelope, respond
from .images import image_bytes
from .payload import result_payload
from .schema import (ERROR_RESPONSES, GEOTIFF_ENDPOINT, INFER_ENDPOINT, GeoTiffRequest, GeoTiffResult, InferRequest,
                     InferResult, ResultResponse)


async def infer(body: InferRequest, request: Request):
    """PaddleX's instance segmentation: the instances (box, class, score, RLE mask) of one image."""
    state = request.app.state.server

    async def handle():
        async with state.decoded():
            image = await state.in_thread(state.read_image, body.image)
            result = await asyncio.wrap_future(state.worker.submit(image, body.threshold))
            del image
        draw = state.visualize if body.visualize is None else body.visualize
        return envelope(200, "Success", await state.in_thread(result_payload, result, draw, bool(body.polygons)))
    return await state.run(handle)


async def infer_geotiff(body: GeoTiffRequest, request: Request):
    """A GeoTIFF predicted tile by tile (sliced inference) -> GeoJSON, one polygon per instance."""
    state = request.app.state.server
    if not hasattr(state.worker.pipeline, "predict_geotiff") and state.worker.loaded.is_set():
        return respond(envelope(501, "this pipeline has no GeoTIFF prediction"))

    async def handle():
        folder = tempfile.mkdtemp(prefix="tutorial_lib_geotiff_")
        try:
            path = await state.in_thread(_store_geotiff, state, body.image, folder)
            summary = await asyncio.wrap_future(state.worker.call(lambda p: _predict_geotiff(p, path, folder, body)))
            return envelope(200, "Success", summary)
        finally:
            threading.Thread(target=_remove, args=(folder,), daemon=True).start()
    return await state.run(handle)


def add_routes(app) -> None:
    """Add the operations to an app made by :func:`.infra.build_app`."""
    app.add_api_route(INFER_ENDPOINT, infer, methods=["POST"], operation_id="infer",
                      response_model=ResultResponse[InferResult], responses=ERROR_RESPONSES)
    app.add_api_route(GEOTIFF_ENDPOINT, infer_geotiff, methods=["POST"], operation_id="inferGeoTiff",
                      response_model=ResultResponse[GeoTiffResult], responses=ERROR_RESPONSES)


def _remove(folder):
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _store_geotiff(state, value, folder):
    """Write the request's GeoTIFF to ``folder`` after checking it is one and not over the pixel limit."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    data = image_bytes(value, state.limits, state.guard)
    path = os.path.join(folder, "input.tif")
    with open(path, "wb") as f:
        f.write(data)
    del data
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path, driver="GTiff") as dataset:
                width, height = dataset.width, dataset.height
    except RasterioIOError:
        raise RequestError(400, "'image' is not a GeoTIFF this server reads") from None
    if width * height > state.limits.max_geotiff_pixels:
        raise RequestError(413, f"GeoTIFF has {width}x{height} pixels, more than the limit "
                                f"{state.limits.max_geotiff_pixels}")
    return path


def _predict_geotiff(pipeline, path, folder, body):
    out = os.path.join(folder, "result.geojson")
    summary = pipeline.predict_geotiff(path, out, threshold=body.threshold, slicing=body.slicing(),
                                       merging=body.merging(), to_epsg4326=body.epsg4326, progress=False)
    with open(out, encoding="utf-8") as f:
        collection = json.load(f)
    return {"geojson": collection, "instances": summary["instances"], "crs": summary["crs"]}
