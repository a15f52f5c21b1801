"""Planning a run before any notebook runs: which notebooks, with which parameters.

:func:`plan_run` checks the profile, the notebook selection and every parameter
name against what the notebooks declare, so that a typo fails at once with the
valid names instead of after an hour of training.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import yaml

from cifarkit import secrets
from cifarkit.report import notebooks as nbsource
from cifarkit.report import profiles
from cifarkit.wording import plural

# Parameters every notebook may declare; the runner fills them in.
RUN_PARAMETERS = ("RUN_DIR", "DATA")
# How the data's images are labelled and grouped: they change the splits, so every notebook that loads the
# data (declares DATA) must declare them too, or the notebooks would not see the same splits.
DATA_OPTIONS = ("GROUP_BY", "LABELS")
# The run_all.py option behind each parameter set by domain_parameters.
OPTION_OF = {
    "IMAGE_SIZE": "--image-size",
    "CLASS_NAMES": "--class-names",
    "GROUP_BY": "--group-by",
    "LABELS": "--labels/--labels-from",
}


def notebook_parameters(spec: profiles.NotebookSpec) -> dict:
    """The parameters a notebook declares in its cell tagged ``parameters`` (read from its script)."""
    if not spec.source.is_file():
        raise FileNotFoundError(
            f"Notebook {spec.name} is listed in cifarkit/report/profiles.py but its source {spec.source} does not "
            f"exist. Restore it (git checkout -- notebooks/) or leave it out with --skip {spec.name[:2]}."
        )
    return nbsource.parameters(nbsource.read_source(spec.source))


def parse_value(text: str):
    """Turn a ``-p NAME VALUE`` string into a Python value the way YAML reads it ("3" -> 3, "true" -> True)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if value is None and text.strip() not in ("null", "~", "") else value


def select_notebooks(only=None, skip=None) -> list[profiles.NotebookSpec]:
    specs = list(profiles.NOTEBOOKS)
    if only:
        wanted = {profiles.notebook_spec(n).name for n in only}
        specs = [s for s in specs if s.name in wanted]
    if skip:
        unwanted = {profiles.notebook_spec(n).name for n in skip}
        specs = [s for s in specs if s.name not in unwanted]
    if not specs:
        raise ValueError("No notebook left to run after --only/--skip.")
    return specs


def split_parameters(pairs: dict) -> tuple[dict, dict]:
    """``{NAME: value}`` from ``-p`` into the overrides of every notebook and the per-notebook ones: a name
    ``NOTEBOOK.NAME`` (``03.EPOCHS`` or ``03_train.EPOCHS``) sets ``NAME`` in that notebook only, as a
    ``--budget`` plan does (:func:`plan_run`'s ``notebook_overrides``).

    Raises ``ValueError`` for an unknown notebook, and for a value with a password: a credential is given
    for every notebook (``-p STORAGE URL``) or in ``CIFARKIT_STORAGE``, which keep it out of every file."""
    common, per_notebook = {}, {}
    for name, value in pairs.items():
        if "." not in str(name):
            common[name] = value
            continue
        notebook, param = str(name).split(".", 1)
        spec = profiles.notebook_spec(notebook)
        if not param:
            raise ValueError(f"-p {name} names no parameter after the dot. Example: -p {spec.name}.EPOCHS 3.")
        if secrets.mask_values(value) != value:  # a string, or one inside a mapping or list
            raise ValueError(
                f"-p {name} carries a password, which a per-notebook setting would write into the manifest. "
                f"Give it for every notebook (-p {param} URL) or in CIFARKIT_STORAGE."
            )
        per_notebook.setdefault(spec.name, {})[param] = value
    return common, per_notebook


def merge_notebook_overrides(*layers: dict | None) -> dict:
    """Per-notebook overrides layered left to right (a later layer wins for the same notebook and name)."""
    merged: dict = {}
    for layer in layers:
        for notebook, params in (layer or {}).items():
            merged.setdefault(notebook, {}).update(params)
    return merged


