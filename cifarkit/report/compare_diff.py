"""What differs between compared runs: profile, data, notebook parameters, training settings, versions,
hardware and git commit, read from each run's manifest and ``03_train`` metrics (see :mod:`cifarkit.report.compare`).
"""

from __future__ import annotations

import json

#: Notebook parameters that name the run's own folder, so they differ between any two runs.
PER_RUN_PARAMETERS = ("RUN_DIR",)


def parameters(manifest: dict) -> dict[str, dict]:
    """``{notebook: {parameter: value}}`` of a run, without the parameters that name the run's own folder."""
    out = {}
    for name, entry in (manifest.get("notebooks") or {}).items():
        params = (entry or {}).get("parameters") if isinstance(entry, dict) else None
        if isinstance(params, dict):
            out[name] = {k: v for k, v in params.items() if k not in PER_RUN_PARAMETERS}
    return out


def _flat(value, prefix: str = "") -> dict:
    if isinstance(value, dict) and value:
        out = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _differing(values: list[dict]) -> tuple[dict[str, list], list[str]]:
    """Keys whose value is not the same in every dict (absent counts as ``None``), and the keys that are."""
    keys = list(dict.fromkeys(k for v in values for k in v))
    differ = {k: [v.get(k) for v in values] for k in keys if any(v.get(k) != values[0].get(k) for v in values)}
    return differ, [k for k in keys if k not in differ]


def parameter_diff(runs: list[dict]) -> dict:
    """What differs between the runs, group by group, and what is the same.

    Returns ``{"groups": [{"group", "noun", "rows": [{"name", "values"}], "same": [key, ...]}], "same": [text, ...]}``;
    a row's ``values`` has one entry per run (``None`` where a run has no such value); ``same`` (top level)
    says in words what every run shares.
    """
    manifests = [r["manifest"] for r in runs]
    groups = []

    def group(title: str, noun: str, values: list[dict]):
        differ, same = _differing(values)
        groups.append(
            {"group": title, "noun": noun, "rows": [{"name": k, "values": v} for k, v in differ.items()], "same": same}
        )

    group(
        "Run",
        "run options",
        [
            {
                "profile": m.get("profile"),
                "image size": m.get("image_size"),
                "class names": ", ".join(map(str, m["class_names"])) if m.get("class_names") else None,
                "command-line overrides": json.dumps(m.get("overrides") or {}, sort_keys=True),
            }
            for m in manifests
        ],
    )
    group("Data", "data", [{k: (m.get("data") or {}).get(k) for k in ("source", "sha256")} for m in manifests])
    params = [parameters(m) for m in manifests]
    notebooks = list(dict.fromkeys(n for p in params for n in p))
    in_all = [nb for nb in notebooks if all(nb in p for p in params)]
    flat_params = [{f"{nb} {key}": value for nb in in_all for key, value in p[nb].items()} for p in params]
    group("Notebook parameters", "notebook parameters", flat_params)
    ran = [{nb: ("ran" if nb in p else "not run") for nb in notebooks if nb not in in_all} for p in params]
    if any(ran):
        group("Notebooks run", "notebooks run", ran)
    group(
        "Training settings (03_train config)",
        "training settings",
        [_flat(r["train"].get("config") or {}) for r in runs],
    )
    group("Versions", "package versions", [_flat(m.get("versions") or {}) for m in manifests])
    group("Hardware", "hardware", [_flat(m.get("hardware") or {}) for m in manifests])
    group("Git", "git", [_flat(m.get("git") or {}) for m in manifests])
    return {"groups": groups, "same": [_same_text(g) for g in groups if g["same"]]}


def _same_text(g: dict) -> str:
    """``git: commit, dirty``, ``all 12 package versions``, ``the other 19 notebook parameters``."""
    same = g["same"]
    if len(same) <= 4:
        return f"{g['noun']}: {', '.join(same)}"
    return f"{'the other' if g['rows'] else 'all'} {len(same)} {g['noun']}"


def diff_phrases(diff: dict, limit: int = 6) -> list[str]:
    """What differs, as short phrases: ``03_train EPOCHS (1 vs 2)``, ``training setting epochs (1 vs 2)``."""
    prefix = {
        "Training settings (03_train config)": "training setting ",
        "Versions": "version of ",
        "Hardware": "hardware ",
        "Git": "git ",
        "Data": "data ",
    }
    out = []
    for g in diff["groups"]:
        for r in g["rows"]:
            shown = ["-" if v is None else str(v) for v in r["values"]]
            values = f" ({' vs '.join(shown)})" if all(len(v) <= 24 for v in shown) else ""
            out.append(f"{prefix.get(g['group'], '')}{r['name']}{values}")
    if len(out) > limit:
        out = out[:limit] + [f"{len(out) - limit} more (table 1)"]
    return out
