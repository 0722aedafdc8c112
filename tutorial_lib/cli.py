"""Command line: PaddleX-style ``-c CONFIG -o Section.key=value`` plus a few helper commands.

    python -m tutorial_lib -c Mask-RT-DETR-S -o Global.mode=check_dataset -o Global.dataset_dir=DIR
    python -m tutorial_lib sample --output data/remote_sense_sample [--preset full] [--seed 0]
    python -m tutorial_lib models | pipelines
    python -m tutorial_lib demo [--output output/demo]
    python -m tutorial_lib download [--url URL] --output data [--sha256 HEX]
    python -m tutorial_lib --get_pipeline_config instance_segmentation --save_path ./my_path
    python -m tutorial_lib --pipeline instance_segmentation --input data/remotesensing_demo.png --save_path output/
    python -m tutorial_lib --pipeline my_path/instance_segmentation.yaml --input scene.tif --slice_size 512
    python -m tutorial_lib --serve --pipeline instance_segmentation --host 127.0.0.1 --port 8080
    python -m tutorial_lib --paddle2onnx --paddle_model_dir output/best_model/inference --onnx_model_dir out_onnx
    python -m tutorial_lib quantize --model_dir output/best_model/inference --calibration DATASET/images
    python -m tutorial_lib chip --rasters scenes/ --label_files labels.gpkg --class_column class --output data/chips
    python -m tutorial_lib evaluate_scene --pred out/scene.geojson --labels labels.gpkg --tiles scene.tif
    python -m tutorial_lib geoscene --output data/geoscene [--seed 0] [--size 4096]

Every user error ends with a non-zero exit and one line on stderr (``--debug`` shows the traceback).
"""
import argparse
import json
import signal
import sys

from .engine.stop import TrainingStopped
from .errors import UserError

COMMANDS = ("sample", "models", "pipelines", "demo", "download", "quantize", "chip", "evaluate_scene", "geoscene")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage + exits 2; keep one clear line instead
        raise UserError(f"{message} (see python -m tutorial_lib --help)")


def _module_parser():
    parser = _Parser(prog="python -m tutorial_lib", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", help="module YAML, or a registered model name such as Mask-RT-DETR-S")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="Section.key=value",
                        help="override one config value (repeatable), e.g. -o Global.mode=train")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    pipe = parser.add_argument_group("pipelines (steps 2 and 7)")
    pipe.add_argument("--pipeline", help="pipeline name (instance_segmentation) or pipeline YAML")
    pipe.add_argument("--get_pipeline_config", metavar="NAME", help="write the pipeline's YAML to --save_path")
    pipe.add_argument("--serve", action="store_true", help="serve --pipeline over HTTP (FastAPI)")
    pipe.add_argument("--input", help="image, folder, GeoTIFF, file:// or http(s) URL")
    pipe.add_argument("--device", default="cpu", help="cpu, gpu:0 ...")
    pipe.add_argument("--save_path", help="folder for results / the pipeline YAML")
    pipe.add_argument("--threshold", type=float, help="minimum score of the instances kept")
    pipe.add_argument("--run_mode", help="paddle, mkldnn (oneDNN; CPU default), onnxruntime, openvino (CPU), "
                      "trt_fp32, trt_fp16")
    pipe.add_argument("--use_hpip", action="store_true", help="high-performance inference: pick the fastest backend")
    pipe.add_argument("--slice_size", type=int, help="sliced inference for large scenes: tile size in pixels")
    pipe.add_argument("--overlap_ratio", type=float, default=0.2, help="tile overlap for sliced inference")
    pipe.add_argument("--merge_mode", default="GREEDYNMM", help="merging of tile predictions: GREEDYNMM, NMM or NMS")
    pipe.add_argument("--match_metric", default="IOU", help="when two tile predictions are one object: IOU or IOS")
    pipe.add_argument("--match_on", default="masks", help="compare masks (default) or boxes")
    pipe.add_argument("--match_threshold", type=float, default=0.5, help="match above this IOU/IOS")
    pipe.add_argument("--full_image", nargs="?", type=int, const=-1, default=0, metavar="SIZE",
                      help="also predict the whole scene downscaled to SIZE px (default --slice_size) and merge it")
    pipe.add_argument("--simplify", type=float, default=0.0, metavar="PIXELS",
                      help="simplify GeoTIFF polygons (topology kept) with this tolerance in pixels")
    pipe.add_argument("--overwrite", action="store_true", help="folder input: redo scenes already predicted")
    pipe.add_argument("--epsg4326", action="store_true",
                      help="require georeferencing (GeoJSON is always longitude/latitude, RFC 7946)")
    pipe.add_argument("--host", default="127.0.0.1")
    pipe.add_argument("--port", type=int, default=8080)
    pipe.add_argument("--max_batch_size", type=int, default=1,
                      help="--serve: group up to this many concurrent requests per model call (micro-batching)")
    pipe.add_argument("--max_wait_ms", type=float, default=10.0, help="--serve: how long a batch waits to fill")
    pipe.add_argument("--url_allow", action="append", default=[], metavar="HOST_OR_CIDR",
                      help="--serve: fetch image URLs on this host or network although it is not public "
                           "(repeatable; loopback, private and link-local targets are refused otherwise)")
    pipe.add_argument("--no_url_inputs", action="store_true", help="--serve: refuse image URLs (base64 only)")
    pipe.add_argument("--max_pixels", type=int, default=40_000_000,
                      help="--serve: larger images get 413 (bounds memory: see docs/benchmarks.md, serving soak)")
    onnx = parser.add_argument_group("ONNX export (paddle2onnx)")
    onnx.add_argument("--paddle2onnx", action="store_true", help="convert an exported model to ONNX")
    onnx.add_argument("--paddle_model_dir", help="exported model folder (inference.pdmodel, .pdiparams, .yml)")
    onnx.add_argument("--onnx_model_dir", help="output folder (default: --paddle_model_dir)")
    onnx.add_argument("--opset_version", type=int, default=16)
    return parser


