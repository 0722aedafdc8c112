"""The typed steps (tutorial_lib.steps) run exactly what their CLI twin runs: the same resolved config, the same
check report; and their results carry the run's numbers under names."""
import json
import shlex

import pytest

from tutorial_lib import steps
from tutorial_lib.cli import main as cli_main
from tutorial_lib.config import load_config
from tutorial_lib.config.loader import parse_override

MODEL = "MaskRCNN-ResNet18-FPN-S"


@pytest.fixture
def dataset(tiny_dataset):
    return tiny_dataset


def command_overrides(command):
    """``(model, ["K=V", ...])`` of a ``python -m tutorial_lib -c MODEL -o ...`` line."""
    words = shlex.split(command)
    assert words[:4] == ["python", "-m", "tutorial_lib", "-c"]
    return words[4], [words[i + 1] for i, w in enumerate(words) if w == "-o"]


@pytest.mark.parametrize("value", [True, None, 0.001, 7, "data/my scenes/a b.png", ["a.png", "b c.png"]])
def test_override_text_reads_back_as_the_value(value):
    path, parsed = parse_override(f"Predict.input={steps.override_text(value)}")
    assert parsed == value


def test_check_dataset_equals_its_cli_twin(dataset, tmp_path):
    result = steps.check_dataset(MODEL, dataset, output=tmp_path / "api")
    assert result.check_pass and result.attributes["train_images"] == 8
    assert "PASSED" in result.summary()
    model, overrides = command_overrides(result.command)
    assert model == MODEL and "Global.mode=check_dataset" in overrides
    twin = [o.replace(str(tmp_path / "api"), str(tmp_path / "cli")) for o in overrides]
    assert cli_main(["-c", model] + [a for o in twin for a in ("-o", o)]) == 0
    api = json.loads((tmp_path / "api" / "check_dataset_result.json").read_text())
    cli = json.loads((tmp_path / "cli" / "check_dataset_result.json").read_text())
    assert json.dumps(api).replace("/api/", "/cli/") == json.dumps(cli)
    assert result.to_paddlex_json() == api


def test_train_evaluate_export_predict(dataset, tmp_path):
    import yaml

    run = steps.train(MODEL, dataset, output=tmp_path / "train", epochs=1, learning_rate=0.01, seed=0,
                      options={"Architecture.input_size": 128, "Train.warmup_steps": 1})
    model, overrides = command_overrides(run.command)
    ran = yaml.safe_load((run.output / "config.yaml").read_text())
    assert ran == json.loads(json.dumps(load_config(model, overrides)))  # the CLI twin's config, key for key
    assert "Train.epochs_iters=1" in overrides and "Train.learning_rate=0.01" in overrides
    assert run.done and run.best_epoch == 1 and [r["epoch"] for r in run.history] == [1]
    assert run.best_mask_ap == run.history[0]["mask_AP"] and run.best_weights.is_file()
    assert run.to_paddlex_json()["done_flag"] is True and "history" not in run.to_paddlex_json()
    assert run.labels[0] == "airplane"

    evaluated = steps.evaluate(MODEL, dataset, run.best_weights, output=tmp_path / "eval",
                               options={"Architecture.input_size": 128})
    assert evaluated.num_images == 4 and evaluated.mask_ap == evaluated.metrics["AP"]
    assert "Evaluate.weight_path=" + str(run.best_weights) in command_overrides(evaluated.command)[1]

    exported = steps.export(MODEL, run.best_weights, output=tmp_path / "export",
                            options={"Architecture.input_size": 128})
    assert (exported.model_dir / "inference.yml").is_file()

    images = sorted((dataset / "images").iterdir())[:2]
    predicted = steps.predict(exported.model_dir, [str(p) for p in images], output=tmp_path / "pred", threshold=0.0)
    assert len(predicted.results) == 2 and all(p.endswith("_res.png") for p in predicted.images)
    assert "-c MaskRCNN-ResNet18-FPN-S" in predicted.command and "Global.mode=predict" in predicted.command
