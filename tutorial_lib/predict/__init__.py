"""Step 6: predict with an exported model (``inference.pdmodel`` + ``inference.pdiparams`` + ``inference.yml``).

    from tutorial_lib.predict import Predictor
    predictor = Predictor("output/best_model/inference", device="cpu", run_mode="mkldnn")
    for result in predictor.predict("data/remotesensing_demo.png"):   # a path, folder, RGB array or list
        result.print(); result.save_to_img("output/pred"); result.save_to_json("output/pred")

``-o Global.mode=predict -o Predict.model_dir=DIR -o Predict.input=PATH`` does the same from a config and
saves every result (image + JSON) in ``Global.output``. Images are read and predicted one batch at a time.
``run_mode`` picks the inference backend (:mod:`.backends`; ONNX conversion in :mod:`.onnx_export`).
"""
from .predictor import Predictor, make_feed, predict, preprocess
from .backends import RUN_MODES
from .inputs import read_image
from .result import InstanceSegResult, decode_rle, encode_rle

__all__ = ["InstanceSegResult", "Predictor", "RUN_MODES", "decode_rle", "encode_rle", "make_feed", "predict",
           "preprocess", "read_image"]