def _run_pipeline(args):
    from pathlib import Path

    from .pipeline import get_pipeline_config
    from .providers import create_pipeline, model_plan

    if args.get_pipeline_config:
        path = get_pipeline_config(args.get_pipeline_config, args.save_path or ".")
        print(f"pipeline config written to {path}")
        print(model_plan(get_pipeline_config(args.get_pipeline_config)))
        return
    if not args.pipeline:
        raise UserError("--serve and --input need --pipeline instance_segmentation (or a pipeline YAML)")
    if args.serve:
        from .serving import Batching, Limits, UrlPolicy, serve

        def load():  # in the server's model thread: the port answers (/health/live) while the model loads
            pipeline = create_pipeline(args.pipeline, device=args.device, run_mode=args.run_mode,
                                       use_hpip=args.use_hpip)
            print(f"model: {pipeline.model_name} ({pipeline.model_source}, {pipeline.predictor.model_dir})")
            return pipeline

        batching = Batching(args.max_batch_size, args.max_wait_ms) if args.max_batch_size > 1 else None
        serve(load, args.host, args.port, limits=Limits(max_pixels=args.max_pixels), batching=batching,
              urls=UrlPolicy(enabled=not args.no_url_inputs, allow=args.url_allow))
        return
    pipeline = create_pipeline(args.pipeline, device=args.device, run_mode=args.run_mode, use_hpip=args.use_hpip)
    print(f"model: {pipeline.model_name} ({pipeline.model_source}, {pipeline.predictor.model_dir})")
    if not args.input:
        raise UserError("--pipeline needs --input (an image, folder or URL) or --serve")
    slicing, merging = _options(args)  # checked before any work
    saved = pipeline.predict_and_save(args.input, Path(args.save_path or "output"), threshold=args.threshold,
                                      slicing=slicing, merging=merging, to_epsg4326=args.epsg4326,
                                      simplify_tolerance=args.simplify, overwrite=args.overwrite)
    if saved.kind == "folder":
        print(json.dumps({k: (len(v) if isinstance(v, list) else v) for k, v in saved.summary.items()}, indent=2))
    elif saved.kind == "geotiff":
        print(json.dumps(saved.summary, indent=2))
    else:
        for result in saved.results:
            result.print()
        print(f"results saved in {saved.save_path}")


def _options(args):
    """The slicing and merging flags as :class:`~tutorial_lib.pipeline.SliceOptions` and
    :class:`~tutorial_lib.pipeline.MergeOptions` (a UserError names a bad value)."""
    from .pipeline.options import MergeOptions, SliceOptions

    slicing = SliceOptions(slice_size=args.slice_size, overlap_ratio=args.overlap_ratio,
                           full_image=True if args.full_image == -1 else args.full_image)
    merging = MergeOptions(merge_mode=args.merge_mode, match_metric=args.match_metric, match_on=args.match_on,
                           match_threshold=args.match_threshold)
    return slicing, merging


def _paddle2onnx(args):
    from .predict.onnx_export import convert_to_onnx

    if not args.paddle_model_dir:
        raise UserError("--paddle2onnx needs --paddle_model_dir (an exported model folder)")
    path = convert_to_onnx(args.paddle_model_dir, args.onnx_model_dir, opset_version=args.opset_version)
    print(f"ONNX model written to {path}")


