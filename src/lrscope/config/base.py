"""How every lrscope config file is read, validated, reported on and saved.

A config is a frozen pydantic model deriving from :class:`ConfigModel` (unknown keys forbidden,
no type coercion: ``steps = "100"`` is an error, not 100). :func:`load_model` reads a TOML
file, lays command-line overrides over it and validates the result; any problem becomes ONE
:class:`~lrscope.errors.InputError` line naming where it is (file and line, or the flag), the
field as a dotted path, the bad value, and what is allowed::

    find.toml:7: range_test.steps = 0: must be at least 2
    find.toml:3: unknown key 'stpes' in [range_test] (did you mean 'steps'?); allowed: ...
    --mode: range_test.mode = "log": must be "exp" or "linear"

Data is validated in JSON mode, so a TOML value must already have the field's type (arrays
are accepted for tuples, integers for floats) exactly as it would in a JSON file.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from lrscope.config.toml_text import dump_toml, format_value, key_lines, line_of
from lrscope.errors import InputError, did_you_mean
from lrscope.resolved_config import defaults_used

Model = TypeVar("Model", bound="ConfigModel")

# pydantic error type -> what the field needs, said plainly
_TYPE_NEEDS = {
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "finite_number": "must be a finite number",
}


class ConfigModel(BaseModel):
    """Base of every config section: frozen, strict, unknown keys rejected, no NaN/inf."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def read_toml(path: str | Path) -> tuple[dict[str, Any], str]:
    """The parsed TOML file and its text; a missing or malformed file is one InputError line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"config file {path} cannot be read ({err})") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{path}: not valid TOML: {err}") from None


class _Unset:
    """Override value that removes a key from the file (a flag that replaces another key:
    ``--steps`` given on the command line drops the file's ``epochs``)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            # A non-table here is the file's own error; the override must not hide it.
            if part in node:
                return
            child = node[part] = {}
        node = child
    if value is UNSET:
        node.pop(leaf, None)
    else:
        node[leaf] = value


def _jsonable(value: Any) -> Any:
    # TOML dates and times have no JSON form; they are never a valid config value, so they
    # travel as a tagged string that every field rejects with the value shown.
    if isinstance(value, (dt.date, dt.time)):
        return {"<toml datetime>": value.isoformat()}
    if isinstance(value, Path):  # from argparse
        return str(value)
    raise TypeError(type(value).__name__)


def _shown(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"<toml datetime>"}:
        return str(value["<toml datetime>"])
    return format_value(value)


def _sub_model(model: type[BaseModel], path: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class that holds the key at ``path`` (following sub-models and lists)."""
    current: Any = model
    for part in path:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return None
        current = _model_in(field.annotation)
        if current is None:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _problem(model: type[BaseModel], error: ErrorDetails) -> str:
    loc = tuple(error["loc"])
    dotted = ".".join(str(p) for p in loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        parent_path, name = loc[:-1], str(loc[-1])
        parent = _sub_model(model, parent_path)
        allowed = list(parent.model_fields) if parent else []
        where = f" in [{'.'.join(str(p) for p in parent_path)}]" if parent_path else ""
        # A sub-table's key written at the top level: its exact home beats a close name
        # (top-level `steps` is [range_test]'s, not a typo of `seeds`).
        homes = [] if parent_path else [
            f for f in allowed if name in getattr(_sub_model(model, (f,)), "model_fields", {})]
        hint = f" (it belongs in [{homes[0]}])" if homes else did_you_mean(name, allowed)
        return f"unknown key {name!r}{where}{hint}; allowed: {', '.join(allowed)}"
    if kind == "missing":
        return f"{dotted} is required"
    needs = _TYPE_NEEDS.get(kind)
    if needs is None:
        needs = error["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    if kind == "literal_error" and isinstance(error["input"], str):
        choices = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
        needs += did_you_mean(error["input"], choices)
    return f"{dotted} = {_shown(error['input'])}: {needs}"


def describe_error(model: type[BaseModel], err: ValidationError, source: str | None = None,
                   lines: Mapping[str, int] | None = None,
                   flags: Mapping[str, str] | None = None) -> str:
    """One line for the first problem in ``err`` (and how many more there are).

    ``source`` names the file, ``lines`` maps dotted keys to its lines, ``flags`` maps dotted
    keys that came from the command line to their flag (the flag then names the place).
    """
    errors = err.errors()
    first = errors[0]
    dotted = ".".join(str(p) for p in first["loc"])
    flag = next((f for key, f in (flags or {}).items()
                 if dotted == key or dotted.startswith(key + ".")), None)
    if flag is not None:
        where = flag
    elif source is not None:
        line = line_of(lines or {}, tuple(first["loc"]))
        where = f"{source}:{line}" if line is not None else source
    else:
        where = "config"
    more = len(errors) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{where}: {_problem(model, first)}{tail}"


def validate_data(model: type[Model], data: Mapping[str, Any], source: str | None = None,
                  lines: Mapping[str, int] | None = None,
                  flags: Mapping[str, str] | None = None) -> Model:
    """``model`` validated from plain data (as TOML gives it); errors are one InputError line."""
    try:
        return model.model_validate_json(json.dumps(data, default=_jsonable))
    except ValidationError as err:
        raise InputError(describe_error(model, err, source, lines, flags)) from None


def load_model(model: type[Model], path: str | Path | None = None,
               overrides: Mapping[str, Any] | None = None,
               flags: Mapping[str, str] | None = None) -> Model:
    """Read ``path`` (TOML; None: defaults only), apply ``overrides`` and validate as ``model``.

    ``overrides`` maps dotted keys (``"range_test.start"``) to values that replace the file's;
    None values are skipped, so unset command-line flags leave the file alone. ``flags`` maps
    the same keys to the flag names used in error messages (``"--start"``).
    """
    data: dict[str, Any] = {}
    text = ""
    if path is not None:
        data, text = read_toml(path)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_path(data, dotted, value)
    given = {k: f for k, f in (flags or {}).items()
             if (overrides or {}).get(k) not in (None, UNSET)}
    source = str(path) if path is not None else None
    return validate_data(model, data, source, key_lines(text), given)


def save_config(config: BaseModel, folder: str | Path,
                used: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``config`` as ``folder/config.json`` and ``folder/config.toml`` (reloadable).

    ``used``: what the run used for the settings ``config`` leaves to a default; config.toml
    lists them in a comment (rerunning the file keeps the defaults, so it resumes the same
    study) and config.json under ``"resolved"``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = config.model_dump(mode="json")
    filled = defaults_used(data, used or {})
    json_path, toml_path = folder / "config.json", folder / "config.toml"
    json_data = {**data, "resolved": filled} if filled else data
    json_path.write_text(json.dumps(json_data, indent=2) + "\n", encoding="utf-8")
    header = f"# The resolved {type(config).__name__}: pass it back with --config to rerun.\n"
    if filled:
        lines = dump_toml(filled).strip().splitlines()
        header += ("# Left to their defaults, which this run resolved to:\n"
                   + "".join(f"#   {line}\n" for line in lines if line))
    toml_path.write_text(header + dump_toml(data), encoding="utf-8")
    return json_path, toml_path
