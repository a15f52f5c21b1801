"""Credentials in parameter values: masked wherever they are written, revealed only inside the kernel.

A parameter such as ``STORAGE`` may hold a database URL with a password
(``postgresql://user:secret@host/db``). The runner writes every such value
masked (``postgresql://user:***@host/db``) into the manifest, the executed
notebook, its reports, the dashboards and the log, and hands the real value to
the kernel in the environment variable :func:`env_name` (``CIFARKIT_SECRET_STORAGE``).
The notebook turns the masked value back into the real one with :func:`reveal`.
The tuning storage may also come from ``CIFARKIT_STORAGE`` alone, so that the
password never appears on a command line.

Only the standard library is used here: notebooks import this module before anything heavy.
"""

from __future__ import annotations

import contextlib
import os
import re

MASK = "***"
ENV_PREFIX = "CIFARKIT_SECRET_"
STORAGE_ENV = "CIFARKIT_STORAGE"

# scheme://userinfo@rest, the userinfo running to the last "@" (an unencoded "@" in a password is masked too).
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>.*)@(?P<rest>[^@]*)$", re.S)
# URL-shaped words inside free text (error messages, log lines).
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")


def _split(value) -> tuple[str, str, str, str] | None:
    """``(scheme://, user, password, rest)`` of a URL with a password, else ``None``."""
    if not isinstance(value, str):
        return None
    m = _URL.match(value.strip())
    if not m or ":" not in m["userinfo"]:
        return None
    user, password = m["userinfo"].split(":", 1)
    if not password or "/" in user:
        return None
    return m["scheme"], user, password, m["rest"]


def has_credentials(value) -> bool:
    """True when ``value`` is URL-shaped with a password: ``scheme://user:password@...`` (masked or not)."""
    return _split(value) is not None


def carries_credentials(value) -> bool:
    """True when ``value`` (a string, or dicts and lists holding strings) has a URL with a password anywhere,
    masked or not: a string that is such a URL, or free text with one inside (what :func:`mask_values` masks)."""
    return any(_credential_spans(text) for text in _strings(value))


def is_masked(value) -> bool:
    """True when ``value`` is a URL whose password is :data:`MASK` (what :func:`mask` returns)."""
    parts = _split(value)
    return parts is not None and parts[2] == MASK


def mask(value) -> str:
    """``value`` with the URL password replaced by ``***``, the rest kept; any other value as given (as text)."""
    parts = _split(value)
    if parts is None:
        return value if isinstance(value, str) else str(value)
    scheme, user, _, rest = parts
    return f"{scheme}{user}:{MASK}@{rest}"


def _credential_spans(text: str) -> list[tuple[int, int]]:
    """Where ``text`` holds URLs with a password: each URL-shaped word that is one, or, when no word is, all of
    the text (less surrounding blanks) if it is one such URL (a password with a blank or a quote in it)."""
    if "://" not in text:
        return []
    words = [m.span() for m in _URL_IN_TEXT.finditer(text) if has_credentials(m.group(0))]
    if words or not has_credentials(text):
        return words
    return [(len(text) - len(text.lstrip()), len(text.rstrip()))]


def _strings(value):
    """Every string in a JSON-like value (dicts, lists, tuples, strings)."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def mask_text(text) -> str:
    """Free text (a message, a command line) with the password of every URL in it masked."""
    if not isinstance(text, str):
        return text
    out, end = [], 0
    for start, stop in _credential_spans(text):
        out += [text[end:start], mask(text[start:stop])]
        end = stop
    return "".join(out) + text[end:]


def mask_values(value):
    """A JSON-like value (dicts, lists, strings) with every credential-bearing string masked."""
    if isinstance(value, dict):
        return {k: mask_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_values(v) for v in value]
    return mask_text(value)


def env_name(param: str) -> str:
    """The environment variable that carries the real value of ``param`` to the kernel."""
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", str(param)).upper()


def secret_environment(params: dict) -> dict[str, str]:
    """``{env_name(name): real value}`` for each parameter whose value holds a password (not a masked one)."""
    return {
        env_name(name): value
        for name, value in params.items()
        if isinstance(value, str) and has_credentials(value) and not is_masked(value)
    }


@contextlib.contextmanager
def exported(env: dict[str, str]):
    """Set ``env`` in ``os.environ`` for the duration (a kernel started inside inherits it), then restore."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def reveal(param: str, value: str) -> str:
    """The real value of a parameter, in the notebook.

    - ``value`` masked, and ``CIFARKIT_SECRET_<PARAM>`` holds a URL whose mask is ``value``: that URL;
    - ``value`` empty and ``param == "STORAGE"``: ``$CIFARKIT_STORAGE`` (empty when unset);
    - else ``value`` as given.
    """
    if value in (None, ""):
        return os.environ.get(STORAGE_ENV, "") if param == "STORAGE" else value
    if is_masked(value):
        real = os.environ.get(env_name(param), "")
        if real and mask(real) == value.strip():
            return real
    return value
