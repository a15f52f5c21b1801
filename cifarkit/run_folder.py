"""The run folder: where every file of a study run lives, and the one place that reads and writes them.

``<out>/<run-id>/`` holds::

    manifest.json                 profile, parameters, versions, hardware, data, git, timings (report.runner)
    .running.json                 the lock of the process writing the run
    NN_name.ipynb/.html/.pdf      each executed notebook and its reports
    metrics/NN_name.json          what each notebook recorded (record_metrics / load_metrics)
    models/<folder>/model.keras   trained models, beside checkpoint.pt, history and metrics.json
    tune/                         the Optuna study and best_params.json (02_tune)
    figures/NN_name_K.png         figures extracted for the dashboard

The notebook that trains the study's model is :data:`TRAIN`; notebook 06 lists
the models it trained under ``models`` in its metrics. :func:`find_run_models`
reads both, so no other module needs to know where a model came from.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from cifarkit.files import atomic_write_json, read_json, to_jsonable
from cifarkit.paths import REPORTS_DIR
from cifarkit.provenance import now_iso

# The notebooks whose files other steps read, by name.
EXPLORE = "01_explore_data"
TUNE = "02_tune"
TRAIN = "03_train"
EVALUATE = "04_evaluate"
BASELINES = "05_baselines"
ARCHITECTURES = "06_architectures_and_ensembles"
CROSS_VALIDATION = "07_cross_validation"

MANIFEST = "manifest.json"
LOCK = ".running.json"
METRICS_DIR = "metrics"
MODELS_DIR = "models"
MODEL_FILE = "model.keras"
TUNE_DIR = "tune"
FIGURES_DIR = "figures"
PREDICTIONS_DIR = "predictions"
LOGS_DIR = "logs"


# ---------------------------------------------------------------- metrics files
def metrics_path(run_dir: str | os.PathLike, notebook: str) -> Path:
    return Path(run_dir) / METRICS_DIR / f"{notebook}.json"


def record_metrics(run_dir: str | os.PathLike, notebook: str, metrics: dict) -> Path:
    """Merge ``metrics`` into ``<run_dir>/metrics/<notebook>.json`` (atomic write)."""
    path = metrics_path(run_dir, notebook)
    current = load_metrics(run_dir, notebook) if path.exists() else {}
    current.update(to_jsonable(metrics))
    current["recorded_at"] = now_iso()
    return atomic_write_json(path, current)


def load_metrics(run_dir: str | os.PathLike, notebook: str) -> dict:
    """What ``notebook`` recorded in this run; a clear ``FileNotFoundError`` when it recorded nothing."""
    path = metrics_path(run_dir, notebook)
    if not path.exists():
        raise FileNotFoundError(
            f"No metrics recorded for notebook {notebook!r} in {run_dir} (looked for {path}). "
            f"Run that notebook first, e.g. `python run_all.py --only {notebook}`."
        )
    with open(path) as f:
        return json.load(f)


def read_metrics(run_dir: str | os.PathLike, notebook: str) -> dict:
    """Like :func:`load_metrics`, but ``{}`` when the file is missing or unreadable (for dashboards)."""
    data = read_json(metrics_path(run_dir, notebook))
    return data if isinstance(data, dict) else {}


# ---------------------------------------------------------------- stored predictions
def images_fingerprint(x, y) -> str:
    """sha256 of a split's images and labels (shape, dtype and bytes): two runs evaluated the same test
    images exactly when their fingerprints agree."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for a in (np.ascontiguousarray(x), np.ascontiguousarray(y)):
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def predictions_path(run_dir: str | os.PathLike, notebook: str = EVALUATE, split: str = "test") -> Path:
    return Path(run_dir) / PREDICTIONS_DIR / f"{notebook}_{split}.npz"


def save_predictions(run_dir, notebook: str, *, x, y_true, probs, class_names, split: str = "test") -> Path:
    """Store a notebook's predictions on a split (labels, class probabilities, the images' fingerprint), so that
    another run can be compared with this one image by image (``python -m cifarkit compare``)."""
    import io

    import numpy as np

    from cifarkit.files import atomic_write_bytes

    probs = np.asarray(probs, dtype=np.float32)
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        y_true=np.asarray(y_true, dtype=np.int64),
        y_pred=probs.argmax(1).astype(np.int64),
        probs=probs,
        class_names=np.asarray([str(c) for c in class_names]),
        fingerprint=np.asarray(images_fingerprint(x, y_true)),
    )
    return atomic_write_bytes(predictions_path(run_dir, notebook, split), buf.getvalue())


