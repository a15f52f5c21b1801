"""Labels and groups from names or a file, and the plan of an image source that uses them (no decoding here).

Three ways to label an image folder or archive (``load_dataset(labels=...)``):

- class folders (the default, :mod:`.image_folder`);
- ``"filename:REGEX"``: the first capture group of ``REGEX``, searched in each
  image's file name, is its label (``filename:^([a-z]+)_\\d+`` labels
  ``crazing_12.jpg`` as ``crazing``); ``"path:REGEX"`` searches the relative path instead;
- a CSV file (a local path) with the columns ``path,label[,group]``: paths relative
  to the data root, an optional header line ``path,label[,group]``.

Groups (``load_dataset(group_by=REGEX)``, or the CSV's third column): the capture
group of ``REGEX`` searched in each image's path relative to the data root gives
its group (patient, part, session); several capture groups are joined with
``/`` (write ``(?:...)`` for a group that should not count). Whole groups then go
to one split each (:mod:`.group_splits`).

**The data root** is the folder given, or the top of an archive; an archive whose
members all sit in one folder (what zipping a folder makes) has that folder as
its root, so that the same regex and CSV work on a folder and on its archive.
CSV paths may also name that folder in front.

Splits: ``train/``, ``val/`` (``valid/``, ``validation/``) and ``test/`` folders at
the top of the root keep their split (images outside them are then ignored and
listed); without them every image is split at random, stratified (and by group).

Safety rules, as for folders: a CSV path that is absolute or leads outside the
root (``..``) is refused with its line number, as are malformed lines, blank or
missing-value labels (``nan``, ``NA``, ``unknown``, ...), blank groups, duplicate
paths, paths that name no image of the data, and labels only seen in the
validation/test folders. A filename or group regex that does not match an
image is refused with the file and the regex. Images the labels file does not
name are ignored and listed with the skipped files; unreadable images are
skipped and listed by the loader as usual.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .decode import IMAGE_EXTENSIONS
from .entry import Entry
from .errors import DataError
from .image_folder import SPLIT_ALIASES, FolderPlan, plan_folder

NAME_PREFIXES = ("filename:", "path:")
MAX_LABELS_BYTES = 256 * 1024 * 1024
# Values spreadsheets and data frames write for a missing label; never a class.
MISSING_LABELS = frozenset({"nan", "na", "n/a", "#n/a", "null", "none", "unknown", "?", "-"})
_HEADERS = (["path", "label"], ["path", "label", "group"])
_EXAMPLES = 5


# ------------------------------------------------------------------------------------- parsing the options


def _compile(value: str, option: str, example: str) -> re.Pattern:
    try:
        pattern = re.compile(value)
    except re.error as exc:
        raise ValueError(f"{option} '{value}' is not a valid regular expression ({exc}). Example: {example}.") from None
    if pattern.groups == 0:
        raise ValueError(
            f"{option} '{value}' has no capture group: put the part that names it in parentheses, e.g. {example}."
        )
    return pattern


def parse_group_by(value) -> re.Pattern | None:
    """``group_by`` as a compiled regex (None when empty); ValueError for an invalid one or one without a capture group."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, re.Pattern):
        value = value.pattern
    if not isinstance(value, str):
        raise ValueError(f"group_by must be a regular expression (str), got {type(value).__name__}.")
    return _compile(value, "The group regex (--group-by / group_by)", r"'patient(\d+)' or '^(\w+)_'")


@dataclass(frozen=True)
class LabelSpec:
    """Where labels come from: ``kind`` is ``"filename"`` or ``"path"`` (with ``pattern``) or ``"csv"``."""

    kind: str
    pattern: re.Pattern | None = None
    path: Path | None = None
    text: str = ""
    sha256: str = ""

    def describe(self) -> str:
        """In words, for reports: ``file names (regex '...')`` or ``labels file /x/labels.csv``."""
        if self.kind == "csv":
            return f"labels file {self.path}"
        where = "file names" if self.kind == "filename" else "relative paths"
        return f"{where} (regex '{self.pattern.pattern}')"

    def option(self) -> str:
        """As ``load_dataset(labels=...)`` takes it back."""
        return str(self.path) if self.kind == "csv" else f"{self.kind}:{self.pattern.pattern}"

    def cache_field(self):
        """What identifies these labels in the decode cache key: the regex, or the CSV's content hash."""
        return {"csv_sha256": self.sha256} if self.kind == "csv" else self.option()


