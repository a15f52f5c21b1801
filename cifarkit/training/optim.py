"""The optimizer side of a run: parameter groups, ``torch.optim`` optimizers, lookahead and one training step.

Why a torch loop: under the torch backend a Keras model is a ``torch.nn.Module``,
so a plain step (``zero_grad``, forward, ``F.cross_entropy``, ``backward``, a
``torch.optim`` step with foreach kernels) trains it with nothing between the
model and PyTorch. Its speed against raw PyTorch is measured by
``benchmarks/bench_throughput.py`` (figures in ``benchmarks/README.md``).
"""

from __future__ import annotations

import warnings

import numpy as np

from cifarkit import backend
from cifarkit.training.config import TrainConfig
from cifarkit.training.precision import autocast, model_layers, native_dtypes


def whitening_layer(model, config: TrainConfig):
    """The model's data-whitening convolution (a registry fact) when ``config`` initializes it, else None."""
    if not config.whiten_init:
        return None
    from cifarkit.models import model_info

    name = model_info(config.model).get("whitening_layer")
    if not name:
        return None
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def freeze_whitening_kernel(model, config: TrainConfig) -> None:
    """Keep the whitening kernel at its data-derived value when ``config.freeze_whitening`` (airbench); before the
    optimizer is made, so that the kernel is in none of its groups."""
    whiten = whitening_layer(model, config)
    if whiten is not None and config.freeze_whitening:
        whiten.kernel.trainable = False


def param_groups(model, config: TrainConfig) -> list[dict]:
    """The trainable variables of ``model`` in ``torch.optim`` parameter groups.

    Group ``"weights"`` holds everything at the scheduled learning rate (with ``optimizer="muon"``, all but
    the convolution kernels of at least ``muon_min_filters`` filters, which form group ``"filters"`` marked
    ``muon``). With ``bn_bias_lr_scale != 1`` the batch-norm shifts (and fastnet's whitening
    bias) form group ``"biases"`` whose lr is scaled by it and whose L2
    coefficient is divided by it, so their decay per step stays
    ``lr * weight_decay``. With ``whiten_bias_epochs`` the whitening bias has
    its own group ``"whiten_bias"`` with ``until_epoch``, which
    :func:`freeze_groups_after` stops updating after that many epochs. Each
    group carries ``lr_scale`` (read by :class:`TrainStep`) and ``name``.
    """
    keras = backend.keras()
    l2 = config.weight_decay if config.weight_decay_mode == "l2" else 0.0
    scale = float(config.bn_bias_lr_scale)
    biases = set()
    if scale != 1.0:
        for layer in model._flatten_layers(include_self=False):
            if isinstance(layer, keras.layers.BatchNormalization) and layer.center and layer.beta.trainable:
                biases.add(id(layer.beta))
    whiten = whitening_layer(model, config)
    whiten_bias = id(whiten.bias) if whiten is not None and whiten.use_bias and whiten.bias.trainable else None
    if whiten_bias is not None and scale != 1.0:
        biases.add(whiten_bias)
    muon = config.optimizer == "muon"
    groups = {"filters": [], "weights": [], "biases": [], "whiten_bias": []}
    for v in model.trainable_variables:
        if config.whiten_bias_epochs and id(v) == whiten_bias:
            groups["whiten_bias"].append(v.value)
        elif id(v) in biases:
            groups["biases"].append(v.value)
        elif muon and len(v.shape) == 4 and v.shape[-1] >= config.muon_min_filters:
            groups["filters"].append(v.value)
        else:
            groups["weights"].append(v.value)
    out = []
    for name, params in groups.items():
        if not params:
            continue
        if name == "filters":  # MuonSGD's orthogonalized steps, at muon_lr times the schedule's factor; no decay
            ratio = config.muon_lr / config.peak_lr()
            out.append({"params": params, "name": name, "lr_scale": ratio, "weight_decay": 0.0, "muon": True})
            continue
        group_scale = 1.0 if name == "weights" else scale
        group = {"params": params, "name": name, "lr_scale": group_scale, "weight_decay": l2 / group_scale}
        if name == "whiten_bias":
            group["until_epoch"] = int(config.whiten_bias_epochs)
        out.append(group)
    return out


