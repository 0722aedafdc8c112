"""Inference backends behind :class:`tutorial_lib.predict.Predictor` (``run_mode``), step 7's high-performance
inference:

=============  ============================================================================================
``paddle``     Paddle Inference, plain kernels (CPU or GPU; oneDNN switched off on the CPU)
``mkldnn``     Paddle Inference with Intel oneDNN kernels (CPU; the default there, as in PaddleX)
``onnxruntime`` ONNX Runtime on ``inference.onnx``, converted once with paddle2onnx (models whose operators
               paddle2onnx maps: Mask-RT-DETR); CUDA provider on a GPU when onnxruntime-gpu is installed
``openvino``   OpenVINO (CPU plugin, fp32) on the same ``inference.onnx``, same models as ``onnxruntime``; CPU only
``onnxruntime_int8`` / ``openvino_int8``  the same two runtimes on ``inference_int8.onnx``, the post-training INT8
               model :func:`tutorial_lib.predict.quantize.quantize_int8` makes (edge deployment; CPU)
``trt_fp32``   Paddle Inference + TensorRT subgraphs (GPU build of Paddle with TensorRT; not run on this CPU
``trt_fp16``   project's machines, see docs/benchmarks.md)
=============  ============================================================================================

``run_mode=None`` means ``mkldnn`` on the CPU and ``paddle`` on a GPU. A backend takes the feed dict (``image``,
``im_shape``, ``scale_factor``) and returns the model's outputs in export order (see ``inference.yml: outputs``).
"""
import os
from collections import Counter
from pathlib import Path

from ..config.schema import RUN_MODES
from ..errors import UserError

ONNX_RUN_MODES = ("onnxruntime", "openvino", "onnxruntime_int8", "openvino_int8")  # run an ONNX model, not Paddle


def cpu_threads(requested=None):
    return int(requested or int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or (os.cpu_count() or 1))


def restore_math_threads():
    """Paddle Inference sets the process-wide OpenMP / math-library thread count to its own setting when it is
    created and when it runs. Put back the count dygraph code runs with (``OMP_NUM_THREADS``), so that training
    or evaluation later in the same process is neither slower nor numerically different."""
    from paddle.base import core

    core.set_num_threads(cpu_threads())


def default_run_mode(device="cpu"):
    return "paddle" if str(device).startswith("gpu") else "mkldnn"


def create_backend(model_dir, device="cpu", run_mode=None, threads=None):
    run_mode = run_mode or default_run_mode(device)
    if run_mode not in RUN_MODES:
        raise UserError(f"run_mode={run_mode!r} is not one of {', '.join(RUN_MODES)}")
    if run_mode.startswith("trt") and not device.startswith("gpu"):
        raise UserError(f"run_mode={run_mode} needs a GPU (and a Paddle build with TensorRT); "
                        "on the CPU use mkldnn, onnxruntime or openvino")
    if run_mode.endswith("int8") and device.startswith("gpu"):
        raise UserError(f"run_mode={run_mode} runs on the CPU only (INT8 for edge deployment), not on {device}")
    if run_mode == "openvino" and device.startswith("gpu"):
        raise UserError(f"run_mode=openvino runs on the CPU only (this project compiles for OpenVINO's CPU plugin), "
                        f"not on {device}; use device=cpu, or run_mode=paddle / onnxruntime (onnxruntime-gpu) on a GPU")
    if run_mode in ONNX_RUN_MODES:
        backend = OnnxRuntimeBackend if run_mode.startswith("onnxruntime") else OpenVINOBackend
        backend.require_runtime()  # before converting anything
        if run_mode.endswith("int8"):
            from .onnx_export import require_int8

            path = require_int8(model_dir)
        else:
            path = ensure_onnx_model(model_dir)
        return backend(path, device, threads)
    return PaddleInferenceBackend(model_dir, device, run_mode, threads)


# use_hpip's CPU choice between the two backends that run the converted ONNX model: the fastest measured per
# model by benchmarks/hpi.py (2 CPU cores, 640 px demo scene, 2026-12-04; table in docs/benchmarks.md,
# "High-performance inference"). A model not in it gets the backend that was fastest for most of those that are.
CPU_FASTEST_MEASURED = {"Mask-RT-DETR-S": "openvino", "Mask-RT-DETR-M": "openvino", "Mask-RT-DETR-L": "openvino",
                        "Mask-RT-DETR-X": "openvino", "Mask-RT-DETR-H": "openvino"}
CPU_FASTEST_DEFAULT = Counter(CPU_FASTEST_MEASURED.values()).most_common(1)[0][0]