def parse_labels(value) -> LabelSpec | None:
    """``labels`` as a :class:`LabelSpec` (None when empty); a CSV file is read here, once.

    Raises:
        ValueError: an invalid regex, or one without a capture group.
        FileNotFoundError: the CSV file does not exist.
        DataError: the CSV file cannot be read, is too large or is not UTF-8 text.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, LabelSpec):
        return value
    if isinstance(value, str) and value.strip().lower().startswith(NAME_PREFIXES):
        kind, _, regex = value.strip().partition(":")
        example = r"'filename:^([a-z]+)_\d+'" if kind.lower() == "filename" else r"'path:^(\w+)/'"
        return LabelSpec(kind.lower(), _compile(regex, f"The label regex (labels {kind.lower()}:...)", example))
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(
            f"labels must be 'filename:REGEX', 'path:REGEX' or the path of a CSV file, got {type(value).__name__}."
        )
    path = Path(value).expanduser()
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise FileNotFoundError(
            f"Labels file {what}: {path}. Give a CSV file with lines path,label[,group] (paths relative to the "
            "data root), or 'filename:REGEX' to read the labels from the file names."
        )
    path = path.resolve()
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_LABELS_BYTES + 1)
    except OSError as exc:
        raise DataError(f"Cannot read the labels file {path}: {exc}. Check its permissions.") from exc
    if len(data) > MAX_LABELS_BYTES:
        raise DataError(f"Labels file {path} is over {MAX_LABELS_BYTES >> 20} MiB; that is no list of labels.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"Labels file {path}, line {line}: not UTF-8 text ({exc.reason}). Save the file as UTF-8."
        ) from None
    return LabelSpec("csv", path=path, text=text, sha256=hashlib.sha256(data).hexdigest())


# ------------------------------------------------------------------------------------- the CSV file


@dataclass
class LabelRow:
    line: int
    path: str
    label: str
    group: str | None


def _bad_line(spec: LabelSpec, line: int, problem: str) -> DataError:
    header = " (a header line must read path,label or path,label,group)" if line == 1 else ""
    return DataError(f"Labels file {spec.path}, line {line}: {problem}{header}. Fix or remove that line.")


def normalise_path(raw: str) -> tuple[str | None, str | None]:
    """``(relative path with '/' separators, None)``, or ``(None, why it is refused)``."""
    text = raw.strip().replace("\\", "/")
    if not text:
        return None, "the path is empty"
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        return None, f"the path '{raw.strip()}' is absolute; paths must be relative to the data root"
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None, f"the path '{raw.strip()}' leads outside the data root ('..'); paths must stay inside it"
    if not parts:
        return None, f"the path '{raw.strip()}' names the data root itself, not an image"
    return "/".join(parts), None


def check_label(label: str) -> str | None:
    """Why a label is refused (blank, or a missing-value marker), else None."""
    if not label:
        return "the label is blank"
    if label.lower() in MISSING_LABELS:
        return f"the label {label!r} marks a missing label (a class really named so: rename it, e.g. 'other')"
    return None


def read_label_rows(spec: LabelSpec) -> tuple[list[LabelRow], bool]:
    """The CSV's rows, every line checked: ``(rows, whether it has a group column)``."""
    reader = csv.reader(io.StringIO(spec.text, newline=""))
    rows: list[LabelRow] = []
    first_line: dict[str, int] = {}
    width, width_line = None, None
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise _bad_line(spec, reader.line_num, f"not valid CSV ({exc})") from None
        line = reader.line_num
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue  # a blank line
        cells = [c.strip() for c in cells]
        if width is None and [c.lower() for c in cells] in _HEADERS:
            width, width_line = len(cells), line
            continue
        if len(cells) not in (2, 3):
            raise _bad_line(
                spec, line, f"expected 2 or 3 columns (path,label[,group]), found {len(cells)}: {','.join(cells)!r}"
            )
        if width is None:
            width, width_line = len(cells), line
        elif len(cells) != width:
            raise _bad_line(
                spec,
                line,
                f"{len(cells)} columns where line {width_line} has {width}; give every line the same columns "
                "(path,label or path,label,group)",
            )
        path, why = normalise_path(cells[0])
        if why:
            raise _bad_line(spec, line, why)
        why = check_label(cells[1])
        if why:
            raise _bad_line(spec, line, f"{why} for {path!r}")
        group = cells[2] if len(cells) == 3 else None
        if group is not None and not group:
            raise _bad_line(spec, line, f"the group is blank for {path!r}")
        if path in first_line:
            raise _bad_line(spec, line, f"{path!r} is listed again (first on line {first_line[path]})")
        if os.path.splitext(path)[1].lower() not in IMAGE_EXTENSIONS:
            raise _bad_line(
                spec, line, f"{path!r} is not an image file (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})"
            )
        first_line[path] = line
        rows.append(LabelRow(line, path, cells[1], group))
    if not rows:
        raise DataError(
            f"Labels file {spec.path} lists no image: write one line path,label[,group] per image "
            "(paths relative to the data root)."
        )
    return rows, width == 3


