"""Weight EMA (tutorial_lib.engine.ema) against PaddleDetection's ModelEMA semantics, computed by hand with numpy:
the decay schedules, the averaged weights after a few real optimizer steps on a tiny model, which tensors
``filter_no_grad`` leaves alone (frozen parameters) and which it still averages (BatchNorm running statistics),
resuming, and the swap used around evaluation."""
import math

import numpy as np
import pytest

from tutorial_lib.errors import UserError


@pytest.fixture(scope="module")
def paddle():
    from tutorial_lib.models.ppdet_ops import import_ppdet

    return import_ppdet()


def tiny_model(paddle, seed=0):
    """Linear -> BatchNorm1D -> Linear whose weight is frozen (its bias trains)."""
    paddle.seed(seed)
    model = paddle.nn.Sequential(paddle.nn.Linear(3, 4), paddle.nn.BatchNorm1D(4), paddle.nn.Linear(4, 2))
    model[2].weight.stop_gradient = True
    return model


def run_steps(paddle, model, ema, n, seed=1):
    """``n`` SGD steps on random data, ``ema.update`` after each; the state after each step as numpy."""
    rng = np.random.default_rng(seed)
    optimizer = paddle.optimizer.SGD(0.1, parameters=[p for p in model.parameters() if not p.stop_gradient])
    model.train()
    seen = []
    for _ in range(n):
        x = paddle.to_tensor(rng.normal(size=(5, 3)).astype("float32"))
        loss = ((model(x) - 1.0) ** 2).mean()
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        if ema is not None:
            ema.update(model)
        seen.append({k: v.numpy().astype(np.float64) for k, v in model.state_dict().items()})
    return seen


def reference(seen, name, decays, correct):
    """The closed form: shadow_0 = 0, shadow_t+1 = d_t shadow_t + (1 - d_t) w_t (float64)."""
    shadow = np.zeros_like(seen[0][name])
    for d, state in zip(decays, seen):
        shadow = d * shadow + (1 - d) * state[name]
    return shadow / (1 - decays[-1] ** len(seen)) if correct else shadow


def test_decay_schedules_are_paddledetection_s():
    from tutorial_lib.engine.ema import decay_at

    assert decay_at(0, 0.9999, "exponential") == pytest.approx(0.9999 * (1 - math.exp(-1 / 2000)), rel=1e-12)
    assert decay_at(1999, 0.9999, "exponential") == pytest.approx(0.9999 * (1 - math.exp(-1)), rel=1e-12)
    assert decay_at(10 ** 6, 0.9999, "exponential") == pytest.approx(0.9999, rel=1e-9)
    assert decay_at(0, 0.9998, "threshold") == pytest.approx(1 / 10)
    assert decay_at(5, 0.9998, "threshold") == pytest.approx(6 / 15)
    assert decay_at(10 ** 6, 0.9998, "threshold") == 0.9998
    assert decay_at(0, 0.9, "normal") == decay_at(99, 0.9, "normal") == 0.9


@pytest.mark.parametrize("decay, decay_type", [(0.9999, "exponential"), (0.9, "exponential"), (0.6, "normal"),
                                               (0.9998, "threshold")])
def test_averaged_weights_equal_the_closed_form(paddle, decay, decay_type):
    from tutorial_lib.engine.ema import ModelEMA, decay_at

    model = tiny_model(paddle)
    ema = ModelEMA(model, decay=decay, decay_type=decay_type, filter_no_grad=False)
    seen = run_steps(paddle, model, ema, 4)
    decays = [decay_at(t, decay, decay_type) for t in range(4)]
    averaged = ema.state_dict(model)
    assert ema.step == 4 and set(averaged) == set(seen[-1])
    for name in ("0.weight", "0.bias", "1.weight", "1._mean", "1._variance", "2.weight", "2.bias"):
        expected = reference(seen, name, decays, correct=decay_type != "exponential")
        np.testing.assert_allclose(averaged[name].numpy(), expected, rtol=2e-6, atol=1e-7, err_msg=name)
    # the average is not simply the last weights (the test could not tell otherwise)
    assert not np.allclose(averaged["0.weight"].numpy(), seen[-1]["0.weight"], rtol=1e-6, atol=0)