def _installed(module):
    from importlib.util import find_spec

    return find_spec(module) is not None


def high_performance_mode(model_dir, device="cpu"):
    """The ``run_mode`` ``use_hpip=True`` picks, said in one printed line: on the CPU, for a model paddle2onnx
    converts, the faster of ``openvino`` and ``onnxruntime`` as measured for it (:data:`CPU_FASTEST_MEASURED`),
    otherwise ``mkldnn``; on a GPU ``paddle`` (TensorRT stays opt-in: it needs a Paddle build with TensorRT and
    builds engines on first use)."""
    import yaml

    from . import onnx_export

    if device.startswith("gpu"):
        return "paddle"
    runtimes = [m for m in ("openvino", "onnxruntime") if _installed(m)]
    if not runtimes:
        print("use_hpip: neither openvino nor onnxruntime is installed; using run_mode=mkldnn")
        return "mkldnn"
    if not onnx_export.is_current(model_dir):
        if not os.access(model_dir, os.W_OK):
            print(f"use_hpip: {model_dir} is read-only and has no current inference.onnx; using run_mode=mkldnn")
            return "mkldnn"
        try:
            onnx_export.convert_to_onnx(model_dir)
        except onnx_export.UnsupportedModelError as exc:
            print(f"use_hpip: {exc.args[0].split(';')[0]}; using run_mode=mkldnn (onnxruntime and openvino need "
                  "the ONNX model)")
            return "mkldnn"
    info = yaml.safe_load((Path(model_dir) / "inference.yml").read_text(encoding="utf-8")) or {}
    name = (info.get("Global") or {}).get("model_name")
    measured = CPU_FASTEST_MEASURED.get(name)
    pick = measured or CPU_FASTEST_DEFAULT
    if pick not in runtimes:
        print(f"use_hpip: {pick} is not installed; using run_mode={runtimes[0]}")
        return runtimes[0]
    why = (f"the fastest measured for {name} on the CPU" if measured else
           f"{name} was not measured; {pick} was the fastest for most models that were")
    print(f"use_hpip: using run_mode={pick} ({why}, docs/benchmarks.md)")
    return pick


class PaddleInferenceBackend:
    """Paddle Inference predictor, created and always run on one long-lived thread of its own.

    A Paddle Inference CPU predictor fails ("could not execute a primitive") when it runs on a new thread after
    another thread that ran it has ended -- what a web server's recycled worker threads or a notebook's
    background threads do. Running every forward pass on the backend's own thread avoids that; callers on any
    thread just wait for the result.

    oneDNN (``mkldnn``) in Paddle 2.6 can also fail that way on its own, now and then, when several predictors
    have lived in one process (PaddlePaddle/Paddle#34554, #43425; seen once in this project's CI). The
    workaround its maintainers give is a fresh predictor: the backend builds one and runs the batch again, and if
    that fails too it finishes on Paddle's plain kernels (``run_mode`` then reads ``paddle``), with a warning
    either way. Any other error is raised as it is.
    """

    ONEDNN_FAILURE = "could not execute a primitive"

    def __init__(self, model_dir, device, run_mode, threads=None):
        from concurrent.futures import ThreadPoolExecutor

        from ..paddle_env import import_paddle

        import_paddle()
        self.model_dir, self.device, self.run_mode, self.threads = model_dir, device, run_mode, threads
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="paddle-inference")
        self.predictor = self._thread.submit(self._create).result()
        self.input_names = self.predictor.get_input_names()

    def _create(self):
        from paddle import inference

        config = inference.Config(os.path.join(self.model_dir, "inference.pdmodel"),
                                  os.path.join(self.model_dir, "inference.pdiparams"))
        if self.device.startswith("gpu"):
            config.enable_use_gpu(256, int(self.device.split(":")[1].split(",")[0]))
            if self.run_mode.startswith("trt"):
                precision = (inference.PrecisionType.Half if self.run_mode == "trt_fp16"
                             else inference.PrecisionType.Float32)
                config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=1, min_subgraph_size=3,
                                              precision_mode=precision, use_static=False, use_calib_mode=False)
        else:
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(cpu_threads(self.threads))
            if self.run_mode == "mkldnn":
                config.enable_mkldnn()
                config.set_mkldnn_cache_capacity(10)
            else:  # Paddle Inference 2.6 switches oneDNN on by default on the CPU: "paddle" means plain kernels
                config.disable_mkldnn()
        config.disable_glog_info()
        config.switch_ir_optim(True)
        config.enable_memory_optim()
        try:
            return inference.create_predictor(config)
        finally:
            restore_math_threads()

    def run(self, feed):
        return self._thread.submit(self._run_with_recovery, feed).result()

    def _run_with_recovery(self, feed):
        import warnings

        for attempt in range(3):  # oneDNN, a fresh oneDNN predictor, then plain kernels
            try:
                return self._run(feed)
            except RuntimeError as exc:
                if self.run_mode != "mkldnn" or self.ONEDNN_FAILURE not in str(exc):
                    raise
                if attempt == 1:
                    self.run_mode = "paddle"
                warnings.warn(f"Paddle Inference (oneDNN) failed: {self.ONEDNN_FAILURE!r}; running the batch again "
                              + ("on a fresh predictor" if attempt == 0 else
                                 "and the rest of the run on plain kernels (run_mode=paddle)"), RuntimeWarning)
                self.predictor = self._create()

    def _run(self, feed):
        for name in self.input_names:
            self.predictor.get_input_handle(name).copy_from_cpu(feed[name])
        try:
            self.predictor.run()
        finally:
            restore_math_threads()
        return [self.predictor.get_output_handle(n).copy_to_cpu() for n in self.predictor.get_output_names()]