def absolute_data(data: str | None) -> str | None:
    """Notebooks run with the run directory as working directory, so a relative path to
    existing data is made absolute here; names like ``synthetic:60`` pass through."""
    if not data:
        return data
    path = Path(data).expanduser()
    return str(path.resolve()) if path.exists() else str(data)


def domain_parameters(image_size=None, class_names=None, group_by=None, labels=None) -> dict:
    """Notebook parameters for a custom data set: ``IMAGE_SIZE``, ``CLASS_NAMES``, ``GROUP_BY`` and ``LABELS``.

    Args:
        image_size: side in pixels of the square images the models see (``None`` keeps the profile's).
        class_names: display names for the data's classes, in the order of its own
            class names: ``"a,b,c"``, ``"a b c"`` or a list (``None``/empty keeps the data's own).
        group_by: a regex with a capture group: each image's group from its relative path
            (``--group-by``); checked here, the data is not read.
        labels: ``"filename:REGEX"``/``"path:REGEX"`` (``--labels-from``) or a CSV file
            (``--labels``), which must exist; it is given as an absolute path (the notebooks
            run in the run folder).

    Returns:
        ``{"IMAGE_SIZE": int, "CLASS_NAMES": "a,b,c", "GROUP_BY": str, "LABELS": str}`` with only the given ones.

    Raises:
        ValueError: an invalid value (a bad regex, one without a capture group, ...).
        FileNotFoundError: the labels file does not exist.
    """
    from cifarkit.data import parse_class_names

    params = {}
    if image_size is not None:
        try:
            size = int(image_size)
        except (TypeError, ValueError):
            size = None
        if size is None or size != float(image_size) or size < 8:
            raise ValueError(
                f"--image-size must be a whole number of pixels, at least 8; received {image_size!r}. "
                "Example: --image-size 64."
            )
        params["IMAGE_SIZE"] = size
    if class_names:
        if isinstance(class_names, str):  # "a,b,c" or "a b c"
            class_names = class_names.split(",") if "," in class_names else class_names.split()
        names = parse_class_names(list(class_names))
        params["CLASS_NAMES"] = ",".join(names)
    if group_by:
        params["GROUP_BY"] = check_group_by(group_by)
    if labels:
        params["LABELS"] = check_labels(labels)
    return params


def check_group_by(value) -> str:
    """``GROUP_BY`` checked (a string, a valid regex, a capture group); ValueError with one clear line."""
    from cifarkit.data import parse_group_by

    if not isinstance(value, str):
        raise ValueError(f"--group-by (GROUP_BY) must be a regular expression; received {value!r}.")
    parse_group_by(value)
    return value


def check_labels(value) -> str:
    """``LABELS`` checked: ``filename:REGEX``/``path:REGEX`` with a valid regex and a capture group, or a CSV file
    that exists (returned as an absolute path). ValueError or FileNotFoundError with one clear line."""
    from cifarkit.data import parse_labels

    if not isinstance(value, (str, Path)):
        raise ValueError(f"--labels/--labels-from (LABELS) must be a file or 'filename:REGEX'; received {value!r}.")
    spec = parse_labels(str(value))
    return spec.option()


