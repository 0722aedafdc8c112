"""Official weights end to end, against a server on 127.0.0.1 that serves the oracle's ``s_perturbed.pdparams``
under the official Mask-RT-DETR-S file name (``$TUTORIAL_LIB_WEIGHTS_MIRROR``): a fine-tune from the URL (strict
loading, only the class-dependent layers re-initialised for 10 classes), export, and prediction with the exported
model equal to the dygraph model; the pipeline running the model its YAML names, the notice and fallback when
the weights are unreachable, and the error when ``model_name`` and ``model_dir`` disagree."""
import functools
import http.server
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

import tutorial_lib as tl
from conftest import REPO, SHARED
from tutorial_lib.errors import UserError
from tutorial_lib.models.registry import official_weights_url

PERTURBED = SHARED / "oracle" / "mask_rtdetr" / "s_perturbed.pdparams"
pytestmark = pytest.mark.skipif(not PERTURBED.is_file(), reason="../shared/oracle/mask_rtdetr/s_perturbed.pdparams "
                                "is not beside the project")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """A loopback server holding s_perturbed.pdparams under the official S file name; counts its requests."""
    root = tmp_path_factory.mktemp("mirror")
    name = Path(urlparse(official_weights_url("Mask-RT-DETR-S")).path).name
    shutil.copyfile(PERTURBED, root / name)
    hits = []

    class Handler(_Quiet):
        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


@pytest.fixture
def use_mirror(mirror, monkeypatch, tmp_path):
    monkeypatch.setenv("TUTORIAL_LIB_WEIGHTS_MIRROR", mirror[0])
    monkeypatch.setenv("TUTORIAL_LIB_CACHE", str(tmp_path / "cache"))
    return mirror


def test_registry_lists_official_weights_for_every_size():
    for size in "SMLXH":
        url = official_weights_url(f"Mask-RT-DETR-{size}")
        assert url.startswith("https://") and url.endswith(f"mask_rtdetr_hgnetv2_{size.lower()}_6x_coco.pdparams")


def test_finetune_from_the_official_url_then_exported_equals_dygraph(use_mirror, sample_dir, tmp_path, capsys):
    from tutorial_lib.engine.common import load_trained, predict_split
    from tutorial_lib.engine.data import Split
    from tutorial_lib.predict import Predictor

    url = official_weights_url("Mask-RT-DETR-S")
    out = tmp_path / "train"
    tl.run("Mask-RT-DETR-S-Smoke", {"Global.mode": "train", "Global.dataset_dir": str(sample_dir),
                                    "Global.output": str(out), "Train.pretrain_weight_path": url,
                                    "Train.epochs_iters": 1, "Train.batch_size": 2, "Train.eval_interval": 1,
                                    "Train.log_interval": 1})
    log = (out / "train.log").read_text(encoding="utf-8")
    assert "643 tensors loaded" in log and "re-initialised" in log, log[-2000:]
    assert any(p.endswith(Path(urlparse(url).path).name) for p in use_mirror[1])

    adapter, model, meta = load_trained(out / "best_model" / "best_model", tl.load_config("Mask-RT-DETR-S-Smoke"))
    split = Split(sample_dir, "val", allow_empty=True)
    dygraph = list(predict_split(model, adapter, split, meta["num_classes"]).values())
    predictor = Predictor(out / "best_model" / "inference", threshold=0.0)
    for record, expected in list(zip(split.roidbs, dygraph))[:3]:
        result = next(predictor.predict(record["im_file"]))
        assert len(result) == len(expected) > 0
        np.testing.assert_allclose(result.instances.scores, expected.scores, atol=1e-4)
        np.testing.assert_allclose(result.instances.boxes, expected.boxes, atol=0.05)
        ious = [np.logical_and(a, b).sum() / max(1, np.logical_or(a, b).sum())
                for a, b in zip(result.masks, expected.masks) if a.any() or b.any()]
        assert not ious or min(ious) >= 0.99


def test_pipeline_runs_the_model_its_yaml_names(use_mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("TUTORIAL_LIB_HOME", str(tmp_path / "home"))
    pipeline = tl.create_pipeline("instance_segmentation")  # the default YAML: model_name Mask-RT-DETR-S
    assert (pipeline.model_name, pipeline.model_source) == ("Mask-RT-DETR-S", "official weights")
    assert len(pipeline.labels) == 80  # COCO classes, as the official weights have
    result = next(pipeline.predict(str(REPO / "data" / "remotesensing_demo.png"), threshold=0.0))
    assert result.model_name == "Mask-RT-DETR-S" and len(result) == 100  # num_top_queries of the recipe
    # cached: a second pipeline neither downloads nor exports again
    hits = len(use_mirror[1])
    again = tl.create_pipeline("instance_segmentation")
    assert again.predictor.model_dir == pipeline.predictor.model_dir and len(use_mirror[1]) == hits


def test_unreachable_official_weights_fall_back_with_a_notice(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TUTORIAL_LIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TUTORIAL_LIB_WEIGHTS_MIRROR", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("TUTORIAL_LIB_HOME", str(tmp_path / "home"))
    # the fallback is the shipped quick-start model, exported into the empty home in seconds
    pipeline = tl.create_pipeline("instance_segmentation")
    notice = [line for line in capsys.readouterr().out.splitlines() if line.startswith("notice:")]
    assert len(notice) == 1 and "Mask-RT-DETR-S" in notice[0] and "MaskRCNN-ResNet18-FPN-S" in notice[0]
    assert (pipeline.model_name, pipeline.model_source) == ("MaskRCNN-ResNet18-FPN-S", "quick-start model")


def test_model_name_that_contradicts_model_dir_is_an_error(shipped_model, tmp_path):
    cfg = tl.get_pipeline_config("instance_segmentation")
    cfg["SubModules"]["InstanceSegmentation"]["model_dir"] = str(shipped_model[0])
    with pytest.raises(UserError, match="model_name is Mask-RT-DETR-S but model_dir .* holds MaskRCNN-ResNet18-FPN-S"):
        tl.create_pipeline(cfg)
    cfg["SubModules"]["InstanceSegmentation"]["model_name"] = "MaskRCNN-ResNet18-FPN-S"
    assert tl.create_pipeline(cfg).model_source == "model_dir"