def ensure_onnx_model(model_dir):
    """``model_dir/inference.onnx``, converted with paddle2onnx first when it is missing or older than the Paddle
    model (the ``onnxruntime`` and ``openvino`` backends both run it); raises
    :class:`~tutorial_lib.predict.onnx_export.UnsupportedModelError` for a model paddle2onnx cannot convert."""
    from . import onnx_export

    path = onnx_export.onnx_path(model_dir)
    if not onnx_export.is_current(model_dir):
        if not os.access(model_dir, os.W_OK):
            raise UserError(f"{model_dir} is read-only and has no current inference.onnx; convert it elsewhere "
                            "with python -m tutorial_lib --paddle2onnx --paddle_model_dir DIR --onnx_model_dir "
                            "OUT and use OUT as model_dir")
        if onnx_export.known_unsupported(model_dir) is None:
            print(f"converting {model_dir} to ONNX (paddle2onnx, once; kept as {path.name})")
        onnx_export.convert_to_onnx(model_dir)
    return path


class OnnxRuntimeBackend:
    """ONNX Runtime on an ONNX file (``inference.onnx`` or ``inference_int8.onnx``)."""

    @staticmethod
    def require_runtime():
        try:
            import onnxruntime
        except ImportError:
            raise UserError("run_mode=onnxruntime needs onnxruntime (pip install onnxruntime paddle2onnx)") from None
        return onnxruntime

    def __init__(self, path, device, threads=None):
        ort = self.require_runtime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = cpu_threads(threads)
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if device.startswith("gpu"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise UserError("run_mode=onnxruntime on a GPU needs onnxruntime-gpu (CUDAExecutionProvider)")
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(device.split(":")[1].split(",")[0])}))
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def run(self, feed):
        return self.session.run(None, {name: feed[name] for name in self.input_names})


class OpenVINOBackend:
    """OpenVINO on an ONNX file (the model the ``onnxruntime`` backend runs), compiled for the CPU plugin.

    Precision is pinned to fp32: on CPUs with bf16 support (AVX512_BF16, AMX) the CPU plugin otherwise runs in
    bfloat16, which moves boxes and scores beyond parity with Paddle Inference (27 of the 50 detections of
    tests/test_openvino.py's smoke model no longer match). One infer request serves every call, under a lock (a
    request cannot run twice at once; the Paddle backend serialises the same way).
    """

    @staticmethod
    def require_runtime():
        try:
            import openvino
        except ImportError:
            raise UserError("run_mode=openvino needs OpenVINO (pip install openvino==2024.6.0 paddle2onnx)") from None
        return openvino

    def __init__(self, path, device, threads=None):
        import threading

        openvino = self.require_runtime()
        import openvino.properties as props
        import openvino.properties.hint as hints
        core = openvino.Core()
        config = {props.inference_num_threads: cpu_threads(threads),
                  hints.inference_precision: openvino.Type.f32,
                  hints.performance_mode: hints.PerformanceMode.LATENCY}
        self.compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        self.input_names = [port.get_any_name() for port in self.compiled.inputs]
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()

    def run(self, feed):
        with self._lock:
            # in the model's output order; share_outputs=False (the default): copies, not views of the request's
            # buffers, which the next call overwrites
            return list(self._request.infer({name: feed[name] for name in self.input_names}).to_tuple())
