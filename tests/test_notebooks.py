"""Execute every notebook with papermill under its smoke parameters and check what it recorded (scrapbook)."""
import papermill as pm
import pytest
import scrapbook as sb

from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))

# Expected recorded values per notebook; a value that is a callable is a predicate.
EXPECTATIONS = {
    "01_choose_pipeline.ipynb": {
        "num_pipelines": 1,
        "num_models": 10,
        "class_names": ["airplane", "storage_tank", "vehicle", "tennis_court", "baseball_diamond", "ship",
                        "harbor", "basketball_court", "ground_track_field", "bridge"],
        "train_images": 8,
        "shown_instances": lambda n: n >= 3,
    },
    "02_quick_experience.ipynb": {
        "num_instances": lambda n: n >= 1,
        "saved_files": ["<stem>_res.json", "<stem>_res.png"],
        "mask_shape": [256, 256],  # smoke: a 256 px training scene of the tiny model
        "labels_known": True,
    },
    "03_choose_model.ipynb": {
        # exact parameter counts of our builds with 10 classes (= the reference's 80-class counts - 35,910)
        "param_counts": {"Mask-RT-DETR-S": 14628134, "Mask-RT-DETR-M": 18787142, "Mask-RT-DETR-L": 32853614,
                         "Mask-RT-DETR-X": 68740334, "Mask-RT-DETR-H": 129982910},
        "timed_models": ["Mask-RT-DETR-S"],
        "forward_ms_positive": True,
        "table_rows": 1,
    },
    "04_data.ipynb": {
        "check_pass": True,
        "num_classes": 10,
        "train_images": 12,
        "val_images": 4,
        "train_annotations": 51,
        "val_annotations": 17,
        "train_background_images": 2,
        "broken_check_pass": False,
        "broken_error_kinds": ["bbox_mismatch", "degenerate_segmentation", "missing_image_file"],
        "labelme_categories": ["airplane", "storage_tank", "vehicle", "tennis_court", "baseball_diamond", "ship",
                               "harbor", "basketball_court", "ground_track_field", "bridge"],
        "labelme_check_pass": True,
        "voc_categories": ["airplane", "baseball_diamond", "basketball_court", "harbor", "storage_tank",
                           "tennis_court", "vehicle"],
        "voc_split": [13, 3],
        "split_counts": [13, 3],
        "undo_restored": True,
    },
    "05_train_and_evaluate.ipynb": {
        "model": "MaskRCNN-ResNet18-FPN-S",
        "train_done": True,
        "history_epochs": 2,
        "loss_first_last": lambda v: len(v) == 2 and 0 < v[1] < v[0],
        "best_model_files": ["inference.pdiparams", "inference.pdiparams.info", "inference.pdmodel", "inference.yml"],
        "metric_keys": ["AP", "AP50", "AP75", "APl", "APm", "APs",
                        "bbox_AP", "bbox_AP50", "bbox_AP75", "bbox_APl", "bbox_APm", "bbox_APs"],
        "mask_ap": lambda v: 0.0 <= v <= 1.0,
        "per_class_rows": 10,
        "confusion_shape": [11, 11],
        "lr_sweep": [0.005, 0.01, 0.02],
        "epoch_sweep": [1, 2, 3, 4],
        "sweep_aps": lambda v: len(v) == 7 and all(0.0 <= a <= 1.0 for a in v),
    },
    "06_predict.ipynb": {
        "model_files": ["inference.pdiparams", "inference.pdiparams.info", "inference.pdmodel", "inference.yml"],
        "result_keys": ["boxes", "input_path", "masks", "page_index"],
        "demo_mask_shape": [512, 512],
        "demo_instances": lambda n: n >= 0,
        "folder_results": 5,
        "array_input_is_none": True,
        "run_modes_agree": True,
        "mode_outputs": ["remotesensing_demo_res.json", "remotesensing_demo_res.png"],
    },
    "07_integrate.ipynb": {
        "config_model_dir_set": True,
        "predict_files": ["<stem>_res.json", "<stem>_res.png"],
        "mosaic_shape": [512, 512],
        "geojson_features": lambda n: n >= 1,
        "sliced_instances": lambda n: n >= 1,
        "serving_instances": lambda n: n >= 1,
        "geojson_matches_sliced": True,
        "geojson_crs": "EPSG:32633",
        "serving_status": [200, 0],
        "bad_request_code": 400,
        "serving_bare_matches": True,
        "serving_stopped": True,
        "hpi_rcnn_onnx": "no ONNX:",
        "hpi_onnx_same_detections": True,
    },
}


def test_every_notebook_has_expectations():
    assert NOTEBOOKS, "no notebooks found"
    assert sorted(EXPECTATIONS) == [nb.name for nb in NOTEBOOKS]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_smoke_run(notebook, tmp_path, request):
    if notebook.name in ("02_quick_experience.ipynb", "07_integrate.ipynb"):
        request.getfixturevalue("quickstart_model")  # train the tiny quick-start model once, in the session cache
    for cell in __import__("json").loads(notebook.read_text())["cells"]:
        assert not cell.get("outputs"), f"{notebook.name} is committed with outputs"
    out = tmp_path / notebook.name
    pm.execute_notebook(str(notebook), str(out), kernel_name="python3", progress_bar=False, cwd=str(notebook.parent),
                        parameters={"smoke": True, "output_dir": str(tmp_path / "output"), "seed": 0, "device": "cpu"})
    scraps = sb.read_notebook(str(out)).scraps.data_dict
    for name, expected in EXPECTATIONS[notebook.name].items():
        assert name in scraps, f"{notebook.name} did not record {name}"
        if callable(expected):
            assert expected(scraps[name]), f"{notebook.name}: {name}={scraps[name]!r}"
        else:
            assert scraps[name] == expected, f"{notebook.name}: {name}"