def load_predictions(run_dir, notebook: str = EVALUATE, split: str = "test") -> dict:
    """What :func:`save_predictions` stored: ``y_true``, ``y_pred``, ``probs``, ``class_names``, ``fingerprint``."""
    import numpy as np

    path = predictions_path(run_dir, notebook, split)
    if not path.is_file():
        raise FileNotFoundError(
            f"{run_dir} holds no stored {split} predictions ({path} does not exist). Runs record them in notebook "
            f"{notebook}; run it in that run folder (python run_all.py --resume RUN_DIR --only {notebook[:2]})."
        )
    with np.load(path, allow_pickle=False) as data:
        out = {k: data[k] for k in data.files}
    out["class_names"] = [str(c) for c in out["class_names"]]
    out["fingerprint"] = str(out["fingerprint"])
    return out


def capture_warnings(run_dir: str | os.PathLike, notebook: str) -> Path:
    """Send the warnings of the rest of a notebook to ``<run_dir>/logs/<notebook>.log`` instead of its output.

    A library's warning (a deprecation, a missing optional widget) is a note for the developer, not a result:
    it is kept, with where it came from, in the run's log, and never printed into a report.
    """
    import warnings

    path = Path(run_dir) / LOGS_DIR / f"{notebook}.log"
    path.parent.mkdir(parents=True, exist_ok=True)

    def to_log(message, category, filename, lineno, file=None, line=None):
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{now_iso()} {category.__name__}: {message} ({filename}:{lineno})\n")

    warnings.showwarning = to_log
    return path


def resolve_run_dir(run_dir: str | os.PathLike | None) -> Path:
    """The run directory a notebook writes into.

    ``run_all.py`` passes ``RUN_DIR``; a notebook opened by hand (empty
    ``RUN_DIR``) writes under ``reports/interactive``.
    """
    path = Path(run_dir) if run_dir else REPORTS_DIR / "interactive"
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_dir(run_dir: str | os.PathLike, folder: str) -> Path:
    """``<run_dir>/models/<folder>``: where a training run of this study writes its files."""
    return Path(run_dir) / MODELS_DIR / folder


# ---------------------------------------------------------------- a new run's folder
#: How many runs may take one run id (then suffixed -2, -3, ...), e.g. started in the same second.
MAX_SAME_ID = 1000