def _command_parser(command):
    parser = _Parser(prog=f"python -m tutorial_lib {command}")
    parser.add_argument("--debug", action="store_true")
    if command == "sample":
        parser.add_argument("--output", default="data/remote_sense_sample", help="dataset folder to write")
        parser.add_argument("--preset", default="ci",
                            help="clip-art scenes: ci (64/16 images, 256 px) or full (480/120, 512 px); realistic "
                                 "aerial scenes: pretrain (4000/256, 256 px, 0.3-2 m/px), reader (160/64, 256 px, "
                                 "another sensor and season, 0.3-0.5 m/px) or reader-ci (its first 32/16)")
        parser.add_argument("--num_train", type=int)
        parser.add_argument("--num_val", type=int)
        parser.add_argument("--image_size", type=int)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--overwrite", action="store_true")
    elif command == "demo":
        parser.add_argument("--output", default="output/demo")
        parser.add_argument("--dataset_dir", default="data/remote_sense_sample")
        parser.add_argument("--seed", type=int, default=0)
    elif command == "download":
        from .data.download import DEFAULT_URL

        parser.add_argument("--url", default=DEFAULT_URL, help="dataset archive (tar or zip)")
        parser.add_argument("--output", default="data", help="folder to download and extract into")
        parser.add_argument("--sha256", help="expected sha256 of the archive")
    elif command == "quantize":
        parser.add_argument("--model_dir", required=True, help="exported model folder (one that converts to ONNX)")
        parser.add_argument("--calibration", required=True, help="calibration images: a folder or an image")
        parser.add_argument("--max_images", type=int, default=32, help="calibrate on at most this many images")
    elif command == "chip":
        _chip_arguments(parser)
    elif command == "evaluate_scene":
        _evaluate_scene_arguments(parser)
    elif command == "geoscene":
        parser.add_argument("--output", default="data/geoscene", help="folder for scene.tif and labels.geojson")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--size", type=int, default=4096, help="scene side in pixels (0.4 m each)")
        parser.add_argument("--overwrite", action="store_true", help="replace a scene made with other arguments")
    return parser


def _chip_arguments(parser):
    """The flags of ``chip``: named like the ``CheckDataset.convert`` keys, with their defaults."""
    from .config.schema import DEFAULTS

    keys, seed = DEFAULTS["CheckDataset"]["convert"], DEFAULTS["Global"]["seed"]
    parser.add_argument("--rasters", nargs="+", required=True, help="GeoTIFF files or folders of them")
    parser.add_argument("--label_files", nargs="+", required=True, help="GeoJSON / GeoPackage / Shapefile polygons")
    parser.add_argument("--output", required=True, help="dataset folder to write (COCO, tutorial layout)")
    parser.add_argument("--class_column", help="the labels' class column")
    parser.add_argument("--class_name", help="one class for every polygon (labels without a class column)")
    parser.add_argument("--bands", nargs="+", type=int, help="3 band numbers (R G B) or 1 (grey); default 1-3")
    parser.add_argument("--chip_size", type=int, default=keys["chip_size"])
    parser.add_argument("--overlap", type=float, default=keys["overlap"], help="share of a chip its neighbour repeats")
    parser.add_argument("--nodata_threshold", type=float, default=keys["nodata_threshold"],
                        help="skip chips with more no-data than this fraction")
    parser.add_argument("--min_area_fraction", type=float, default=keys["min_area_fraction"],
                        help="keep a polygon cut by a chip border from this share of its area")
    parser.add_argument("--image_format", default=keys["image_format"], help="png or jpg")
    parser.add_argument("--split_by", default=keys["split_by"], help="val = whole rasters, or blocks")
    parser.add_argument("--block_size", type=int, default=keys["block_size"], help="split block side in pixels")
    parser.add_argument("--val_fraction", type=float, default=keys["val_fraction"])
    parser.add_argument("--seed", type=int, default=seed, help="draws the val rasters or blocks")
    parser.add_argument("--overwrite", action="store_true", help="replace --output")


def _evaluate_scene_arguments(parser):
    parser.add_argument("--pred", required=True, help="predicted polygons (GeoJSON / GeoPackage / Shapefile)")
    parser.add_argument("--labels", required=True, help="ground-truth polygons")
    parser.add_argument("--tiles", help="the predicted raster: seam-split rate over its --slice_size tiles")
    parser.add_argument("--slice_size", type=int, default=512, help="with --tiles: the tile size predicted with")
    parser.add_argument("--overlap_ratio", type=float, default=0.2, help="with --tiles: the tile overlap")
    parser.add_argument("--score_field", default="score")
    parser.add_argument("--class_field", default="label", help="the predictions' class property ('' = one class)")
    parser.add_argument("--label_class_field", help="the labels' class column (default: --class_field)")
    parser.add_argument("--score_threshold", type=float, default=0.5, help="for precision, recall, F1, rates")
    parser.add_argument("--pixel_size", type=float, help="metres per pixel: adds COCO's pixel area bands")
    parser.add_argument("--valid_area", metavar="RASTER",
                        help="the predicted raster: predictions and labels mostly on its no-data are ignored")
    parser.add_argument("--json", help="also write the numbers to this JSON file")


