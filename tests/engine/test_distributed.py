"""Data-parallel training on the CPU: 2 processes over gloo (paddle.distributed.spawn), as Global.device=gpu:0,1
runs them over NCCL.

- A tiny regression model without batch-dependent layers (its BatchNorm is frozen) trained by the engine's Trainer
  on the engine's sharded batches: both processes end with identical weights, and 2 processes x batch 2 match
  1 process x batch 4 in loss and weights (float32 sums in another order: rtol 1e-5).
- The whole engine (train mode of the CPU model) in 2 processes: outputs written once, by process 0.
"""
import numpy as np
import pytest

from tutorial_lib.errors import UserError

SAMPLES, STEPS_PER_EPOCH, EPOCHS = 16, 4, 2


class ArraySplit:
    """What train_batches reads of a dataset split: ``len`` and ``roidbs`` (here one sample = x, y)."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(SAMPLES, 4)).astype("float32")
        y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], "float32") + 0.3).astype("float32")
        self.roidbs = [{"x": x[i], "y": y[i]} for i in range(SAMPLES)]

    def __len__(self):
        return len(self.roidbs)


def train_tiny(batch_size):
    """Train the tiny model in this process (one of several when started by spawn); return its weights and the
    per-epoch mean losses."""
    from tutorial_lib.engine import distributed
    from tutorial_lib.engine.data import train_batches
    from tutorial_lib.engine.trainer import Trainer
    from tutorial_lib.paddle_env import import_paddle

    paddle = import_paddle()  # (not ppdet: this model needs none)
    distributed.init_distributed()
    rank, world = distributed.rank(), distributed.world_size()

    class Tiny(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.fc1 = paddle.nn.Linear(4, 8)
            frozen = paddle.ParamAttr(learning_rate=0.0, trainable=False)
            self.bn = paddle.nn.BatchNorm1D(8, weight_attr=frozen, bias_attr=frozen, use_global_stats=True)
            self.fc2 = paddle.nn.Linear(8, 1)

        def forward(self, inputs):
            pred = self.fc2(paddle.nn.functional.relu(self.bn(self.fc1(inputs["x"]))))
            loss = ((pred - inputs["y"]) ** 2).mean()
            return {"loss": loss, "loss_abs": (pred - inputs["y"]).abs().mean()}

    paddle.seed(0)
    model = Tiny()
    optimizer = paddle.optimizer.Momentum(0.05, momentum=0.9, parameters=[p for p in model.parameters()
                                                                          if not p.stop_gradient],
                                          grad_clip=paddle.nn.ClipGradByGlobalNorm(1.0))
    split = ArraySplit()

    def collate(samples):
        return {k: paddle.to_tensor(np.stack([s[k] for s in samples])) for k in ("x", "y")}

    def loader(epoch, start):
        return train_batches(split, lambda s: s, collate, batch_size, 0, epoch, start, rank=rank, world_size=world)

    train_model = paddle.DataParallel(model) if world > 1 else model
    trainer = Trainer(model, optimizer, loader, epochs=EPOCHS, steps_per_epoch=SAMPLES // (batch_size * world),
                      seed=0, train_model=train_model)
    history = trainer.train()
    return rank, {k: v.numpy() for k, v in model.state_dict().items()}, [r["loss"] for r in history]


@pytest.fixture(scope="module")
def two_processes():
    from tutorial_lib.engine import distributed

    return distributed.spawn(train_tiny, (2,), nprocs=2, device="cpu")


def test_both_processes_hold_identical_weights(two_processes):
    (r0, w0, loss0), (r1, w1, loss1) = two_processes
    assert (r0, r1) == (0, 1)
    for name in w0:
        np.testing.assert_array_equal(w0[name], w1[name], err_msg=name)
    assert loss0 == loss1  # losses are averaged over the processes before they are logged


def test_two_processes_of_batch_2_match_one_process_of_batch_4(two_processes):
    _, weights, losses = two_processes[0]
    _, single, single_losses = train_tiny(4)
    np.testing.assert_allclose(losses, single_losses, rtol=1e-5)
    assert single_losses[-1] < single_losses[0]  # it did train
    for name in single:
        np.testing.assert_allclose(weights[name], single[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_shards_cover_the_global_batch_once():
    """3 processes x batch 2: process r takes the r-th pair of each global batch of 6 (the 1-process order)."""
    from tutorial_lib.engine.data import epoch_batches, train_batches

    class IndexSplit:
        roidbs = [{"i": i} for i in range(SAMPLES)]

        def __len__(self):
            return SAMPLES

    picked = [[b for _, b in train_batches(IndexSplit(), lambda s: s, lambda ss: [s["i"] for s in ss], 2, 5, 1,
                                           rank=r, world_size=3)] for r in range(3)]
    expected = epoch_batches(SAMPLES, 6, 5, 1)
    assert len(expected) == SAMPLES // 6 and all(len(p) == len(expected) for p in picked)
    for step, batch in enumerate(expected):
        assert picked[0][step] + picked[1][step] + picked[2][step] == batch


def test_process_environments_per_device():
    from tutorial_lib.engine.distributed import process_envs
    from tutorial_lib.engine.train import spawn_train

    gpus = process_envs(4, "gpu:0,1,2,3")
    assert [e["PADDLE_TRAINER_ID"] for e in gpus] == ["0", "1", "2", "3"]
    assert [e["FLAGS_selected_gpus"] for e in gpus] == ["0", "1", "2", "3"]
    assert {e["PADDLE_TRAINERS_NUM"] for e in gpus} == {"4"} and len({e["PADDLE_CURRENT_ENDPOINT"] for e in gpus}) == 4
    assert gpus[2]["PADDLE_TRAINER_ENDPOINTS"].split(",")[2] == gpus[2]["PADDLE_CURRENT_ENDPOINT"]
    assert [e["FLAGS_selected_xpus"] for e in process_envs(2, "xpu:2,3")] == ["2", "3"]
    assert {e["PADDLE_DISTRI_BACKEND"] for e in process_envs(2, "cpu")} == {"gloo"}
    with pytest.raises(UserError, match="paddle.distributed.launch --devices 0,1"):
        spawn_train({"Global": {"device": "npu:0,1"}})


def test_engine_trains_in_two_processes_and_only_process_0_writes(tmp_path):
    import tutorial_lib as tl
    from tutorial_lib.config import load_config
    from tutorial_lib.engine.data import Split
    from tutorial_lib.engine.train import spawn_train

    data = tmp_path / "data"
    tl.generate_sample(data, num_train=4, num_val=2, image_size=128, seed=0, progress=False)
    out = tmp_path / "run"
    cfg = load_config("MaskRCNN-ResNet18-FPN-S", {
        "Global.mode": "train", "Global.dataset_dir": str(data), "Global.output": str(out), "Global.seed": 0,
        "Train.epochs_iters": 1, "Train.batch_size": 1, "Train.learning_rate": 0.01, "Train.log_interval": 1,
        "Train.export_best": False, "Train.warmup_steps": 0, "Architecture.input_size": 128,
        "Architecture.schedule.type": "Constant"})  # a piecewise schedule needs more iterations than this run
    result = spawn_train(cfg, 2, device="cpu")
    assert result["done_flag"] is True and len(result["history"]) == 1
    steps = len(Split(data, "train", allow_empty=False)) // 2
    log = (out / "train.log").read_text()
    assert f"1 epochs x {steps} iterations, batch 1 in 2 processes" in log
    assert [line.split("] ", 1)[1].split(" lr=")[0] for line in log.splitlines() if " iter " in line] == \
        [f"epoch 1/1 iter {i}/{steps}" for i in range(1, steps + 1)]  # one process logged, once per iteration
    assert log.count("eval epoch 1:") == 1 and log.count("done:") == 1
    assert sorted(p.name for p in out.iterdir()) == ["best_model", "config.yaml", "epoch_1", "metrics.csv",
                                                      "train.log", "train_result.json"]
    with pytest.raises(UserError, match="must be picklable"):
        spawn_train(cfg, 2, device="cpu", callback=lambda info: None)