def make_optimizer(model, config: TrainConfig):
    """The ``torch.optim`` optimizer of ``config`` over the model's trainable variables (see :func:`param_groups`)."""
    torch = backend.torch()
    groups = param_groups(model, config)
    lr = config.peak_lr()
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups,
            lr=lr,
            momentum=config.momentum,
            nesterov=config.nesterov and config.momentum > 0,
            foreach=True,
        )
    if config.optimizer == "muon":
        return muon_sgd()(
            groups, lr=lr, momentum=config.momentum, nesterov=config.nesterov, muon_momentum=config.muon_momentum
        )
    if config.weight_decay_mode == "decoupled":
        for g in groups:
            g["weight_decay"] = config.weight_decay / g["lr_scale"]
        return torch.optim.AdamW(groups, lr=lr, betas=(config.momentum, 0.999), foreach=True)
    return torch.optim.Adam(groups, lr=lr, betas=(config.momentum, 0.999), foreach=True)


#: The quintic Newton-Schulz iteration's coefficients (Jordan et al., "Muon", 2024): they push every singular
#: value of a matrix scaled to norm 1 towards 1 in a few steps, without converging exactly (0.7-1.2 suffice).
NEWTON_SCHULZ = (3.4445, -4.7750, 2.0315)


def orthogonalized(matrix, steps: int = 5, dtype=None):
    """``matrix`` (2-D) with its singular values moved close to 1 and its singular vectors kept: ``U V^T``
    of its SVD, approximately, by ``steps`` Newton-Schulz iterations in ``dtype`` (default bf16; the result in it).
    """
    torch = backend.torch()
    a, b, c = NEWTON_SCHULZ
    x = matrix.to(torch.bfloat16 if dtype is None else dtype)
    wide = x.shape[0] <= x.shape[1]
    if not wide:
        x = x.T
    x = x / (x.norm() + 1e-7)
    for _ in range(steps):  # x <- a x + (b G + c G^2) x with G = x x^T, as fused matrix products
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x if wide else x.T


class _MuonSGD:
    """SGD for most parameters and Muon for the convolution kernels, in one ``torch.optim`` optimizer.

    Groups marked ``muon`` (:func:`param_groups` puts a model's 4-D kernels there with
    ``optimizer="muon"``) take airbench94_muon's step: a Nesterov momentum buffer (``muon_momentum``), the
    kernel rescaled to the Frobenius norm ``sqrt(filters)`` (the norms that follow make the network
    invariant to it), then a step of ``lr`` along the momentum's :func:`orthogonalized` matrix (filters x
    inputs), whose products run in bf16 on a GPU or a CPU with bf16 units and in float32 elsewhere. Every other
    group is plain SGD with ``momentum``, ``nesterov`` and L2 ``weight_decay`` as ``torch.optim.SGD`` computes it
    (``weight_decay_mode="decoupled"`` shrinks them in :class:`TrainStep`, as for ``"sgd"``).
    """

    def __init__(self, params, lr: float, momentum: float = 0.9, nesterov: bool = True, muon_momentum: float = 0.6):
        defaults = dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=0.0, muon=False)
        super().__init__(params, defaults)
        self.muon_momentum = float(muon_momentum)
        torch = backend.torch()
        first = next((p for g in self.param_groups for p in g["params"]), None)
        on_gpu = first is not None and first.device.type == "cuda"
        # bf16 matrix products where the hardware has them (2.4x float32's speed for fastnet's kernels on a Xeon
        # with AMX); float32 on other CPUs, where bf16 products are emulated
        self.ns_dtype = torch.bfloat16 if on_gpu or backend.cpu_native_bf16() else torch.float32

    def step(self, closure=None):
        torch = backend.torch()
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                if params:
                    (self._muon if group["muon"] else self._sgd)(group, params)
        return loss

    def _sgd(self, group, params):
        torch = backend.torch()
        grads = [p.grad for p in params]
        if group["weight_decay"]:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        momentum = group["momentum"]
        if momentum:
            bufs = []
            for p, g in zip(params, grads):
                state = self.state[p]
                if "momentum_buffer" not in state:  # torch.optim.SGD's first step: the buffer is the gradient
                    state["momentum_buffer"] = g.detach().clone()
                else:
                    state["momentum_buffer"].mul_(momentum).add_(g)
                bufs.append(state["momentum_buffer"])
            grads = torch._foreach_add(grads, bufs, alpha=momentum) if group["nesterov"] else bufs
        torch._foreach_add_(params, grads, alpha=-group["lr"])

    def _muon(self, group, params):
        torch = backend.torch()
        m = self.muon_momentum
        grads = [p.grad for p in params]
        bufs = []
        for p in params:
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p)
            bufs.append(state["momentum_buffer"])
        torch._foreach_mul_(bufs, m)
        torch._foreach_add_(bufs, grads)
        updates = torch._foreach_add(grads, bufs, alpha=m) if group["nesterov"] else bufs
        # each kernel back to the Frobenius norm sqrt(filters); Keras kernels end in the filters: (kh, kw, in, out)
        norms = torch._foreach_norm(params)
        torch._foreach_mul_(params, [p.shape[-1] ** 0.5 / (n + 1e-12) for p, n in zip(params, norms)])
        for p, update in zip(params, updates):
            filters = p.shape[-1]
            step = orthogonalized(update.reshape(-1, filters).T, dtype=self.ns_dtype)  # filters x (kh * kw * in)
            p.add_(step.T.reshape(p.shape), alpha=-group["lr"])