def test_filter_no_grad_keeps_frozen_weights_and_averages_bn_statistics(paddle):
    from tutorial_lib.engine.ema import ModelEMA, bn_running_stat_names, decay_at

    model = tiny_model(paddle)
    assert bn_running_stat_names(model) == ["1._mean", "1._variance"]
    ema = ModelEMA(model, decay=0.9999, decay_type="exponential", filter_no_grad=True)
    assert ema.kept == {"2.weight"}  # frozen, not a running statistic; BN stats are stop_gradient too
    seen = run_steps(paddle, model, ema, 3)
    decays = [decay_at(t, 0.9999, "exponential") for t in range(3)]
    averaged = ema.state_dict(model)
    np.testing.assert_array_equal(averaged["2.weight"].numpy(), model[2].weight.numpy())
    for name in ("1._mean", "1._variance", "2.bias"):
        assert not np.allclose(seen[0][name], seen[-1][name])  # they did change in training
        np.testing.assert_allclose(averaged[name].numpy(), reference(seen, name, decays, False), rtol=2e-6,
                                   atol=1e-7, err_msg=name)
    # without the filter the frozen weight is averaged like the rest (and shrinks by the zero start)
    plain = ModelEMA(model, decay=0.9999, decay_type="exponential", filter_no_grad=False)
    plain.update(model)
    np.testing.assert_allclose(plain.state_dict(model)["2.weight"].numpy(),
                               (1 - decays[0]) * model[2].weight.numpy(), rtol=1e-6)


def test_resume_continues_exactly(paddle):
    from tutorial_lib.engine.ema import ModelEMA

    for decay_type, decay in (("exponential", 0.9999), ("threshold", 0.9998)):
        model = tiny_model(paddle)
        ema = ModelEMA(model, decay=decay, decay_type=decay_type, filter_no_grad=True)
        run_steps(paddle, model, ema, 3)
        saved, states = {k: v.numpy() for k, v in ema.state_dict(model).items()}, ema.states()
        resumed = ModelEMA(model, decay=decay, decay_type=decay_type, filter_no_grad=True)
        resumed.resume(saved, states)
        for e in (ema, resumed):
            e.update(model)
        a, b = ema.state_dict(model), resumed.state_dict(model)
        for name in a:
            if decay_type == "exponential":
                np.testing.assert_array_equal(b[name].numpy(), a[name].numpy(), err_msg=name)
            else:  # the bias correction is undone in float32
                np.testing.assert_allclose(b[name].numpy(), a[name].numpy(), rtol=1e-6, err_msg=name)


def test_swap_for_evaluation_restores_the_training_weights_bit_for_bit(paddle):
    from tutorial_lib.engine.ema import ModelEMA
    from tutorial_lib.engine.hooks import averaged_weights

    model = tiny_model(paddle)
    ema = ModelEMA(model, decay=0.5, decay_type="normal")
    run_steps(paddle, model, ema, 2)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    with averaged_weights(model, ema) as inside:
        np.testing.assert_array_equal(inside.state_dict()["0.weight"].numpy(), ema.state_dict(model)["0.weight"])
        assert not np.array_equal(inside.state_dict()["0.weight"].numpy(), before["0.weight"])
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[name], err_msg=name)


def test_settings_from_the_config():
    from tutorial_lib.config import load_config
    from tutorial_lib.engine.ema import ema_settings

    for size in "SMLXH":
        arch = load_config(f"Mask-RT-DETR-{size}")["Architecture"]
        assert ema_settings(arch) == {"decay": 0.9999, "decay_type": "exponential", "filter_no_grad": True}
    assert ema_settings(load_config("MaskRCNN-ResNet18-FPN-S")["Architecture"]) is None
    with pytest.raises(UserError, match="ema_decay_type='cosine'"):
        ema_settings({"use_ema": True, "ema_decay_type": "cosine"})
    with pytest.raises(UserError, match="strictly between 0 and 1"):
        ema_settings({"use_ema": True, "ema_decay": 1.5})
