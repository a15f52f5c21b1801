"""Training throughput of cifarkit's Keras-on-PyTorch path against raw PyTorch, and against the CPU's matmul ceiling.

Usage:
    python benchmarks/bench_throughput.py [--models fastnet resnet20] [--batches 256 1024] [--rounds 3]
                                          [--precisions float32 bf16]

For each model, batch size and precision, one process times two implementations side by side:

  keras  ``cifarkit.models.build_model(name)`` trained by ``cifarkit.training.optim.TrainStep``
         (the exact step function ``train()`` uses) with the optimizer of the
         model's recipe (fastnet: ``fast``; others: ``paper``).
  torch  the same architecture written in ``torch.nn`` (channels-last memory), with the
         same input handling (uint8 NHWC -> normalize -> NCHW view), loss and optimizer.

Timing is best-of-``--rounds``, the two implementations interleaved round by
round, because this machine sometimes runs at half speed for tens of seconds.

Precision ``bf16`` runs both sides under ``torch.autocast("cpu", bfloat16)`` with
float32 weights, as ``train()`` does with ``mixed_precision="bf16"`` (and with
``"auto"`` on CPUs with AMX or AVX512-BF16).

The ceiling: float32 GFLOP/s of a 4096x4096 matrix product with numpy and with
``torch.mm``, and bf16 GFLOP/s of ``torch.mm``. A training step costs ~3x the forward FLOPs (forward, and the two
products of the backward pass); forward FLOPs come from
``cifarkit.models.count_flops`` (2 x multiply-accumulates of convs and dense
layers). Each model's training FLOP/s is reported as a fraction of the float32
torch.mm ceiling (the issue's yardstick) and of the torch.mm ceiling of its own precision. Results go to ``benchmarks/results/throughput.json``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from datetime import datetime, timezone

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from cifarkit import backend  # noqa: E402  (sets KERAS_BACKEND=torch before Keras loads)

PRECISIONS = ("float32", "bf16")
MUON_LR = 0.08  # the Muon learning rate of the deep-kernels-only setting (benchmarks/README.md)
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


# --------------------------------------------------------------------------- raw PyTorch twins


class Normalize(nn.Module):
    """uint8 NHWC -> normalized float NCHW view with channels-last memory (what cifarkit's Preprocess does)."""

    def __init__(self, mean=CIFAR_MEAN, std=CIFAR_STD):
        super().__init__()
        self.register_buffer("scale", torch.tensor([1.0 / (255.0 * s) for s in std]))
        self.register_buffer("shift", torch.tensor([-m / s for m, s in zip(mean, std)]))

    def forward(self, x):  # in the buffers' dtype: float32, or bf16 for a twin whose weights are bf16
        return (x.to(self.scale.dtype) * self.scale + self.shift).permute(0, 3, 1, 2)


class FastNetTorch(nn.Module):
    """airbench94's network, as ``cifarkit.models.fastnet.build_fastnet`` builds it."""

    WIDTHS = (64, 256, 256)  # cifarkit.models.fastnet's block_widths at width 1

    def __init__(self, widths=WIDTHS, num_classes=10, output_scale=1 / 9):
        super().__init__()
        self.pre = Normalize()
        self.stem = nn.Conv2d(3, 24, 2, padding=0, bias=True)
        blocks = []
        cin = 24
        for w in widths:
            bn1, bn2 = nn.BatchNorm2d(w, momentum=0.4, eps=1e-12), nn.BatchNorm2d(w, momentum=0.4, eps=1e-12)
            for bn in (bn1, bn2):
                bn.weight.requires_grad_(False)  # bn_scale=False: no learned scale
            blocks += [
                nn.Conv2d(cin, w, 3, padding=1, bias=False),
                nn.MaxPool2d(2),
                bn1,
                nn.GELU(),
                nn.Conv2d(w, w, 3, padding=1, bias=False),
                bn2,
                nn.GELU(),
            ]
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(cin, num_classes, bias=False)
        self.output_scale = output_scale

    def forward(self, x):
        x = F.gelu(self.stem(self.pre(x)))
        x = self.blocks(x)
        x = torch.amax(x, dim=(2, 3))
        return self.head(x) * self.output_scale


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.extra = stride, cout - cin

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x
        if self.stride != 1 or self.extra:  # option A: subsample, zero-pad channels
            s = x[:, :, :: self.stride, :: self.stride]
            s = F.pad(s, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return F.relu(y + s)


class ResNetTorch(nn.Module):
    """He et al.'s CIFAR ResNet (option-A shortcuts), as ``cifarkit.models.resnet.build_resnet`` builds it."""

    def __init__(self, depth=20, num_classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.pre = Normalize()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        layers, cin = [], 16
        for stage, w in enumerate((16, 32, 64)):
            for b in range(n):
                layers.append(BasicBlock(cin, w, 2 if stage > 0 and b == 0 else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.layers(self.stem(self.pre(x)))
        return self.fc(x.mean(dim=(2, 3)))


def torch_twin(name: str, width: float = 1.0) -> nn.Module:
    if name == "fastnet":
        from cifarkit.models.common import scale_width

        return FastNetTorch(widths=tuple(scale_width(w, width) for w in FastNetTorch.WIDTHS))
    if name.startswith("resnet"):
        return ResNetTorch(int(name[len("resnet") :]))
    raise ValueError(f"No raw PyTorch twin for {name!r}; choose fastnet or resnet20/32/44/56/110.")


# --------------------------------------------------------------------------- measurement


def _machine() -> dict:
    from cifarkit.provenance import hardware_info

    info = hardware_info()
    return {
        "cpu": info.get("cpu"),
        "cpu_flags": info.get("cpu_flags"),
        **({"isa_limits": info["isa_limits"]} if info.get("isa_limits") else {}),
        "cores": info.get("cpu_count"),
        "platform": info.get("platform"),
        "torch_threads": torch.get_num_threads(),
    }


def matmul_ceiling(n=4096, rounds=3, bf16=True) -> dict:
    """GFLOP/s of an n x n matrix product, best of ``rounds``: float32 (numpy, torch.mm) and, with ``bf16``, bf16
    (torch.mm). A CPU without bf16 units emulates the bf16 product at a small fraction of float32's speed (over ten
    minutes on a 2-core AVX2 EPYC), so it is timed only when a bf16 run asks for it."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    flops = 2.0 * n**3
    out = {}
    ha, hb = ta.bfloat16(), tb.bfloat16()
    products = [("numpy", lambda: a @ b), ("torch_mm", lambda: torch.mm(ta, tb))]
    if bf16:
        products.append(("torch_mm_bf16", lambda: torch.mm(ha, hb)))
    for name, fn in products:
        fn()
        best = min(_seconds(fn) for _ in range(rounds))
        out[name] = round(flops / best / 1e9, 1)
    return out


def _seconds(fn, repeat=1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def twin_train_step(
    name: str,
    config,
    x,
    y,
    lr: float,
    amp=None,
    compiled: bool = False,
    weights_dtype: torch.dtype | None = None,
    width: float = 1.0,
):
    """``(step, trainable parameter count)``: one training step of the raw PyTorch twin of ``name`` (channels-last)
    on the batch ``x``/``y``, with the optimizer and label smoothing of ``config`` (a TrainConfig) and, with
    ``amp`` (a torch dtype), autocast as ``train()`` uses it; ``compiled``: its forward under ``torch.compile``
    (as ``train()`` compiles a Keras model's). ``weights_dtype`` (``torch.bfloat16``) keeps the weights, the
    normalized images and the optimizer's updates in that dtype, batch norms in float32, without autocast: how
    ``bench_peer.py`` runs airbench94 in bf16 (its ``.half()`` made bf16), not how ``train()`` trains. ``width``:
    fastnet's ``width_multiplier``."""
    twin = torch_twin(name, width)
    if weights_dtype is not None:
        twin = twin.to(weights_dtype)
        for module in twin.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.float()
        amp = None
    twin = twin.to(memory_format=torch.channels_last)
    params = [p for p in twin.parameters() if p.requires_grad]
    forward = torch.compile(twin) if compiled else twin
    opt = torch.optim.SGD(
        params,
        lr=lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
        foreach=True,
    )

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp is not None):
            logits = forward(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
        loss.backward()
        opt.step()

    return step, sum(p.numel() for p in params)


def bench_model(
    name: str,
    batch: int,
    rounds: int,
    min_round_s: float,
    precision: str = "float32",
    bf16_weights: bool = False,
    stem_frozen: bool = False,
    unfused: bool = False,
    width: float = 1.0,
    muon_min_filters: int | None = None,
) -> dict:
    from cifarkit.models import build_model, count_flops
    from cifarkit.models.layers import BiasConv2D
    from cifarkit.training import resolve_recipe
    from cifarkit.training.optim import TrainStep, freeze_groups_after, freeze_whitening_kernel, make_optimizer
    from cifarkit.training.precision import relay_kernels

    recipe = "fast" if name == "fastnet" else "paper"
    options = {"width_multiplier": width} if name == "fastnet" and width != 1.0 else {}
    settings = {"model": name, "batch_size": batch, "model_options": options}
    config = resolve_recipe(recipe, **settings)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 256, size=(batch, 32, 32, 3), dtype=np.uint8))
    y = torch.from_numpy(rng.integers(0, 10, size=batch))
    lr = 0.01  # small, so many steps stay finite; speed does not depend on it

    def fresh_model():  # every Keras arm starts from the same weights
        keras.utils.set_random_seed(0)
        return build_model(name, input_shape=(32, 32, 3), num_classes=10, mean=CIFAR_MEAN, std=CIFAR_STD, **options)

    model = fresh_model()
    amp = torch.bfloat16 if precision == "bf16" else None
    relaid = relay_kernels(model, config, "cpu", amp)  # the kernels' layout train() gives them
    keras_step = TrainStep(model, make_optimizer(model, config), config, autocast_dtype=amp)
    flops = count_flops(model)

    torch_step, twin_params = twin_train_step(name, config, x, y, lr, amp, width=width)
    steps = {"keras": lambda: keras_step(x, y, lr), "torch": torch_step}
    if stem_frozen and name == "fastnet":
        # train()'s step after the `fast` recipe's whiten_bias_epochs, frozen by train()'s own calls: the kernel as
        # freeze_whitening leaves it, the bias as freeze_groups_after leaves it from the next epoch on
        frozen = fresh_model()
        relay_kernels(frozen, config, "cpu", amp)
        freeze_whitening_kernel(frozen, config)
        frozen_optimizer = make_optimizer(frozen, config)
        freeze_groups_after(frozen_optimizer, config.whiten_bias_epochs + 1)
        frozen_step = TrainStep(frozen, frozen_optimizer, config, autocast_dtype=amp)
        steps["keras_stem_frozen"] = lambda: frozen_step(x, y, lr)
    if unfused:
        # the step as train() ran it before 2026-12-07: Keras' kernel layout, the stem's bias added after its conv
        before = fresh_model()
        for layer in before._flatten_layers():
            if isinstance(layer, BiasConv2D):
                layer.fuse_bias = False
        before_step = TrainStep(before, make_optimizer(before, config), config, autocast_dtype=amp)
        steps["keras_unfused"] = lambda: before_step(x, y, lr)
    if muon_min_filters is not None:
        # the same step with Muon for the kernels of at least muon_min_filters filters, SGD for the rest, as train()
        # runs optimizer="muon"; the Newton-Schulz products run in bf16 where the CPU computes bf16 natively (and
        # oneDNN is not capped below it), in float32 elsewhere, whatever the precision of the step
        muon_config = resolve_recipe(
            recipe, **settings, optimizer="muon", muon_lr=MUON_LR, muon_min_filters=muon_min_filters
        )
        muon_model = fresh_model()
        relay_kernels(muon_model, muon_config, "cpu", amp)
        muon_step = TrainStep(muon_model, make_optimizer(muon_model, muon_config), muon_config, autocast_dtype=amp)
        steps["keras_muon"] = lambda: muon_step(x, y, lr)
    if bf16_weights and precision == "bf16":
        steps["torch_bf16_weights"] = twin_train_step(name, config, x, y, lr, weights_dtype=torch.bfloat16)[0]
    keras_params = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    repeat = {}
    for k, fn in steps.items():  # warm up, and size a round to at least min_round_s
        fn()
        t = _seconds(fn)
        repeat[k] = max(1, math.ceil(min_round_s / t))
    best = {k: math.inf for k in steps}
    for _ in range(rounds):
        for k, fn in steps.items():
            best[k] = min(best[k], _seconds(fn, repeat[k]))
    ips = {k: batch / s for k, s in best.items()}
    return {
        "model": name,
        **({"width_multiplier": width} if options else {}),
        "batch": batch,
        "precision": precision,
        "recipe_optimizer": f"{recipe}: SGD momentum {config.momentum} nesterov={config.nesterov} "
        f"wd {config.weight_decay} label_smoothing {config.label_smoothing}",
        "trainable_params": {"keras": keras_params, "torch": twin_params},
        "forward_gflops_per_image": round(flops / 1e9, 4),
        "img_per_s": {k: round(v, 1) for k, v in ips.items()},
        "keras_over_torch": round(ips["keras"] / ips["torch"], 3),
        "train_gflop_per_s": {k: round(3 * flops * v / 1e9, 1) for k, v in ips.items()},
        "steps_per_round": repeat,
        "keras_channels_last_kernels": relaid,
        **(
            {
                "muon": f"keras_muon: optimizer='muon', muon_lr {MUON_LR}, kernels of >= {muon_min_filters} filters",
                "muon_over_sgd": round(ips["keras_muon"] / ips["keras"], 3),
            }
            if "keras_muon" in steps
            else {}
        ),
        **(
            {
                "stem_frozen_note": "keras_stem_frozen's GFLOP/s and fractions count the full step's 3 x forward FLOPs; "
                "its step skips the whitening layer's gradients and the first conv's input gradient, so they overstate it"
            }
            if "keras_stem_frozen" in steps
            else {}
        ),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["fastnet", "resnet20"])
    parser.add_argument(
        "--batches",
        nargs="+",
        type=int,
        default=None,
        help="batch sizes (default: 256, the fast recipe's, and airbench's 1024)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per implementation (best is kept)")
    parser.add_argument("--min-round-seconds", type=float, default=2.0)
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=PRECISIONS,
        default=list(PRECISIONS),
        help="float32, and bf16 autocast (both sides) as mixed_precision='bf16' trains",
    )
    parser.add_argument(
        "--stem-frozen",
        action="store_true",
        help="fastnet rows also time the Keras step with the whitening layer frozen (train() after whiten_bias_epochs)",
    )
    parser.add_argument(
        "--bf16-weights",
        action="store_true",
        help="bf16 rows also time the raw twin with bf16 weights and no autocast (as bench_peer runs airbench94)",
    )
    parser.add_argument(
        "--unfused",
        action="store_true",
        help="also time the Keras step as train() ran it before 2026-12-07: Keras' kernel layout and the stem's bias "
        "added after its convolution",
    )
    parser.add_argument(
        "--width",
        type=float,
        default=1.0,
        help="fastnet's width_multiplier, for both sides (1.5: the fast8 recipe's network)",
    )
    parser.add_argument(
        "--muon-min-filters",
        type=int,
        metavar="N",
        help=f"also time the Keras step with optimizer='muon' (muon_lr {MUON_LR}) for the kernels of at least N "
        "filters, interleaved with SGD's (128: the deep-kernels-only setting)",
    )
    parser.add_argument("--out", default=os.path.join(HERE, "results", "throughput.json"))
    args = parser.parse_args(argv)

    from cifarkit.training import resolve_recipe

    batches = args.batches or sorted({256, resolve_recipe("fast").batch_size, 1024})
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    ceiling = matmul_ceiling(rounds=args.rounds, bf16="bf16" in args.precisions)
    print(
        f"matmul 4096^2: float32 numpy {ceiling['numpy']} GFLOP/s, torch.mm {ceiling['torch_mm']} GFLOP/s"
        + (f"; bf16 torch.mm {ceiling['torch_mm_bf16']} GFLOP/s" if "torch_mm_bf16" in ceiling else "")
    )
    rows = []
    for name in args.models:
        for batch in batches:
            for precision in args.precisions:
                r = bench_model(
                    name,
                    batch,
                    args.rounds,
                    args.min_round_seconds,
                    precision,
                    args.bf16_weights,
                    args.stem_frozen,
                    args.unfused,
                    args.width,
                    args.muon_min_filters,
                )
                mm = ceiling["torch_mm_bf16" if precision == "bf16" else "torch_mm"]
                r["fraction_of_torch_mm"] = {
                    k: round(v / ceiling["torch_mm"], 3) for k, v in r["train_gflop_per_s"].items()
                }
                r["fraction_of_same_precision_mm"] = {k: round(v / mm, 3) for k, v in r["train_gflop_per_s"].items()}
                rows.append(r)
                print(
                    f"{name:9s} batch {batch:5d} {precision:7s}: keras {r['img_per_s']['keras']:7.1f} img/s, "
                    f"torch {r['img_per_s']['torch']:7.1f} img/s (keras/torch {r['keras_over_torch']:.3f}); training "
                    f"{r['train_gflop_per_s']['keras']:.1f} GFLOP/s = {100 * r['fraction_of_torch_mm']['keras']:.0f}% of "
                    f"float32 torch.mm, {100 * r['fraction_of_same_precision_mm']['keras']:.0f}% of {precision} torch.mm"
                )
                if "keras_stem_frozen" in r["img_per_s"]:
                    print(
                        f"{'':9s} whitening layer frozen (train() after whiten_bias_epochs): keras "
                        f"{r['img_per_s']['keras_stem_frozen']:7.1f} img/s "
                        f"({r['img_per_s']['keras_stem_frozen'] / r['img_per_s']['keras']:.3f}x trainable)"
                    )
                if "keras_unfused" in r["img_per_s"]:
                    print(
                        f"{'':9s} as train() runs it (channels-last kernels "
                        f"{'on' if r['keras_channels_last_kernels'] else 'off'}, a conv's bias inside it): "
                        f"{r['img_per_s']['keras'] / r['img_per_s']['keras_unfused']:.3f}x the step before 2026-12-07 "
                        f"({r['img_per_s']['keras_unfused']:7.1f} img/s)"
                    )
                if "keras_muon" in r["img_per_s"]:
                    print(
                        f"{'':9s} Muon for the kernels of >= {args.muon_min_filters} filters: keras "
                        f"{r['img_per_s']['keras_muon']:7.1f} img/s ({r['muon_over_sgd']:.3f}x SGD's)"
                    )
                if "torch_bf16_weights" in r["img_per_s"]:
                    print(
                        f"{'':9s} bf16 weights, no autocast (the peer's way): torch "
                        f"{r['img_per_s']['torch_bf16_weights']:7.1f} img/s "
                        f"({r['img_per_s']['torch_bf16_weights'] / r['img_per_s']['torch']:.3f}x autocast's)"
                    )
    from cifarkit.provenance import command_line, git_info

    record = {
        "command": command_line(__file__, argv),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "machine": _machine(),
        "git": git_info(),
        "load_average_at_start": [round(v, 2) for v in load],
        "versions": backend.versions(),
        "timing": f"best of {args.rounds} rounds (>= {args.min_round_seconds} s each), keras and torch interleaved",
        "data": "random uint8 images 32x32x3, 10 classes (throughput only)",
        "flops_note": "forward FLOPs = 2 x MACs of convs and dense layers (cifarkit.models.count_flops); training = 3 x forward",
        "matmul_gflop_per_s": ceiling,
        "results": rows,
    }
    from cifarkit.files import atomic_write_json

    atomic_write_json(args.out, record)  # temp file + rename: no half-written result on a crash
    print(f"wrote {os.path.relpath(args.out, ROOT)}")
    return 0


keras = backend.keras()

if __name__ == "__main__":
    raise SystemExit(main())
