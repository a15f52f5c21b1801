r"""The README's worked example: scikit-learn's bundled digits as an image folder, through the domain profile.

Usage:
    python benchmarks/digits_example.py FOLDER                 # write the image folder only
    python benchmarks/digits_example.py FOLDER --run [--out /tmp/digitsrun] [--no-pdf]

``sklearn.datasets.load_digits`` ships with scikit-learn (no download): 1,797 handwritten digits, 8x8 pixels
in 17 grey levels (0-16), 10 classes of 174 to 183 images, from the UCI "Optical Recognition of Handwritten
Digits" data (Alpaydin & Kaynak 1998). Each image is written as an 8-bit greyscale PNG (grey level x 255 / 16)
to ``FOLDER/<digit>/<index>.png``; the folder is written beside itself and renamed into place. With ``--run``
it then runs, as a user would::

    python run_all.py --profile domain --data FOLDER -p AUGMENT no-flip --out OUT

(``no-flip``: a mirrored digit is another symbol or none, so training keeps the profile's crop and cutout and
never mirrors; the profile's 96 px: the loader converts the 8x8 digits to RGB and enlarges them; the profile's crop and cutout
are sized for 96 px, so another ``--image-size`` would need them scaled too) and records what
``bench_domain.summarize`` reads from the run in ``benchmarks/results/domain_digits.json``. The bundled set
names no writers, so the images are folded one by one (no ``--group-by``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

OUTPUT = HERE / "results" / "domain_digits.json"


def write_digits(folder: Path) -> Path:
    """Write the 1,797 digits as ``folder/<digit>/<index>.png`` (kept when complete already)."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    if folder.is_dir() and sum(1 for _ in folder.glob("*/*.png")) == len(digits.target):
        return folder
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for i, (image, label) in enumerate(zip(digits.images, digits.target)):
        (tmp / str(label)).mkdir(parents=True, exist_ok=True)
        pixels = np.round(image * 255 / 16).astype(np.uint8)
        Image.fromarray(pixels).save(tmp / str(label) / f"{i:04d}.png")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="where the image folder is written")
    p.add_argument("--run", action="store_true", help="then run the domain profile on it and record the results")
    p.add_argument("--out", default="/tmp/digitsrun", help="run_all.py --out")
    p.add_argument("--no-pdf", action="store_true", help="pass --no-pdf")
    args = p.parse_args(argv)
    folder = write_digits(Path(args.folder).expanduser().resolve())
    print(f"wrote {folder}")
    if not args.run:
        return 0
    from bench_domain import summarize

    out = Path(args.out)
    before = {q.name for q in out.iterdir()} if out.is_dir() else set()
    command = [sys.executable, "run_all.py", "--profile", "domain", "--data", str(folder), "-p", "AUGMENT", "no-flip"]
    command += ["--out", str(out)] + (["--no-pdf"] if args.no_pdf else [])
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT)
    wall = time.perf_counter() - t0
    runs = [q for q in out.iterdir() if q.is_dir() and q.name not in before]
    if len(runs) != 1:
        print(f"digits_example.py: expected one new run folder in {out}, found {len(runs)}", file=sys.stderr)
        return 1
    shown = ["python"] + [str(a) for a in command[1:]]
    record = summarize(runs[0], wall, shown, round(load_before, 2), round(os.getloadavg()[0], 2))
    record["what"] = "python run_all.py --profile domain on scikit-learn's bundled digits (1,797 images, 10 classes)"
    record["data"]["proxy"] = None
    record["data"]["source"] = (
        "sklearn.datasets.load_digits (bundled with scikit-learn; UCI Optical Recognition of Handwritten Digits), "
        "8x8 greyscale written as PNG by benchmarks/digits_example.py, resized to 96x96 by the loader"
    )
    record["returncode"], record["pdf"] = proc.returncode, not args.no_pdf
    print(json.dumps(record, indent=1))
    from cifarkit.files import atomic_write_json

    atomic_write_json(OUTPUT, record)
    print(f"recorded in {OUTPUT}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
