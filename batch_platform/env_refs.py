"""`${NAME}`: a value read from the environment variable NAME — the one home of the pattern.

Secrets never live in the config file: it writes `${NAME}` and the value is read from the
environment. Where a secret may be written (`spark.conf`, `storage.s3`, `publish.postgres.dsn`) the
reference is kept as written and resolved only where a client or the Spark session is built
(`expand_env_refs`, `env_value`, `connection_parameters`), so the config, Dagster's resource config
(run storage, the UI) and every log hold the variable's name, never its value.

A DSN template (`postgresql://user:${PG_PASSWORD}@host/db`, or key=value) is parsed first, each
`${NAME}` standing as a marker, and each variable's value is then put into the parameter it stands
for, passed to libpq as a parameter of its own, never pasted back into a URL: a password with
`@ / : # % ?` is the password, and nothing of it can become a host name. Every message that could
carry one goes through `redact`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""`${NAME}`: the value of environment variable NAME, wherever the config allows one."""
_MARKER = re.compile(r"bpenvref(\d+)x")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


class DsnError(ValueError):
    """A DSN that writes a password into the config file instead of `${NAME}`."""


def env_name(text: str | None) -> str | None:
    """`NAME` when `text` is exactly one reference `${NAME}` (white space around it aside), else None."""
    m = ENV_REFERENCE.fullmatch((text or "").strip())
    return m.group(1) if m else None


def env_names(text: str) -> list[str]:
    """The NAME of every `${NAME}` in `text`, in order."""
    return ENV_REFERENCE.findall(text)


def unset_names(text: str) -> list[str]:
    """The variables `text` refers to that are not set."""
    return [name for name in env_names(text) if name not in os.environ]


def env_value(reference: str | None) -> str | None:
    """The value of the variable a `${NAME}` reference names (None: no reference, or not set)."""
    name = env_name(reference)
    return os.environ.get(name) if name else None


def substitute(text: str, replace: Callable[[str], str]) -> str:
    """`text` with every `${NAME}` replaced by `replace(NAME)`."""
    return ENV_REFERENCE.sub(lambda m: replace(m.group(1)), text)


def expand_env_refs(text: str) -> str:
    """`text` with every `${NAME}` replaced by the environment variable NAME (KeyError if unset)."""
    return substitute(text, lambda name: os.environ[name])


# ------------------------------------------------------------------------------------ DSN templates
def _parse_template(dsn: str) -> tuple[dict[str, str], list[str]]:
    """The parameters of a DSN template, each `${NAME}` standing as a marker `bpenvref<i>x` (letters
    and digits, which URL and key=value parsing leave as they are), and the NAME of each marker."""
    names: list[str] = []

    def marker(name: str) -> str:
        names.append(name)
        return f"bpenvref{len(names) - 1}x"

    marked = substitute(dsn, marker)
    try:
        return _conninfo(marked), names
    except Exception as exc:  # noqa: BLE001 - psycopg raises ProgrammingError; the message may echo the DSN
        raise DsnError(f"it is not a libpq connection string or URL ({redact(str(exc))})") from None


def check_dsn_template(dsn: str) -> None:
    """Refuse a DSN whose password is written in the file rather than read from the environment."""
    if env_name(dsn):
        return  # the whole DSN comes from one environment variable
    password = _parse_template(dsn)[0].get("password")
    if password and _MARKER.sub("", password):
        raise DsnError("its password is written in the file: write it as ${NAME}, read from the environment")


def connection_parameters(dsn: str) -> dict[str, str]:
    """The libpq parameters of the DSN template `dsn`, each `${NAME}` replaced by the value of the
    environment variable NAME (KeyError if unset) after the template is parsed."""
    if whole := env_name(dsn):
        return _conninfo(os.environ[whole])
    parts, names = _parse_template(dsn)
    return {key: _MARKER.sub(lambda m: os.environ[names[int(m.group(1))]], value) for key, value in parts.items()}


def _conninfo(dsn: str) -> dict[str, str]:
    """libpq's parameters of a DSN (a connection string or URL), parsed by psycopg: imported here, for
    a config with `publish.postgres` only (start-up time: psycopg takes a few tenths of a second)."""
    from psycopg.conninfo import conninfo_to_dict

    return conninfo_to_dict(dsn)


def redact(text: str, *secrets: str | None) -> str:
    """`text` with URL and keyword passwords, and each of `secrets`, replaced by `***`."""
    text = _KEYWORD_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
