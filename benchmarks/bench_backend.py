"""Which Keras backend should cifarkit train on? Training img/s, side by side, in one run.

Usage:
    python benchmarks/bench_backend.py [--tf-python /path/to/python-with-tensorflow] [--rounds 2]

Each variant runs in its own subprocess (a backend is fixed at import time), with the
same network and batch, best-of-3 timing; variants are interleaved over rounds because
this machine sometimes runs at half speed for tens of seconds. Results go to
benchmarks/results/backend.json.

Variants (all float32, batch 256, CPU):
  torch_raw          raw PyTorch nn.Sequential, channels_last memory (the reference)
  keras_torch_ours   Keras on PyTorch the way cifarkit runs it: channels_first layers,
                     NHWC memory, FusedBatchNorm, plain torch training loop
  keras_torch_plain  Keras on PyTorch out of the box: channels_last, keras BatchNormalization, model.fit
  keras_torch_fit_cf like ours but through model.fit (no channels-last memory, fused BN)
  keras_tf_fit       Keras on TensorFlow, model.fit (needs --tf-python), oneDNN on
Nets: "airbench" (whitening conv + 3 conv/pool/BN/GELU blocks, widths 64/256/256, ~2M params)
      "classic" (3 blocks of 2x conv3x3-BN-ReLU + maxpool, 32/64/128, dense 128).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
B = 256
STEPS = 6


def _data():
    import numpy as np

    x = np.random.RandomState(0).randint(0, 255, (B, 32, 32, 3)).astype("float32")
    y = np.random.RandomState(1).randint(0, 10, (B,))
    return x, y


def _best_of(step, n=3):
    for _ in range(2):
        step()
    best = 1e9
    for _ in range(n):
        t = time.perf_counter()
        for _ in range(STEPS):
            step()
        best = min(best, (time.perf_counter() - t) / STEPS)
    return B / best


def run_torch_raw(net):
    import torch
    import torch.nn as nn

    x, y = _data()
    if net == "airbench":

        def block(cin, w):
            return nn.Sequential(
                nn.Conv2d(cin, w, 3, padding=1, bias=False),
                nn.MaxPool2d(2),
                nn.BatchNorm2d(w),
                nn.GELU(),
                nn.Conv2d(w, w, 3, padding=1, bias=False),
                nn.BatchNorm2d(w),
                nn.GELU(),
            )

        model = nn.Sequential(
            nn.Conv2d(3, 24, 2),
            nn.GELU(),
            block(24, 64),
            block(64, 256),
            block(256, 256),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
            nn.Linear(256, 10, bias=False),
        )
    else:

        def block(cin, w):
            return nn.Sequential(
                nn.Conv2d(cin, w, 3, padding=1),
                nn.BatchNorm2d(w),
                nn.ReLU(),
                nn.Conv2d(w, w, 3, padding=1),
                nn.BatchNorm2d(w),
                nn.ReLU(),
                nn.MaxPool2d(2),
            )

        model = nn.Sequential(
            block(3, 32),
            block(32, 64),
            block(64, 128),
            nn.Flatten(),
            nn.Linear(128 * 16, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        )
    model = model.to(memory_format=torch.channels_last)
    tx = torch.from_numpy(x).permute(0, 3, 1, 2)  # NHWC memory == channels_last
    ty = torch.from_numpy(y)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    lossf = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        lossf(model(tx / 255.0), ty).backward()
        opt.step()

    return _best_of(step)


def _keras_net(net, fmt, fused):
    import keras
    from keras import layers

    ax = 1 if fmt == "channels_first" else -1
    if fused:
        sys.path.insert(0, ROOT)
        from cifarkit.models.layers import FusedBatchNorm as BN
        from cifarkit.models.layers import Preprocess
    else:
        BN = layers.BatchNormalization
        Preprocess = None
    inp = keras.Input((32, 32, 3))
    if Preprocess is not None:
        h = Preprocess(data_format=fmt)(inp)
    else:
        h = layers.Rescaling(1 / 255.0)(inp)
        if fmt == "channels_first":
            h = layers.Permute((3, 1, 2))(h)
    kw = dict(data_format=fmt)
    if net == "airbench":
        h = layers.Conv2D(24, 2, **kw)(h)
        h = layers.Activation("gelu")(h)
        for w in (64, 256, 256):
            h = layers.Conv2D(w, 3, padding="same", use_bias=False, **kw)(h)
            h = layers.MaxPooling2D(2, **kw)(h)
            h = BN(axis=ax, momentum=0.6, epsilon=1e-12)(h)
            h = layers.Activation("gelu")(h)
            h = layers.Conv2D(w, 3, padding="same", use_bias=False, **kw)(h)
            h = BN(axis=ax, momentum=0.6, epsilon=1e-12)(h)
            h = layers.Activation("gelu")(h)
        h = layers.GlobalMaxPooling2D(**kw)(h)
        out = layers.Dense(10, use_bias=False)(h)
    else:
        for w in (32, 64, 128):
            for _ in range(2):
                h = layers.Conv2D(w, 3, padding="same", **kw)(h)
                h = BN(axis=ax)(h)
                h = layers.Activation("relu")(h)
            h = layers.MaxPooling2D(2, **kw)(h)
        h = layers.Flatten(**kw)(h)
        h = layers.Dense(128, activation="relu")(h)
        out = layers.Dense(10)(h)
    return keras.Model(inp, out)


def run_keras(net, fmt, fused, loop):
    import keras

    x, y = _data()
    model = _keras_net(net, fmt, fused)
    if loop:
        import torch
        import torch.nn.functional as F

        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(tx, training=True), ty).backward()
            opt.step()

        return _best_of(step)
    import numpy as np

    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    xs, ys = np.concatenate([x] * STEPS), np.concatenate([y] * STEPS)
    model.fit(xs[: 2 * B], ys[: 2 * B], batch_size=B, epochs=1, verbose=0)
    best = 1e9
    for _ in range(3):
        t = time.perf_counter()
        model.fit(xs, ys, batch_size=B, epochs=1, verbose=0)
        best = min(best, time.perf_counter() - t)
    return len(xs) / best


VARIANTS = {
    "torch_raw": ("torch", lambda net: run_torch_raw(net)),
    "keras_torch_ours": ("torch", lambda net: run_keras(net, "channels_first", True, True)),
    "keras_torch_fit_cf": ("torch", lambda net: run_keras(net, "channels_first", True, False)),
    "keras_torch_plain": ("torch", lambda net: run_keras(net, "channels_last", False, False)),
    "keras_tf_fit": ("tensorflow", lambda net: run_keras(net, "channels_last", False, False)),
}


def child(variant, net):
    os.environ["KERAS_BACKEND"] = VARIANTS[variant][0]
    ips = VARIANTS[variant][1](net)
    print(json.dumps({"variant": variant, "net": net, "img_per_s": round(ips, 1)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tf-python", help="a Python interpreter with tensorflow + keras installed")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--nets", default="airbench,classic")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(*a.child)
    results = {}
    for r in range(a.rounds):
        for net in a.nets.split(","):
            for variant in VARIANTS:
                py = sys.executable
                env = dict(os.environ)
                if variant.startswith("keras_tf"):
                    if not a.tf_python:
                        continue
                    py = a.tf_python
                    env["TF_ENABLE_ONEDNN_OPTS"] = "1"
                out = subprocess.run([py, __file__, "--child", variant, net], capture_output=True, text=True, env=env)
                if out.returncode:
                    print(f"{variant}/{net} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
                    continue
                row = json.loads(out.stdout.strip().splitlines()[-1])
                key = f"{net}/{variant}"
                results[key] = max(results.get(key, 0), row["img_per_s"])
                print(f"round {r + 1} {key:34s} {row['img_per_s']:8.1f} img/s", flush=True)
    table = {}
    for key, ips in results.items():
        net, variant = key.split("/")
        table.setdefault(net, {})[variant] = ips
    print("\nbest over rounds, img/s (ratio to raw PyTorch):")
    for net, row in table.items():
        ref = row.get("torch_raw")
        for variant, ips in row.items():
            ratio = f"{ips / ref:.2f}" if ref else "-"
            print(f"  {net:9s} {variant:20s} {ips:8.1f}  {ratio}")
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    from cifarkit.provenance import command_line

    record = {
        "command": command_line(__file__),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()},
        "batch": B,
        "dtype": "float32",
        "data": "random uint8 images 32x32x3 (throughput only)",
        "img_per_s": table,
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", "backend.json")
    with open(path + ".tmp", "w") as f:
        json.dump(record, f, indent=2)
    os.replace(path + ".tmp", path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
