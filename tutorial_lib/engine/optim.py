"""Optimizer and learning-rate schedule from a config's ``Architecture.optimizer`` / ``.schedule``, and the
optimizer's state saved with parameter names that load into any process."""
from ..errors import UserError
from ..models.ppdet_ops import import_ppdet


def build_schedule(spec, base_lr, warmup_steps, total_steps):
    """Per-iteration learning rate: linear warmup then piecewise (milestones as fractions) or cosine decay."""
    paddle = import_ppdet()
    spec = dict(spec or {"type": "PiecewiseDecay", "milestones": [0.75, 0.9], "gamma": 0.1})
    kind = spec.get("type", "PiecewiseDecay")
    if kind == "PiecewiseDecay":
        bounds = sorted({max(1, int(round(float(m) * total_steps))) for m in spec.get("milestones", [])})
        bounds = [b for b in bounds if b < total_steps]
        gamma = float(spec.get("gamma", 0.1))
        # Milestones are absolute iterations, as in PaddleDetection (warmup and decay in one boundary list).
        # Paddle's LinearWarmup steps the schedule it wraps only after the warmup, from 0: shift by the warmup.
        warmup = max(0, int(warmup_steps or 0))
        passed = sum(b <= warmup for b in bounds)
        inner = [b - warmup for b in bounds if b > warmup]
        schedule = paddle.optimizer.lr.PiecewiseDecay(
            inner, [base_lr * gamma ** i for i in range(passed, len(bounds) + 1)]) if inner else \
            base_lr * gamma ** passed
    elif kind == "CosineDecay":
        schedule = paddle.optimizer.lr.CosineAnnealingDecay(base_lr, T_max=max(1, total_steps),
                                                            eta_min=float(spec.get("min_lr", 0.0)))
    elif kind == "Constant":
        schedule = base_lr
    else:
        raise UserError(f"Architecture.schedule.type={kind!r} is not PiecewiseDecay, CosineDecay or Constant")
    if warmup_steps and warmup_steps > 0:
        start = base_lr * float(spec.get("warmup_start_factor", 0.1))
        schedule = paddle.optimizer.lr.LinearWarmup(schedule, int(warmup_steps), start, base_lr)
    return schedule


def build_optimizer(spec, schedule, model):
    paddle = import_ppdet()
    spec = dict(spec or {"type": "Momentum", "momentum": 0.9, "weight_decay": 1e-4})
    params = [p for p in model.parameters() if not p.stop_gradient]
    decay = spec.get("weight_decay")
    regularizer = paddle.regularizer.L2Decay(float(decay)) if decay else None
    clip = spec.get("clip_grad_norm")
    grad_clip = paddle.nn.ClipGradByGlobalNorm(float(clip)) if clip else None
    kind = spec.get("type", "Momentum")
    if kind == "Momentum":
        return paddle.optimizer.Momentum(learning_rate=schedule, momentum=float(spec.get("momentum", 0.9)),
                                         parameters=params, weight_decay=regularizer, grad_clip=grad_clip)
    if kind == "AdamW":
        return paddle.optimizer.AdamW(learning_rate=schedule, parameters=params, grad_clip=grad_clip,
                                      weight_decay=float(decay or 0.0))
    raise UserError(f"Architecture.optimizer.type={kind!r} is not Momentum or AdamW")


def optimizer_state(optimizer, model):
    """The optimizer's state with accumulators keyed by structured parameter names (``backbone.res2...``),
    not by the process-dependent tensor names (``conv2d_17.w_0``), so that it loads into any process."""
    rename = {p.name: n for n, p in model.named_parameters()}
    state = {}
    for key, value in optimizer.state_dict().items():
        owner = max((name for name in rename if key.startswith(name + "_")), key=len, default=None)
        state[("@param:" + rename[owner] + key[len(owner):]) if owner else key] = value
    return state


def load_optimizer_state(optimizer, model, state):
    rename = {n: p.name for n, p in model.named_parameters()}
    restored = {}
    for key, value in state.items():
        if key.startswith("@param:"):
            rest = key[len("@param:"):]
            owner = max((n for n in rename if rest.startswith(n + "_")), key=len, default=None)
            if owner is None:
                continue
            key = rename[owner] + rest[len(owner):]
        restored[key] = value
    optimizer.set_state_dict(restored)