def create_run_dir(out_dir: Path, run_id: str, exact: bool = False) -> Path:
    """Create ``<out_dir>/<run_id>``, or ``<run_id>-2``, ``-3``... when another run took the name (``exact``:
    the name as given, or ``ValueError``). An output folder that cannot hold runs raises ``ValueError``.

    Creating the folder is what reserves the name: of two runs started in the same
    second, each gets its own folder.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"The output folder {out_dir} (--out) is a file, not a folder. Give a folder to write into.")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"Cannot create the output folder {out_dir} (--out): {describe_os_error(exc)}.") from None
    for k in range(1, MAX_SAME_ID + 1):
        run_dir = out_dir / (run_id if k == 1 else f"{run_id}-{k}")
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            if exact:
                raise ValueError(f"The run folder {run_dir} exists already. Choose another run id.") from None
        except OSError as exc:
            raise ValueError(
                f"Cannot create the run folder in {out_dir} (--out): {describe_os_error(exc)}. "
                f"Choose a folder you can write to."
            ) from None
    raise ValueError(f"{MAX_SAME_ID} runs named {run_id} exist in {out_dir} already.")


def describe_os_error(exc: OSError) -> str:
    """An ``OSError`` in words without a traceback: ``permission denied: /path``."""
    what = (exc.strerror or type(exc).__name__).lower()
    return f"{what}: {exc.filename}" if exc.filename else what


def remove_if_empty(run_dir: Path) -> None:
    try:
        run_dir.rmdir()
    except OSError:
        pass


# ---------------------------------------------------------------- the run lock
class RunLocked(ValueError):
    """Another process is writing the run folder (``info``: its ``pid``, ``host``, ``started_at``)."""

    def __init__(self, run_dir, info: dict):
        self.info = info
        super().__init__(
            f"Run {run_dir} is being written by process {info.get('pid') or '?'} (started "
            f"{info.get('started_at') or '?'}); only one run_all.py writes a run at a time. "
            f"Wait for it to finish, then resume."
        )


class RunLock:
    """The exclusive lock on a run folder held by this process: ``flock`` on ``<run_dir>/.running.json``.

    The kernel releases a ``flock`` when its process dies, so a killed run leaves
    no stale lock behind; :meth:`release` also removes the file.
    """

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            if _same_file(self.fd, self.path):
                self.path.unlink()
        except OSError:
            pass
        finally:
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def acquire_lock(run_dir: str | os.PathLike, started_at: str, tries: int = 10) -> RunLock:
    """Take the run's lock before anything of the run is written, or raise :class:`RunLocked`.

    Atomic: of two processes asking at once, exactly one gets it. The lock file
    records who holds it (``pid``, ``host``, ``started_at``) for :func:`lock_holder`.
    ``tries``: a reader probing the lock (:func:`lock_holder`) holds it for an
    instant, so a busy lock is asked again a few times, 50 ms apart.
    """
    path = Path(run_dir) / LOCK
    if fcntl is None:  # no flock (Windows): an exclusively created file
        return _acquire_exclusive_file(path, started_at)
    for attempt in range(tries):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            if attempt == tries - 1:
                raise RunLocked(run_dir, read_json(path) or {}) from None
            time.sleep(0.05)
            continue
        if not _same_file(fd, path):  # its holder removed the file between our open and flock: again
            os.close(fd)
            continue
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started_at": started_at})
        os.ftruncate(fd, 0)
        os.pwrite(fd, (info + "\n").encode(), 0)
        return RunLock(path, fd)
    raise RunLocked(run_dir, read_json(path) or {})


def _acquire_exclusive_file(path: Path, started_at: str) -> RunLock:
    if path.exists() and lock_holder(path.parent) is None:  # left by a process that died
        path.unlink(missing_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        raise RunLocked(path.parent, read_json(path) or {}) from None
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": started_at}
    os.write(fd, (json.dumps(info) + "\n").encode())
    return RunLock(path, fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def lock_holder(run_dir: str | os.PathLike) -> dict | None:
    """Who writes the run now: the lock's ``pid``, ``host``, ``started_at`` while a process holds it, else ``None``.

    A lock file whose process died is not held (its ``flock`` went with it): ``None``.
    """
    path = Path(run_dir) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        if fcntl is None:
            info = read_json(path)
            alive = isinstance(info, dict) and info.get("host") == socket.gethostname() and _pid_alive(info.get("pid"))
            return info if alive else None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            info = read_json(path)  # held: say by whom
            return info if isinstance(info, dict) else {"pid": None, "host": None, "started_at": None}
        return None
    finally:
        os.close(fd)  # releases the probe's shared lock


def _pid_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except PermissionError:  # alive, owned by another user
        return True
    except (TypeError, ValueError, OSError):
        return False
    return True


# ---------------------------------------------------------------- finding models
def resolve_saved_path(raw, run_dir: str | os.PathLike) -> Path:
    """A recorded model path as it is now: absolute, relative to the run, or inside a run folder moved since."""
    run_dir = Path(run_dir)
    path = Path(str(raw)).expanduser()
    if not path.is_absolute():
        return run_dir / path
    if path.exists():
        return path
    parts = path.parts
    if MODELS_DIR in parts:  # the run folder was moved or copied: the same models/<name>/file inside this run
        i = len(parts) - 1 - parts[::-1].index(MODELS_DIR)
        moved = run_dir.joinpath(*parts[i:])
        if moved.exists():
            return moved
    return path


def find_run_models(run_dir) -> list[dict]:
    """The models trained in a run, found through what its notebooks recorded.

    Reads ``metrics/03_train.json`` (its ``model_path``) and the metrics of
    notebook 06 (``metrics/06_*.json``: a ``models`` list, or dict, of entries
    with ``name`` and ``model_path``). A model recorded twice is returned once;
    two models with one name get their notebook appended. Recorded paths are
    resolved with :func:`resolve_saved_path`.

    Returns:
        ``{"name", "model_path", "source", "exists", "epochs_run", "train_seconds", "recorded"}``
        per model, the training notebook's first; empty when nothing was recorded.
    """
    run_dir = Path(run_dir)
    found: list[dict] = []
    seen: set[str] = set()

    def add(name, entry: dict, source: str):
        raw = entry.get("model_path")
        if not raw:
            return
        path = resolve_saved_path(raw, run_dir)
        key = str(path.resolve())
        if key in seen:
            return
        seen.add(key)
        found.append(
            {
                "name": str(name or path.parent.name),
                "model_path": str(path),
                "source": source,
                "exists": path.is_file(),
                "epochs_run": entry.get("epochs_run", entry.get("epochs")),
                "train_seconds": entry.get("train_seconds"),
                "recorded": entry,
            }
        )

    train = read_json(metrics_path(run_dir, TRAIN))
    if isinstance(train, dict):
        add(train.get("model"), train, TRAIN)
    for path in sorted((run_dir / METRICS_DIR).glob("06_*.json")):
        models = (read_json(path) or {}).get("models") or []
        entries = list(models.items()) if isinstance(models, dict) else list(enumerate(models))
        for key, entry in entries:
            if isinstance(entry, dict):
                name = entry.get("name") or entry.get("model") or (key if isinstance(key, str) else f"model{key}")
                add(name, entry, path.stem)
    names = [m["name"] for m in found]
    for m in found:
        if names.count(m["name"]) > 1:
            m["name"] = f"{m['name']} ({m['source']})"
    return found


def resolve_model_path(run_dir, model_path: str = "") -> Path:
    """The model to evaluate: ``model_path`` if given, else the one the training notebook recorded in this run.

    Raises:
        FileNotFoundError: ``model_path`` is not a file, or no model was recorded
            (the message names the run folder searched and what to run).
    """
    run_dir = Path(run_dir)
    if model_path:
        path = Path(model_path).expanduser()
        path = path if path.is_absolute() else (Path.cwd() / path)
        if not path.is_file():
            raise FileNotFoundError(
                f"MODEL_PATH points to {path}, which is not a file. Give the path of a saved model.keras, or leave "
                f"MODEL_PATH empty to evaluate the model {TRAIN} trained in this run ({run_dir})."
            )
        return path
    for entry in find_run_models(run_dir):
        if entry["source"] == TRAIN:
            if not entry["exists"]:
                raise FileNotFoundError(
                    f"{TRAIN} recorded the model {entry['model_path']} in {metrics_path(run_dir, TRAIN)}, "
                    f"but the file is missing. Run {TRAIN} again in this run, or set MODEL_PATH to a saved model."
                )
            return Path(entry["model_path"])
    raise FileNotFoundError(
        f"No trained model found in the run directory {run_dir}: {metrics_path(run_dir, TRAIN)} does not "
        f"exist or names no model. Run {TRAIN} first in the same run (python run_all.py --only {TRAIN} "
        f"{EVALUATE}), or set MODEL_PATH to a saved model.keras."
    )


def training_info(model_path) -> dict:
    """What the training loop recorded beside a saved model (its ``metrics.json``), or ``{}``.

    Returns:
        ``{"model", "epochs_run", "val_acc", "test_acc", "dataset", "config"}`` where known.
    """
    m = read_json(Path(model_path).with_name("metrics.json"))
    if not isinstance(m, dict):
        return {}
    return {
        "model": m.get("model"),
        "epochs_run": m.get("epochs"),
        "val_acc": m.get("val_acc"),
        "test_acc": m.get("test_acc"),
        "dataset": m.get("dataset") or {},
        "config": m.get("config") or {},
    }


# ---------------------------------------------------------------- loading models
def load_model(path, num_classes: int | None = None, input_shape=None):
    """Load a saved model (``model.keras``) in inference mode and check that it fits the data.

    Args:
        path: the ``.keras`` file.
        num_classes: classes of the data it will see; ``None`` skips the check.
        input_shape: ``(height, width, channels)`` of the data's images; ``None`` skips the check.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: an empty path, or a model made for another class count or image size.
    """
    if path is None or str(path).strip() == "":
        raise ValueError(
            "Loading a model needs the path of a saved model (a model.keras file); received an empty path. "
            f"Run notebook {TRAIN} first, which saves one under <run>/models/<MODEL>/{MODEL_FILE}."
        )
    path = Path(path).expanduser()
    if not path.is_file():
        where = "a folder, not a file" if path.is_dir() else "no such file"
        raise FileNotFoundError(
            f"No trained model at {path} ({where}). Notebook {TRAIN} saves the model it trains to "
            f"<run>/models/<MODEL>/{MODEL_FILE}: Run {TRAIN} first in this run (python run_all.py --only {TRAIN}) "
            f"or give the path of an existing .keras file (MODEL_PATH)."
        )
    from cifarkit import backend

    keras = backend.keras()
    import cifarkit.models  # noqa: F401 - registers the custom layers a saved model needs

    model = keras.saving.load_model(str(path), compile=False)
    out_classes = int(model.outputs[0].shape[-1])
    if num_classes is not None and out_classes != int(num_classes):
        raise ValueError(
            f"The model at {path} predicts {out_classes} classes but the data has {int(num_classes)} classes. "
            f"Evaluate it on the data it was trained on (same DATA and CLASS_NAMES), or train a model for this data "
            f"with {TRAIN}."
        )
    if input_shape is not None:
        model_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        if model_shape != tuple(int(d) for d in input_shape):
            raise ValueError(
                f"The model at {path} takes images of shape {model_shape} but the data's images are "
                f"{tuple(input_shape)}. Use the IMAGE_SIZE the model was trained with."
            )
    if hasattr(model, "eval"):
        model.eval()
    return model