def plan_run(
    profile_name: str,
    overrides: dict | None = None,
    only=None,
    skip=None,
    data: str | None = None,
    *,
    image_size=None,
    class_names=None,
    group_by=None,
    labels=None,
    notebook_overrides: dict | None = None,
):
    """Check everything that can be checked before a notebook runs.

    ``image_size``/``class_names``/``group_by``/``labels`` (see :func:`domain_parameters`) set ``IMAGE_SIZE``,
    ``CLASS_NAMES``, ``GROUP_BY`` and ``LABELS`` for every selected notebook that declares them.
    ``GROUP_BY`` and ``LABELS`` (from here or from ``overrides``) change the splits: every selected notebook
    that loads the data must declare them, and the data's listing is checked against them (every path
    matches, the labels file is sound, there are enough groups) before anything runs.
    ``notebook_overrides`` (``{notebook: {NAME: value}}``, what a ``--budget`` plan sets) apply to one
    notebook each, after everything else.

    Returns ``(profile, [(spec, parameters), ...])``. Unknown profile, notebook or
    parameter names raise ``ValueError`` listing the valid ones; a notebook file
    missing from ``notebooks/`` raises ``FileNotFoundError``.
    """
    profile = profiles.load_profile(profile_name)
    if not only:  # the profile's own skip list; naming a notebook in --only runs it anyway
        skip = list(skip or []) + list(profile.skip)
    specs = select_notebooks(only, skip)
    overrides = dict(overrides or {})
    domain = domain_parameters(image_size, class_names, group_by, labels)
    declared = {spec.name: notebook_parameters(spec) for spec in specs}
    _check_data_options_declared(specs, declared, {**overrides, **domain})
    _check_names(profile, specs, declared, overrides, domain)
    plan = []
    for spec in specs:
        params = profile.parameters_for(spec.name)
        params.update(overrides)
        params.update(domain)
        own = (notebook_overrides or {}).get(spec.name) or {}
        bad = sorted(set(own) - set(declared[spec.name]))
        if bad:
            raise ValueError(
                f"Notebook {spec.name} declares no parameter(s) {', '.join(bad)} (set for it alone by "
                f"-p {spec.name}.NAME or --budget). Its parameters: {', '.join(sorted(set(declared[spec.name]) - set(RUN_PARAMETERS)))}."
            )
        params.update(own)
        params = {k: v for k, v in params.items() if k in declared[spec.name]}
        origins = {
            k: f"-p {spec.name}.{k} or --budget" if k in own else _origin(k, profile, overrides, domain) for k in params
        }
        check_parameters(spec.name, params, declared[spec.name], origins)
        if data is not None and "DATA" in declared[spec.name]:
            params["DATA"] = absolute_data(data)
        plan.append((spec, params))
    _check_registered(plan)
    _check_data(plan, data)
    return profile, plan


def _check_data_options_declared(specs, declared: dict, given: dict) -> None:
    """``GROUP_BY``/``LABELS`` set: every selected notebook that loads data (declares ``DATA``) declares them."""
    for name in DATA_OPTIONS:
        if not given.get(name):
            continue
        lacking = [s.name for s in specs if "DATA" in declared[s.name] and name not in declared[s.name]]
        if lacking:
            raise ValueError(
                f"{OPTION_OF[name]} sets {name}, which changes the splits, but notebook(s) {', '.join(lacking)} do "
                f'not declare it and would load other splits than the rest. Add `{name}: str = ""` to their '
                f"parameters cell and pass {name.lower()}={name} to load_study_data, or leave them out (--only/--skip)."
            )


def _check_names(profile, specs, declared: dict, overrides: dict, domain: dict) -> None:
    """Every parameter set by ``overrides``, ``domain`` or the profile is declared by a selected notebook."""
    all_declared = set().union(*declared.values())
    unknown = sorted(set(overrides) - all_declared)
    if unknown:
        raise ValueError(
            f"Unknown parameter(s) {', '.join(unknown)} for the selected notebooks. "
            f"Valid parameters: {', '.join(sorted(all_declared - set(RUN_PARAMETERS)))}."
        )
    for name in domain:
        if name not in all_declared:
            option = OPTION_OF[name]
            raise ValueError(
                f"{option} sets {name}, but none of the selected notebooks "
                f"({', '.join(s.name for s in specs)}) declares that parameter."
            )
    for spec in specs:
        bad = sorted(set(profile.notebooks.get(spec.name) or {}) - set(declared[spec.name]))
        if bad:
            raise ValueError(f"Profile {profile.name!r} sets unknown parameter(s) {bad} for notebook {spec.name}.")


