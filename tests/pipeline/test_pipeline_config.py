import pytest
import yaml

from tutorial_lib.errors import UserError
from tutorial_lib.pipeline.config import get_pipeline_config, load_pipeline_config


def test_get_pipeline_config_writes_paddlex_layout(tmp_path):
    path = get_pipeline_config("instance_segmentation", save_path=tmp_path / "my_path")
    assert path == tmp_path / "my_path" / "instance_segmentation.yaml"
    cfg = yaml.safe_load(path.read_text())
    assert cfg == {"pipeline_name": "instance_segmentation",
                   "SubModules": {"InstanceSegmentation": {"module_name": "instance_segmentation",
                                                           "model_name": "Mask-RT-DETR-S", "model_dir": None,
                                                           "batch_size": 1, "threshold": 0.5}}}
    assert load_pipeline_config(path) == cfg


def test_model_dir_is_resolved_relative_to_the_yaml(tmp_path):
    path = get_pipeline_config(save_path=tmp_path)
    model = tmp_path / "models" / "inference"
    model.mkdir(parents=True)
    (model / "inference.yml").write_text("model_name: x\n")
    cfg = yaml.safe_load(path.read_text())
    cfg["SubModules"]["InstanceSegmentation"]["model_dir"] = "models/inference"
    path.write_text(yaml.safe_dump(cfg))
    assert load_pipeline_config(path)["SubModules"]["InstanceSegmentation"]["model_dir"] == str(model)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["SubModules"]["InstanceSegmentation"].update(model_dir="nowhere"), "not an exported model"),
    (lambda c: c["SubModules"]["InstanceSegmentation"].update(threshhold=0.3), "did you mean threshold"),
    (lambda c: c["SubModules"]["InstanceSegmentation"].update(threshold=2), r"in \[0, 1\]"),
    (lambda c: c["SubModules"]["InstanceSegmentation"].update(batch_size=0), ">= 1"),
    (lambda c: c.update(pipeline_name="instance_segmentaton"), "did you mean 'instance_segmentation'"),
    (lambda c: c.pop("SubModules"), "needs SubModules.InstanceSegmentation"),
    (lambda c: c.update(Extra=1), "unknown key"),
])
def test_invalid_pipeline_configs(tmp_path, edit, message):
    path = get_pipeline_config(save_path=tmp_path)
    cfg = yaml.safe_load(path.read_text())
    edit(cfg)
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(UserError, match=message):
        load_pipeline_config(path)


def test_unknown_names_and_files(tmp_path):
    with pytest.raises(UserError, match="unknown pipeline"):
        load_pipeline_config("object_detection")
    with pytest.raises(UserError, match="does not exist"):
        load_pipeline_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("pipeline_name: [\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_pipeline_config(bad)