# ------------------------------------------------------------------------------------- paths and splits


def archive_root(entries: list[Entry], kind: str) -> str:
    """The one folder an archive's members all sit in ("" for a folder source, or when there is none)."""
    if kind == "dir" or not entries:
        return ""
    tops = {e.parts[0] for e in entries}
    if len(tops) != 1:
        return ""
    (top,) = tops
    if top.lower() in SPLIT_ALIASES or not any(len(e.parts) > 1 for e in entries):
        return ""
    if any(len(e.parts) == 1 and not e.is_dir for e in entries):
        return ""
    return top


def relative_path(entry: Entry, root: str) -> str:
    """An entry's path relative to the data root (see :func:`archive_root`), '/'-separated."""
    return "/".join(entry.parts[1:] if root else entry.parts)


def _examples(paths: list[str]) -> str:
    shown = ", ".join(paths[:_EXAMPLES])
    return shown + (f" and {len(paths) - _EXAMPLES} more" if len(paths) > _EXAMPLES else "")


def group_of(pattern: re.Pattern, text: str) -> str | None:
    """The group id ``pattern`` captures in ``text`` (capture groups joined with '/'), None without a match."""
    m = pattern.search(text)
    if m is None:
        return None
    captured = [g for g in m.groups() if g]
    return "/".join(captured) or None


def groups_from_paths(pattern: re.Pattern, paths: list[str], where: str) -> np.ndarray:
    """Each path's group; DataError naming the files and the regex when some do not match."""
    out, unmatched = [], []
    for p in paths:
        g = group_of(pattern, p)
        if g is None:
            unmatched.append(p)
        out.append(g or "")
    if unmatched:
        raise DataError(
            f"The group regex '{pattern.pattern}' (--group-by) does not match {len(unmatched)} of {len(paths)} "
            f"image paths of {where} (paths relative to the data root): {_examples(unmatched)}. Every image needs a "
            r"group: fix the regex (it is searched in the path, e.g. 'patient(\d+)'; several capture groups are "
            "joined with '/') or move those files out of the data."
        )
    return np.asarray(out, dtype=str)


# ------------------------------------------------------------------------------------- plans