def plan_model(plan) -> str | None:
    """The ``MODEL`` of the first planned notebook that sets one (the run's model)."""
    return next((params["MODEL"] for _, params in plan if "MODEL" in params), None)


# ------------------------------------------------------------------ checking values
# A parameter's comment may open with its range, "[lo, hi]" (either side may be empty), or its choices, "{a, b}".
_RANGE = re.compile(r"^\s*\[\s*([^\],]*?)\s*,\s*([^\]]*?)\s*\]")
_CHOICES = re.compile(r"^\s*\{([^}]*)\}")
_TYPES = {
    "int": "a whole number (int)",
    "float": "a number (float)",
    "bool": "true or false (bool)",
    "str": "a text (str)",
    "dict": "a mapping (dict) such as {key: value}",
}


def parameter_rule(info: dict) -> dict:
    """What a notebook allows for one parameter, from papermill's reading of its declaration.

    Returns ``{"type": "int"|"float"|"bool"|"str"|"dict"|None, "lo": number|None, "hi": number|None,
    "choices": [str, ...]|None}``, read from the annotation and the start of the comment.
    """
    help_text = info.get("help") or ""
    rule = {"type": info.get("inferred_type_name"), "lo": None, "hi": None, "choices": None}
    if rule["type"] not in _TYPES:
        rule["type"] = None
    m = _RANGE.match(help_text)
    if m:
        rule["lo"], rule["hi"] = (float(x) if x else None for x in m.groups())
    m = _CHOICES.match(help_text)
    if m:
        rule["choices"] = [c.strip() for c in m.group(1).split(",") if c.strip()]
    return rule


def _allowed(rule: dict) -> str:
    """A rule in words: ``a whole number (int) from 0 to 10000``, ``one of median, halving``."""
    if rule["choices"]:
        return "one of " + ", ".join(rule["choices"])
    text = _TYPES.get(rule["type"], "any value")
    lo, hi = (_number(v) if v is not None else None for v in (rule["lo"], rule["hi"]))
    if lo and hi:
        return f"{text} from {lo} to {hi}"
    if lo or hi:
        return f"{text} of at {'least ' + lo if lo else 'most ' + hi}"
    return text


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def _type_name(value) -> str:
    return "null" if value is None else type(value).__name__


def _fits(value, rule: dict) -> bool:
    kind = rule["type"]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "int" and not (number and isinstance(value, int)):
        return False
    if kind == "float" and not (number and math.isfinite(value)):
        return False
    if kind in ("bool", "str", "dict") and not isinstance(value, {"bool": bool, "str": str, "dict": dict}[kind]):
        return False
    if number and rule["lo"] is not None and value < rule["lo"]:
        return False
    if number and rule["hi"] is not None and value > rule["hi"]:
        return False
    return not rule["choices"] or (isinstance(value, str) and value in rule["choices"])


def check_parameters(notebook: str, params: dict, declared: dict, origins: dict | None = None) -> None:
    """Every value of ``params`` has its declared type, range and choices, else a ``ValueError`` that names
    the parameter, the notebook, what was received (and from where) and what is allowed."""
    origins = origins or {}
    for name, value in params.items():
        rule = parameter_rule(declared.get(name) or {})
        if _fits(value, rule):
            continue
        received = secrets.mask(value) if isinstance(value, str) else value
        hint = ""
        if rule["type"] == "str" and isinstance(value, (int, float, bool)):
            hint = f" To pass it as text, quote it for YAML: -p {name} '\"{value}\"'."
        where = f", set by {origins[name]}" if origins.get(name) else ""
        raise ValueError(
            f"Parameter {name} of notebook {notebook} must be {_allowed(rule)}; received {received!r} "
            f"({_type_name(value)}{where}).{hint}"
        )


def _origin(name: str, profile, overrides: dict, domain: dict) -> str:
    if name in domain:
        return OPTION_OF[name]
    if name in overrides:
        return f"-p {name}"
    return f"profile {profile.name!r}"


