import os
import subprocess
import sys

import pytest

from conftest import REPO


def cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "tutorial_lib", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, env=env, timeout=120)


@pytest.mark.parametrize("args, message", [
    ([], "nothing to do"),
    (["-c", "Mask-RT-DETR-S", "-o", "Train.learnin_rate=0.1"], "did you mean 'Train.learning_rate'"),
    (["-c", "Mask-RT-DETR-Q"], "neither a YAML file nor a registered model"),
    (["-c", "Mask-RT-DETR-S", "-o", "Global.device=gpu:0,1,2,3"], "Global.device=cpu"),
    (["-c", "Mask-RT-DETR-S", "-o", "Global.mode"], "Section.key=value"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--serve"], "need --pipeline"),
    (["--pipeline", "nope_pipeline"], "unknown pipeline"),
    (["sample", "--preset", "huge"], "unknown sample preset 'huge'"),
])
def test_user_errors_exit_2_with_one_line(args, message):
    result = cli(*args)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("Warning:")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.stderr


def test_debug_flag_shows_traceback():
    result = cli("-c", "Mask-RT-DETR-S", "-o", "Train.learnin_rate=0.1", "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_models_and_pipelines_commands():
    models = cli("models")
    assert models.returncode == 0
    rows = models.stdout.splitlines()[1:]
    assert [r.split()[0] for r in rows][:5] == [f"Mask-RT-DETR-{s}" for s in "HXLMS"]
    assert len(rows) == 10
    assert "instance_segmentation" in cli("pipelines").stdout


def test_sample_command_writes_dataset(tmp_path):
    out = tmp_path / "ds"
    result = cli("sample", "--output", str(out), "--num_train", "4", "--num_val", "2", "--image_size", "96")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"{i:05d}.jpg" for i in range(6)]
    again = cli("sample", "--output", str(out), "--num_train", "5", "--num_val", "2", "--image_size", "96")
    assert again.returncode == 2 and "other parameters" in again.stderr