def muon_sgd():
    """The :class:`MuonSGD` class: ``_MuonSGD``'s methods on ``torch.optim.Optimizer``, made at first use, so that
    importing cifarkit imports no backend."""
    global _MUON_SGD
    if _MUON_SGD is None:
        _MUON_SGD = type("MuonSGD", (_MuonSGD, backend.torch().optim.Optimizer), {"__module__": __name__})
        _MUON_SGD.__doc__ = _MuonSGD.__doc__
    return _MUON_SGD


_MUON_SGD = None


def __getattr__(name):  # ``from cifarkit.training.optim import MuonSGD`` builds the class then
    if name == "MuonSGD":
        return muon_sgd()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def freeze_groups_after(optimizer, epoch: int) -> None:
    """Stop updating parameter groups whose ``until_epoch`` lies before ``epoch`` (1-based).

    Their parameters also stop requiring gradients, as airbench freezes its whitening bias: with fastnet's
    whitening kernel frozen too, autograd then stops at the first block, so no step computes the whitening
    layer's gradients or the first convolution's gradient with respect to its input (fastnet's step ran 1.10x
    faster so in float32, 1.04x in bf16, on a Xeon with AMX; benchmarks/README.md, 2026-12-07).
    """
    for group in optimizer.param_groups:
        until = group.get("until_epoch")
        if until and epoch > until:
            group["lr_scale"] = 0.0
            for p in group["params"]:
                p.requires_grad_(False)
                p.grad = None