def _check_registered(plan) -> None:
    """``MODEL`` names a registered model (a CIFAR model or an ImageNet backbone), ``BACKBONE`` a backbone or
    ``none``, and ``RECIPE`` a named recipe, in every notebook that sets them."""
    wanted = {name for _, params in plan for name in ("MODEL", "RECIPE", "BACKBONE") if name in params}
    if not wanted:
        return
    known = {}
    if wanted & {"MODEL", "BACKBONE"}:
        models, backbones = registered_models()
        known["MODEL"] = models + backbones if models is not None else None
        known["BACKBONE"] = ["none", *backbones] if models is not None else None
    if "RECIPE" in wanted:
        from cifarkit.training import list_recipes

        known["RECIPE"] = list_recipes()
    for spec, params in plan:
        for name, names in known.items():
            value = params.get(name)
            if name == "BACKBONE" and isinstance(value, str) and value.strip().lower() in ("", "none"):
                continue
            if names and name in params and value not in names:
                raise ValueError(
                    f"Parameter {name} of notebook {spec.name} must be one of {', '.join(names)}; received {value!r}."
                )


def registered_models() -> tuple[list[str] | None, list[str]]:
    """``(cifarkit.models.list_models(), list_backbones())``. Importing the models imports Keras and PyTorch
    (about 450 MB that the runner would hold for the whole run), so unless they are imported already the
    names are asked of a short-lived Python process. ``(None, [])`` when that fails: the notebook reports
    the import error."""
    if "cifarkit.models" in sys.modules:
        models = sys.modules["cifarkit.models"]
        return models.list_models(), models.list_backbones()
    code = (
        "from cifarkit.models import list_backbones, list_models; "
        "print(' '.join(list_models())); print(' '.join(list_backbones()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        return None, []
    lines = out.stdout.splitlines() + ["", ""]
    return lines[0].split(), lines[1].split()


def _first(plan, name: str):
    return next((p[name] for _, p in plan if p.get(name)), None)


def _check_data(plan, data) -> None:
    """The data's listing fits the options (nothing decoded): ``GROUP_BY``/``LABELS`` are valid, every image gets
    a label and a group, there are enough groups for the split; ``CLASS_NAMES`` gives one name per class.
    A ``LABELS`` file is made an absolute path in every notebook's parameters."""
    group_by, labels = _first(plan, "GROUP_BY"), _first(plan, "LABELS")
    if group_by:
        check_group_by(group_by)
    if labels:
        labels = check_labels(labels)
        for _, params in plan:
            if params.get("LABELS"):
                params["LABELS"] = labels
    given = _first(plan, "CLASS_NAMES")
    if not (given or group_by or labels):
        return
    from cifarkit.data import CIFAR10_CLASSES, DataError, peek_class_names

    options = {}
    if group_by or labels:
        if not data:
            raise ValueError(
                f"{OPTION_OF['GROUP_BY' if group_by else 'LABELS']} needs --data: an image folder or archive "
                "(the official CIFAR-10 has its own labels and no file paths)."
            )
        options = {"group_by": group_by, "labels": labels, "seed": int(_first(plan, "SEED") or 0)}
        options["val_fraction"] = float(next((p["VAL_FRACTION"] for _, p in plan if "VAL_FRACTION" in p), 0.1))
    try:
        classes = list(CIFAR10_CLASSES) if not data else peek_class_names(data, **options)
    except DataError as exc:
        raise ValueError(str(exc)) from None
    if not given:
        return
    names = [n.strip() for n in str(given).split(",") if n.strip()]
    if len(names) != len(classes):
        source = data or "(the official CIFAR-10)"
        raise ValueError(
            f"CLASS_NAMES (--class-names) gives {plural(len(names), 'name')} ({', '.join(names)}) but the data {source} has "
            f"{len(classes)} classes ({', '.join(classes)}). Give one display name per class, in this order."
        )