def plan_source(entries: list[Entry], where: str, kind: str, *, labels=None, group_by=None) -> FolderPlan:
    """Classes, splits, labels (and groups) of an image folder's or archive's listing.

    Args:
        entries: the source's listing (hidden files already dropped).
        where: how to name the source in messages.
        kind: the reader's kind, ``"dir"``, ``"tar"`` or ``"zip"`` (see :func:`archive_root`).
        labels: None (class folders) or what :func:`parse_labels` takes.
        group_by: None or what :func:`parse_group_by` takes.

    Raises:
        DataError: as described in this module's docstring and :mod:`.image_folder`.
    """
    spec = parse_labels(labels)
    pattern = parse_group_by(group_by)
    if spec is None:
        plan = plan_folder(entries, where)
        if pattern is not None:
            root = archive_root(entries, kind)
            rel = {id(e.ref): relative_path(e, root) for e in entries if e.is_image}
            plan.paths = {s: [rel[id(e.ref)] for e in ents] for s, (ents, _) in plan.splits.items()}
            every = [p for s in plan.paths for p in plan.paths[s]]
            found = groups_from_paths(pattern, every, where)
            plan.groups, start = {}, 0
            for s, paths in plan.paths.items():
                plan.groups[s] = found[start : start + len(paths)]
                start += len(paths)
            plan.group_source = f"regex '{pattern.pattern}' on the relative paths"
    else:
        plan = _plan_labelled(entries, where, kind, spec, pattern)
    if plan.groups is not None:
        check_given_splits(plan, where)
    return plan


def _split_of(parts: list[str], where: str, seen: dict[str, str]) -> str | None:
    """The canonical split of a relative path's first folder, or None (no split folder)."""
    if len(parts) < 2 or parts[0].lower() not in SPLIT_ALIASES:
        return None
    canonical = SPLIT_ALIASES[parts[0].lower()]
    other = seen.setdefault(canonical, parts[0])
    if other != parts[0]:
        raise DataError(
            f"{where} has several folders for the {canonical!r} split ({', '.join(sorted({other, parts[0]}))}); "
            "keep one of them."
        )
    return canonical


def _plan_labelled(entries, where: str, kind: str, spec: LabelSpec, pattern: re.Pattern | None) -> FolderPlan:
    images = [e for e in entries if e.is_image]
    if not images:
        raise DataError(
            f"No image files found in {where} ({', '.join(sorted(IMAGE_EXTENSIONS))}); hidden files and "
            "__MACOSX are ignored."
        )
    root = archive_root(entries, kind)
    rel = {relative_path(e, root): e for e in images}
    loose: list[tuple[Entry, str]] = []
    # (relative path, entry, label, group or None, what to name it in messages)
    chosen: list[tuple[str, Entry, str, str | None, str]] = []
    if spec.kind == "csv":
        rows, has_group = read_label_rows(spec)
        if has_group and pattern is not None:
            raise ValueError(
                f"The labels file {spec.path} has a group column and a group regex was given too "
                f"('{pattern.pattern}'); give the groups in one place."
            )
        missing = []
        named = set()
        for row in rows:
            e = rel.get(row.path)
            if e is None and root and row.path.startswith(root + "/"):
                e = rel.get(row.path[len(root) + 1 :])
            if e is None:
                missing.append(row)
                continue
            r = relative_path(e, root)
            if r in named:  # the same image named with and without the archive's folder
                raise _bad_line(spec, row.line, f"{row.path!r} names an image listed on an earlier line")
            named.add(r)
            chosen.append((r, e, row.label, row.group, f"line {row.line} ({row.path})"))
        if missing:
            listed = _examples([f"line {r.line}: {r.path}" for r in missing])
            raise DataError(
                f"Labels file {spec.path}: {len(missing)} line(s) name no image of {where} (paths are relative to "
                f"the data root): {listed}. Fix the paths or remove those lines."
            )
        loose += [(e, f"not in the labels file {spec.path.name}; ignored") for r, e in rel.items() if r not in named]
    else:
        unmatched, bad = [], []
        for r, e in sorted(rel.items()):
            m = spec.pattern.search(e.parts[-1] if spec.kind == "filename" else r)
            label = (m.group(1) or "").strip() if m else None
            if label is None:
                unmatched.append(r)
            elif check_label(label):
                bad.append(f"{r} ({check_label(label)})")
            else:
                chosen.append((r, e, label, None, r))
        if unmatched:
            raise DataError(
                f"The label regex '{spec.pattern.pattern}' (labels '{spec.option()}') does not match the "
                f"{'file name' if spec.kind == 'filename' else 'relative path'} of {len(unmatched)} of {len(rel)} "
                f"images of {where}: {_examples(unmatched)}. Every image needs a label: fix the regex (its first "
                "capture group is the label) or move those files out of the data."
            )
        if bad:
            raise DataError(
                f"The label regex '{spec.pattern.pattern}' gives unusable labels for {len(bad)} images of {where}: "
                f"{_examples(bad)}. Fix the regex or rename those files."
            )
    if pattern is not None:
        groups = groups_from_paths(pattern, [c[0] for c in chosen], where)
        chosen = [(r, e, label, str(g), name) for (r, e, label, _, name), g in zip(chosen, groups)]
    return _labelled_plan(chosen, loose, where, spec, pattern)