def balanced_class_weights(y: np.ndarray, num_classes: int) -> np.ndarray:
    """scikit-learn's "balanced" weights: ``n / (num_classes * count_k)``; a class absent from ``y`` gets weight 0."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=num_classes).astype(np.float64)
    weights = np.zeros(num_classes)
    present = counts > 0
    weights[present] = counts.sum() / (num_classes * counts[present])
    return weights


class Lookahead:
    """airbench's lookahead: a slow average of all float variables, copied back into the model.

    Every ``every`` steps, ``update(step)`` moves the average toward the
    current variables by ``1 - decay`` with ``decay = 0.95**every *
    (step / total_steps)**3`` and then sets the variables to the average
    (so early in training it follows the model; late it holds it back).
    ``finish()`` copies the average into the model at the end of training.
    Batch-norm moving statistics take part, as in airbench.
    """

    def __init__(self, model, every: int, total_steps: int):
        torch = backend.torch()
        self.every = int(every)
        self.total_steps = max(int(total_steps), 1)
        self.tensors = [v.value for v in model.variables if v.value.dtype.is_floating_point]
        with torch.no_grad():
            self.average = [t.detach().clone() for t in self.tensors]

    def update(self, step: int, decay: float | None = None) -> None:
        torch = backend.torch()
        if decay is None:
            if step % self.every:
                return
            decay = 0.95**self.every * (min(step, self.total_steps) / self.total_steps) ** 3
        with torch.no_grad():
            torch._foreach_lerp_(self.average, [t.detach() for t in self.tensors], 1.0 - decay)
            torch._foreach_copy_(self.tensors, self.average)

    def finish(self) -> None:
        self.update(self.total_steps, decay=1.0)

    def state_dict(self) -> list:
        return [t.detach().to("cpu", copy=True) for t in self.average]

    def load_state_dict(self, state: list) -> None:
        torch = backend.torch()
        if len(state) != len(self.average):
            raise ValueError("The checkpoint's lookahead average does not match the model's variables.")
        with torch.no_grad():
            for t, value in zip(self.average, state):
                t.copy_(value.to(t.device, t.dtype))


class TrainStep:
    """One optimization step of a Keras model with a ``torch.optim`` optimizer.

    ``step(x, y, lr)`` sets the learning rate, runs forward (under autocast
    when configured), cross-entropy with label smoothing (``y``: int labels or
    probability rows), backward and the optimizer step. A non-finite loss
    stops before ``backward``, so the weights stay as they were.

    Returns ``(loss, logits)`` as tensors (the loss as a 0-d float32 tensor).
    Benchmarks time this same object (``benchmarks/bench_throughput.py``).
    """

    def __init__(self, model, optimizer, config: TrainConfig, device: str = "cpu", forward=None, autocast_dtype=None):
        torch = backend.torch()
        self.torch = torch
        self.model = model
        self.forward = model if forward is None else forward
        self.optimizer = optimizer
        self.device = device
        self.label_smoothing = float(config.label_smoothing)
        self.autocast_dtype = autocast_dtype
        self.decoupled_sgd = (
            config.weight_decay_mode == "decoupled" and config.optimizer in ("sgd", "muon") and config.weight_decay > 0
        )
        self.weight_decay = float(config.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda") if autocast_dtype == torch.float16 else None
        self.compiled = self.forward is not model
        self._first_call = True
        self.class_weights = None  # a float32 tensor of per-class loss weights, or None
        self._layers = model_layers(model) if autocast_dtype is not None else []

    def _forward(self, x):
        if not (self._first_call and self.compiled):
            return self.forward(x, training=True)
        # torch.compile fails lazily, at the first call: fall back to eager mode then.
        self._first_call = False
        try:
            return self.forward(x, training=True)
        except Exception as e:  # noqa: BLE001
            warnings.warn(
                f"torch.compile failed at the first step ({type(e).__name__}: {e}); training without compilation.",
                stacklevel=2,
            )
            self.forward = self.model
            self.compiled = False
            self.optimizer.zero_grad(set_to_none=True)
            return self.model(x, training=True)

    def __call__(self, x, y, lr: float):
        torch = self.torch
        import torch.nn.functional as F

        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, self.autocast_dtype), native_dtypes(self._layers, self.autocast_dtype):
            logits = self._forward(x)
        loss = F.cross_entropy(logits.float(), y, weight=self.class_weights, label_smoothing=self.label_smoothing)
        if not torch.isfinite(loss):
            return loss, logits
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()
        if self.decoupled_sgd:
            with torch.no_grad():
                for group in self.optimizer.param_groups:
                    if group.get("lr_scale", 1.0) > 0:
                        torch._foreach_mul_(group["params"], 1.0 - lr * self.weight_decay)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return loss, logits
