"""Deployment without the training stack: importing the predictor, the pipeline and the serving app, and predicting
with an exported model on every CPU backend, loads neither ppdet nor ``tutorial_lib.engine`` (checked in a fresh
interpreter, where ``sys.modules`` shows everything that was really imported)."""
import json
import shutil
import subprocess
import sys

from conftest import REPO

PROBE = r"""
import json, sys
import tutorial_lib.predict, tutorial_lib.pipeline
from tutorial_lib.serving import create_app
from tutorial_lib.predict import Predictor
counts = {}
for run_mode in ("paddle", "mkldnn", "onnxruntime", "openvino"):
    result = next(Predictor(sys.argv[1], run_mode=run_mode, threshold=0.0).predict(sys.argv[2]))
    counts[run_mode] = len(result)
pipeline = tutorial_lib.create_pipeline(model_dir=sys.argv[1])  # the one create_pipeline, a LocalModel
create_app(pipeline)
loaded = sorted(m for m in sys.modules if m == "ppdet" or m.startswith(("ppdet.", "tutorial_lib.engine")))
print(json.dumps({"counts": counts, "loaded": loaded, "paddle": "paddle" in sys.modules}))
"""


def test_predicting_with_an_exported_model_imports_no_training_code(rtdetr_export, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(rtdetr_export, model_dir)
    out = subprocess.run([sys.executable, "-c", PROBE, str(model_dir), str(REPO / "data" / "remotesensing_demo.png")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["paddle"], "the probe should have run Paddle Inference"
    assert report["counts"] == {"paddle": 50, "mkldnn": 50, "onnxruntime": 50, "openvino": 50}  # the smoke config's top-k
    assert report["loaded"] == [], f"deployment imported training code: {report['loaded']}"