def _labelled_plan(chosen, loose, where: str, spec: LabelSpec, pattern) -> FolderPlan:
    seen: dict[str, str] = {}
    per_split: dict[str, list] = {}
    split_layout = any(_split_of(r.split("/"), where, seen) for r, *_ in chosen)
    for item in chosen:
        split = _split_of(item[0].split("/"), where, seen) if split_layout else "train"
        if split is None:
            loose.append((item[1], "outside the train/val/test folders; ignored"))
            continue
        per_split.setdefault(split, []).append(item)
    if split_layout and "train" not in per_split:
        raise DataError(
            f"{where} has split folders ({', '.join(sorted(seen.values()))}) but no image in a 'train' folder "
            f"(labels from the {spec.describe()}). Add one, or put the images outside split folders for a seeded "
            "random split."
        )
    class_names = sorted({item[2] for item in per_split["train"]})
    if len(class_names) < 2:
        found = f"only the label {class_names[0]!r}" if class_names else "no label"
        raise DataError(
            f"The {spec.describe()} give {found} for the training images of {where}; at least 2 classes are "
            "needed for classification."
        )
    label_of = {c: i for i, c in enumerate(class_names)}
    for split, items in per_split.items():
        unknown = [item for item in items if item[2] not in label_of]
        if unknown:
            r, _, label, _, name = unknown[0]
            raise DataError(
                f"{where}: the label {label!r} ({name}, from the {spec.describe()}) is given to {split} images "
                f"but to no training image; every class needs training images."
            )
    splits, groups, paths = {}, {}, {}
    has_groups = any(item[3] is not None for items in per_split.values() for item in items)
    for split, items in per_split.items():
        items = sorted(items, key=lambda item: (label_of[item[2]], item[0]))
        splits[split] = ([item[1] for item in items], np.asarray([label_of[item[2]] for item in items], np.int64))
        paths[split] = [item[0] for item in items]
        if has_groups:
            groups[split] = np.asarray([item[3] for item in items], dtype=str)
    plan = FolderPlan(class_names, splits, {}, loose, "labels-split" if split_layout else "labels")
    plan.paths = paths
    plan.label_source = spec.describe()
    if has_groups:
        plan.groups = groups
        plan.group_source = (
            f"regex '{pattern.pattern}' on the relative paths" if pattern is not None else "labels file's group column"
        )
    return plan


def check_given_splits(plan: FolderPlan, where: str) -> None:
    """DataError naming a group (and its files) that has images in more than one given split folder."""
    if plan.groups is None or len(plan.groups) < 2:
        return
    splits_of: dict[str, list[str]] = {}
    for split in ("train", "val", "test"):
        for g in np.unique(plan.groups.get(split, [])):
            splits_of.setdefault(str(g), []).append(split)
    straddling = sorted(g for g, s in splits_of.items() if len(s) > 1)
    if not straddling:
        return
    g = straddling[0]
    files = []
    for split in splits_of[g]:
        mine = [p for p, gid in zip(plan.paths[split], plan.groups[split]) if gid == g]
        files.append(f"{split}: {_examples(mine)}")
    more = (
        f" {len(straddling) - 1} more group(s) straddle too: {_examples(straddling[1:])}."
        if len(straddling) > 1
        else ""
    )
    raise DataError(
        f"{where}: group {g!r} (from the {plan.group_source}) has images in more than one of the given split folders "
        f"({'; '.join(files)}).{more} A group must stay within one split, or the test measures images the model "
        "has seen the like of: move each group's files into one split folder, or fix the group regex."
    )
