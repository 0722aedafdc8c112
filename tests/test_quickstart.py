"""The quick-start model: the shipped weights (size, provenance, recorded metrics re-measured), their 8-bit packing,
and a quick-start training that is interrupted and then resumed without leaving temporary folders."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tutorial_lib import providers, quickstart
from tutorial_lib.models.registry import CPU_MODEL

PACKAGE = Path(quickstart.__file__).parent


def test_the_shipped_asset_is_named_once():
    """One constant (``quickstart.SHIPPED_ASSET``) names the shipped weights: the default provider reads it, and
    no other module spells an ``.npz`` name."""
    assert quickstart.SHIPPED == PACKAGE / "assets" / quickstart.SHIPPED_ASSET
    assert providers.ShippedModel().asset == quickstart.SHIPPED and providers.ShippedModel.name == quickstart.MODEL
    named = re.compile(r"[\w{}-]+\.npz\b")
    spelled = sorted(path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py")
                     if named.search(path.read_text(encoding="utf-8")))
    # quickstart.py names the quick-start asset, models/shipped.py the general ones (general_asset)
    assert spelled == ["models/shipped.py", "quickstart.py"], f"an asset name is spelled elsewhere: {spelled}"


def test_packing_keeps_every_weight_within_half_a_step(tmp_path):
    rng = np.random.default_rng(0)
    state = {"conv.weight": rng.normal(0, 0.05, (64, 32, 3, 3)).astype(np.float32),
             "fc.weight": rng.normal(0, 1.0, (256, 128)).astype(np.float32),
             "zero.weight": np.zeros((64, 64), np.float32),
             "bn._mean": rng.normal(0, 1, 64).astype(np.float32),
             "step": np.array([7], np.int64)}
    path = quickstart.pack_weights(state, tmp_path / "w.npz", {"meta": {"x": 1}})
    back, info = quickstart.unpack_weights(path)
    assert info == {"meta": {"x": 1}} and set(back) == set(state)
    for name in ("conv.weight", "fc.weight"):
        rows = state[name].reshape(state[name].shape[0], -1)
        step = np.abs(rows).max(1, keepdims=True) / 127.0
        err = np.abs(back[name].reshape(rows.shape) - rows)
        assert back[name].dtype == np.float32 and np.all(err <= step / 2 + 1e-7)
        assert err.max() > 0  # really quantised
    for name in ("zero.weight", "bn._mean", "step"):
        np.testing.assert_array_equal(back[name], state[name])


@pytest.mark.skipif(not quickstart.SHIPPED.is_file(), reason="no shipped quick-start model in this checkout")
def test_shipped_model_is_small_documented_and_measures_what_it_records(tmp_path):
    from tutorial_lib.data.sample import generate_sample

    assert quickstart.SHIPPED.stat().st_size <= 20 * 2 ** 20
    _, info = quickstart.unpack_weights(quickstart.SHIPPED)
    assert info["meta"]["model_name"] == CPU_MODEL and len(info["meta"]["label_list"]) == 10
    assert {"command", "seed", "data", "packing", "metrics", "metrics_float32"} <= set(info)
    data = info["data"]
    dataset = generate_sample(tmp_path / "data", preset=data["preset"], num_train=data["num_train"],
                              seed=data["seed"], progress=False)["dataset_dir"]
    model_dir = quickstart.export_shipped(tmp_path / "inference")
    assert json.loads((model_dir / "provenance.json").read_text())["command"] == info["command"]
    measured = quickstart.evaluate_exported(model_dir, dataset)
    for key, value in info["metrics"].items():
        assert measured[key] == pytest.approx(value, abs=1e-6), key
    # packing costs little accuracy
    assert info["metrics"]["AP50"] >= info["metrics_float32"]["AP50"] - 0.02


def test_interrupted_quickstart_training_resumes_and_leaves_no_temp_folders(tmp_path, capsys):
    from tutorial_lib.config import load_config
    from tutorial_lib.data.sample import generate_sample
    from tutorial_lib.engine.train import train

    home = tmp_path / "home"
    root = quickstart.quickstart_root(epochs=1, num_train=8, home=home)
    dataset = generate_sample(root / "data", preset="ci", num_train=8, seed=quickstart.SEED,
                              progress=False)["dataset_dir"]

    def stop_early(info):
        if info["global_step"] == 2:
            raise KeyboardInterrupt

    cfg = load_config(CPU_MODEL, {"Global.dataset_dir": dataset, "Global.output": str(root / "train"),
                                  "Global.seed": quickstart.SEED, "Train.epochs_iters": 1, "Train.eval_interval": 1})
    with pytest.raises(KeyboardInterrupt):
        train(cfg, callback=stop_early)
    assert (root / "train" / "interrupted" / "interrupted.pdstates").is_file()
    model_dir = quickstart.quickstart_model_dir(epochs=1, num_train=8, home=home)
    assert "resuming" in capsys.readouterr().out
    assert (model_dir / "inference.yml").is_file()
    assert not [p for p in home.rglob(".*")], "temporary folders left behind"
    assert not (root / "train" / "interrupted").exists()


def test_general_weights_unpack_once_into_the_cache_and_say_what_is_shipped(tmp_path):
    """``-o Train.pretrain_weight_path=general``: the shipped general weights as a ``.pdparams`` training loads."""
    import paddle

    rng = np.random.default_rng(1)
    state = {"backbone.conv.weight": rng.normal(0, 0.1, (64, 3, 7, 7)).astype(np.float32),
             "backbone.bn._mean": rng.normal(0, 1, 64).astype(np.float32)}
    assets = tmp_path / "assets"
    quickstart.pack_weights(state, quickstart.general_asset("Tiny", assets), {"meta": {}})
    path = quickstart.general_weights("Tiny", home=tmp_path / "home", assets=assets)
    assert path == tmp_path / "home" / "general" / "Tiny.pdparams" and not list(path.parent.glob("*.partial"))
    loaded = paddle.load(str(path))
    unpacked, _ = quickstart.unpack_weights(quickstart.general_asset("Tiny", assets))
    for name, value in unpacked.items():
        np.testing.assert_array_equal(loaded[name].numpy(), value)
    stamp = path.stat().st_mtime_ns
    assert quickstart.general_weights("Tiny", home=tmp_path / "home", assets=assets).stat().st_mtime_ns == stamp
    with pytest.raises(quickstart.UserError, match=r"no general model is shipped for Other \(shipped: Tiny\)"):
        quickstart.general_weights("Other", home=tmp_path / "home", assets=assets)