def _run_command(command, args):
    if command == "sample":
        from .data.sample import generate_sample

        summary = generate_sample(args.output, args.preset, args.num_train, args.num_val, args.image_size,
                                  args.seed, overwrite=args.overwrite)
        print(json.dumps(summary, indent=2))
    elif command == "models":
        from .models.registry import list_models

        def number(value, places):  # as PaddleX prints it: 118.30, 41.0, but 33.5007 in full
            if value is None:
                return "-"
            text = f"{value:.{places}f}"
            return text if float(text) == value else repr(value)

        def cell(*values, places=2):  # normal / high-performance mode
            return " / ".join(number(v, places) for v in values)

        print(f"{'model':30s} {'mask AP':>7s} {'GPU ms (normal / HP)':>21s} {'CPU ms (normal / HP)':>21s} "
              f"{'size MB':>7s}")
        for m in list_models():
            print(f"{m['name']:30s} {cell(m['mask_ap'], places=1):>7s} {cell(m['gpu_ms'], m['gpu_ms_hp']):>21s} "
                  f"{cell(m['cpu_ms'], m['cpu_ms_hp']):>21s} {cell(m['size_mb'], places=1):>7s}")
    elif command == "pipelines":
        from .pipeline.registry import list_pipelines

        for p in list_pipelines():
            print(f"{p['name']}: {p['description']} (default model {p['default_model']})")
    elif command == "demo":
        from .demo import run_demo

        run_demo(args.output, args.dataset_dir, seed=args.seed)
    elif command == "quantize":
        from .predict.quantize import model_size_mb, quantize_int8
        from .predict.onnx_export import onnx_path

        path = quantize_int8(args.model_dir, args.calibration, max_images=args.max_images)
        print(f"INT8 model written to {path} ({model_size_mb(path):.1f} MB; FP32 ONNX "
              f"{model_size_mb(onnx_path(args.model_dir)):.1f} MB); predict with run_mode=onnxruntime_int8 or "
              "openvino_int8")
    elif command == "download":
        from .data.download import download_dataset

        print(download_dataset(args.url, args.output, sha256=args.sha256))
    elif command == "chip":
        from .data.geochips import CHIP_KEYS, chip_dataset

        report = chip_dataset(args.rasters, args.label_files, args.output, seed=args.seed, overwrite=args.overwrite,
                              progress=True, **{key: getattr(args, key) for key in CHIP_KEYS})
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    elif command == "evaluate_scene":
        _evaluate_scene(args)
    elif command == "geoscene":
        from dataclasses import asdict

        from .data.geoscene import make_geoscene

        scene = make_geoscene(args.output, seed=args.seed, size=args.size, overwrite=args.overwrite)
        print(json.dumps({**asdict(scene), "raster": str(scene.raster), "labels": str(scene.labels),
                          "objects": scene.objects}, indent=2))


def _evaluate_scene(args):
    from pathlib import Path

    from .pipeline.scene_eval import TileGrid, evaluate_scene

    grid = TileGrid.from_raster(args.tiles, args.slice_size, args.overlap_ratio) if args.tiles else None
    report = evaluate_scene(args.pred, args.labels, score_field=args.score_field, class_field=args.class_field or None,
                            label_class_field=args.label_class_field, tile_grid=grid,
                            score_threshold=args.score_threshold, pixel_size=args.pixel_size,
                            valid_area=args.valid_area)
    print(report.to_markdown())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        if argv and argv[0] in COMMANDS:
            _run_command(argv[0], _command_parser(argv[0]).parse_args(argv[1:]))
            return 0
        args = _module_parser().parse_args(argv)
        if args.paddle2onnx:
            _paddle2onnx(args)
            return 0
        if args.pipeline or args.get_pipeline_config or args.serve:
            _run_pipeline(args)
            return 0
        if not args.config and not args.override:
            raise UserError("nothing to do: give -c CONFIG -o Global.mode=..., or a command: " + ", ".join(COMMANDS))
        from .modes import run

        result = run(args.config, args.override)
        return 0 if not isinstance(result, dict) or result.get("check_pass", True) is not False else 1
    except UserError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TrainingStopped as exc:  # Ctrl-C or SIGTERM during training: a checkpoint to resume from was written
        print(f"interrupted ({exc})", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except Exception as exc:  # a bug, not a user error: still one line unless --debug
        if debug:
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1
