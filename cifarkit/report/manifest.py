"""The run's ``manifest.json``: what a run was started with and what each session did.

The runner creates it (:func:`new_manifest`) and updates it after every notebook;
resuming a run reads it back (:func:`load_manifest`) and checks the options given
again against what it recorded (:func:`resume_options`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cifarkit import files, provenance, run_folder
from cifarkit.report.plan import absolute_data, domain_parameters, plan_model


def load_manifest(run_dir: str | os.PathLike) -> dict:
    """The manifest of a run folder; a folder that is no run, or whose manifest is unreadable, raises
    ``FileNotFoundError``/``ValueError`` with a message that says so (never a bare JSON error)."""
    path = Path(run_dir) / run_folder.MANIFEST
    example = "Pass a folder that run_all.py made, e.g. --resume reports/20260101-120000-standard."
    if not path.is_file():
        what = "is not a folder" if Path(run_dir).exists() and not Path(run_dir).is_dir() else f"has no {path.name}"
        raise FileNotFoundError(f"No run to resume at {run_dir}: it {what}. {example}")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"Cannot resume {run_dir}: its {path.name} is not valid JSON ({exc}); the file is damaged. "
            f"Start a new run, or restore the file."
        ) from None
    except OSError as exc:
        raise ValueError(f"Cannot resume {run_dir}: {path.name} cannot be read ({exc.strerror}).") from None
    if not isinstance(manifest, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(manifest), "a number"
        )
        raise ValueError(
            f"Cannot resume {run_dir}: its {path.name} holds {kind}, not the JSON object "
            f"run_all.py writes; it is not a run's manifest. {example}"
        )
    if not isinstance(manifest.get("profile"), str) or not isinstance(manifest.get("notebooks", {}), dict):
        raise ValueError(
            f"Cannot resume {run_dir}: its {path.name} records no profile and notebooks, so it is not a run "
            f"that run_all.py made. {example}"
        )
    return manifest


def describe_data(data: str | None) -> dict:
    """Provenance of the data source: what was asked for and, for a file, its sha256."""
    if not data:
        return {"source": "cifar10 (official archive, downloaded and cached)", "sha256": None}
    info = {"source": str(data), "sha256": None}
    path = Path(data).expanduser()
    if path.is_file():
        info["path"] = str(path.resolve())
        info["size_bytes"] = path.stat().st_size
        info["sha256"] = files.file_sha256(path)
    elif path.is_dir():
        info["path"] = str(path.resolve())
    return info


def new_manifest(
    run_id: str,
    profile,
    plan,
    *,
    data: str | None,
    domain: dict,
    overrides: dict | None,
    no_code: bool,
    renderers: dict,
    command: str,
    started_at: str,
) -> dict:
    """The manifest of a new run, before any notebook ran (``notebooks`` is empty)."""
    data_info = describe_data(data)
    data_info["argument"] = absolute_data(data)
    return {
        "run_id": run_id,
        "profile": profile.name,
        "profile_description": profile.description,
        "command": command,
        "overrides": overrides or {},
        "seed": (overrides or {}).get("SEED", profile.common.get("SEED")),
        "model": plan_model(plan),
        "image_size": domain.get("IMAGE_SIZE"),
        "class_names": domain["CLASS_NAMES"].split(",") if "CLASS_NAMES" in domain else None,
        "no_code": no_code,
        "data": data_info,
        "versions": provenance.package_versions(),
        "keras_backend": os.environ.get("KERAS_BACKEND", "torch"),
        # what mixed_precision="auto" meant in this run (run_all.py --precision; "auto": bf16 on GPUs and
        # CPUs with bf16 units)
        "precision": os.environ.get("CIFARKIT_MIXED_PRECISION", "").strip().lower() or "auto",
        "hardware": provenance.hardware_info(),
        "git": provenance.git_info(),
        "renderers": renderers,
        "started_at": started_at,
        "notebooks": {},
    }


def data_argument(manifest: dict):
    """The ``--data`` a run was started with (``None``: the official CIFAR-10)."""
    data = manifest.get("data") or {}
    if "argument" in data:
        return data["argument"]
    for entry in (manifest.get("notebooks") or {}).values():  # runs made before "argument" was recorded
        if (entry.get("parameters") or {}).get("DATA"):
            return entry["parameters"]["DATA"]
    if str(data.get("source", "")).startswith("cifar10 (official"):
        return None
    return data.get("path") or data.get("source")


def same_data(given: str, manifest: dict) -> bool:
    """True when ``--data given`` names the data the run was started with (same argument or same file)."""
    stored = data_argument(manifest)
    if absolute_data(given) == (absolute_data(stored) if stored else stored):
        return True
    sha = (manifest.get("data") or {}).get("sha256")
    path = Path(given).expanduser()
    return bool(sha) and path.is_file() and files.file_sha256(path) == sha


def resume_options(run_dir: Path, manifest: dict, profile, data, image_size, class_names, overrides):
    """The options of a resumed run: those it was started with, updated by the ones given again.

    Returns ``(profile, data, image_size, class_names, overrides)``. A profile, data,
    image size or class names that contradicts the run raises ``ValueError``.
    """
    previous = manifest.get("profile")
    if profile and profile != previous:
        raise ValueError(
            f"Cannot resume {run_dir} with profile {profile!r}: that run used profile {previous!r}. "
            f"Leave --profile out (the run's own is used) or start a new run."
        )
    if data is not None and not same_data(data, manifest):
        raise ValueError(
            f"Cannot resume {run_dir} with --data {data}: that run used "
            f"{data_argument(manifest) or 'the official CIFAR-10'}. "
            f"Leave --data out (the run's own is used) or start a new run."
        )
    for key, given in (("image_size", image_size), ("class_names", class_names)):
        stored = manifest.get(key)
        if given is not None and given != "" and stored is not None:
            new = domain_parameters(**{key: given})
            old = domain_parameters(**{key: stored})
            if new != old:
                raise ValueError(
                    f"Cannot resume {run_dir} with {key.replace('_', '-')} {given!r}: that run used "
                    f"{stored!r}. Leave the option out or start a new run."
                )
    image_size = image_size if image_size is not None else manifest.get("image_size")
    class_names = class_names or manifest.get("class_names")
    overrides = {**(manifest.get("overrides") or {}), **(overrides or {})}
    return previous, data_argument(manifest), image_size, class_names, overrides


def totals(manifest: dict) -> dict:
    """Execution and rendering seconds summed over the run's notebooks (older runs: a number, not html/pdf)."""
    entries = [e for e in (manifest.get("notebooks") or {}).values() if isinstance(e, dict)]

    def total(get):
        vals = [v for v in map(get, entries) if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return round(sum(vals), 2) if vals else 0.0

    def render_seconds(entry, kind):
        rs = entry.get("render_seconds")
        return rs.get(kind) if isinstance(rs, dict) else (rs if kind == "html" else None)

    out = {
        "execute_seconds": total(lambda e: e.get("execute_seconds")),
        "render_html_seconds": total(lambda e: render_seconds(e, "html")),
        "render_pdf_seconds": total(lambda e: render_seconds(e, "pdf")),
        "planned_seconds": total(lambda e: e.get("planned_seconds")),  # the time estimate made before the run
    }
    if out["execute_seconds"]:
        out["render_percent_of_execute"] = round(
            100 * (out["render_html_seconds"] + out["render_pdf_seconds"]) / out["execute_seconds"], 1
        )
    return out
