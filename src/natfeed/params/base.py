"""The base of every params section and the readable errors of a bad params file.

Every section is a frozen pydantic model with ``extra="forbid"``: an unknown or misspelt key is an error
that names the dotted key, the file it was read from and the closest valid key ("did you mean").
"""

from __future__ import annotations

import difflib
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError

from natfeed.core.errors import NatfeedError


class ParamsError(NatfeedError, ValueError):
    """A params file is missing, malformed or has an unknown/invalid key."""


class Section(BaseModel):
    """A params section: frozen, unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _section_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The params class that holds the key at ``loc`` (loc's last part), following nested sections."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if current is None:
            return None
        field = next((f for name, f in current.model_fields.items() if part in (name, f.alias)), None)
        if field is None:
            return None
        current = _model_of(field.annotation)
    return current


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is not None:
        for arg in get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def valid_keys(model: type[BaseModel]) -> list[str]:
    """The keys a section accepts (aliases where a field has one)."""
    return [f.alias or name for name, f in model.model_fields.items()]


def did_you_mean(key: str, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or the valid keys when none is close."""
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (valid keys: {', '.join(sorted(choices))})"


def _line(model: type[BaseModel], err: dict[str, Any]) -> str:
    loc = tuple(err["loc"])
    dotted = ".".join(str(p) for p in loc)
    if err["type"] == "extra_forbidden":
        parent = _section_at(model, loc)
        hint = did_you_mean(str(loc[-1]), valid_keys(parent)) if parent is not None else ""
        return f"  {dotted}: unknown key{hint}"
    msg = err["msg"].removeprefix("Value error, ")
    return f"  {dotted}: {msg}"


def format_errors(model: type[BaseModel], err: ValidationError, source: str) -> str:
    """Every failed key of ``err`` on one line each, under a header naming ``source``."""
    lines = [_line(model, e) for e in err.errors()]
    return f"invalid {source}:\n" + "\n".join(dict.fromkeys(lines))
