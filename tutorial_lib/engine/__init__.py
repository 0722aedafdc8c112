"""Step 5: train, evaluate and export instance-segmentation models (paddledet models; see :mod:`.families`).

Each mode is one function taking the resolved config (``tutorial_lib.run`` dispatches ``Global.mode``):
:func:`tutorial_lib.engine.train.train`, :func:`tutorial_lib.engine.evaluate.evaluate`,
:func:`tutorial_lib.engine.export.export`. Training is a small loop (:mod:`.trainer`) extended by hooks
(:mod:`.hooks`: evaluation, checkpoints, logging, weight EMA (:mod:`.ema`), outputs), on one device or
data-parallel on several. Importing this package does not import paddle.
"""
