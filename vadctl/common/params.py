"""scikit-learn's parameter convention, shared by featurizers and models: the keyword arguments of
`__init__` are the parameters, stored unchanged under the same names."""

from __future__ import annotations

import inspect
import json
import math
import numbers
import types
import typing
from collections.abc import Iterable
from typing import Any

from vadctl.errors import UsageError


def param_names(cls: type) -> list[str]:
    """Names of the parameters `cls.__init__` declares (none when it inherits object's)."""
    if cls.__init__ is object.__init__:
        return []
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self" and p.kind in named]


def checked(cls: type, params: dict, label: str) -> dict:
    """`params` checked against the types `cls.__init__` declares (int, float, bool, str, None,
    tuples and lists, and unions of them), so `n_bins=abc` or `n_bins=2.5` is a one-line error
    naming `label.param` before any work, not a failure deep inside a run. A whole float given for
    an int (2.0) becomes the int; everything else is passed on unchanged."""

    try:
        signature = inspect.signature(cls.__init__, eval_str=True)
    except (NameError, TypeError, SyntaxError):  # annotations this check cannot read: trust the class
        return dict(params)
    result = dict(params)
    for name, value in params.items():
        parameter = signature.parameters.get(name)
        if parameter is None or parameter.annotation is inspect.Parameter.empty:
            continue
        ok, value = _accept(value, parameter.annotation)
        if not ok:
            raise UsageError(f"{label}.{name}={value!r}: expected {_describe(parameter.annotation)}")
        result[name] = value
    return result


def _options(annotation) -> tuple | None:
    """The alternatives of a union annotation, (annotation,) otherwise; None when not understood."""

    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return typing.get_args(annotation)
    return (annotation,)


def _accept(value, annotation):
    """(accepted, value as passed on) for one annotation."""

    for option in _options(annotation):
        origin = typing.get_origin(option) or option
        if option is type(None) and value is None:
            return True, value
        if option is bool and isinstance(value, bool):
            return True, value
        if option is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return True, value
        if option is int and isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return True, int(value)
        if option is float and isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
            return True, value
        if option is str and isinstance(value, str):
            return True, value
        if origin in (tuple, list) and isinstance(value, tuple | list):
            return True, value
        if option not in (type(None), bool, int, float, str) and origin not in (tuple, list):
            return True, value  # a type this check does not know: the class checks it
    return False, value


def _describe(annotation) -> str:
    words = {bool: "true or false", int: "a whole number", float: "a finite number", str: "a string"}
    words[type(None)] = "null"

    parts = []
    for option in _options(annotation):
        origin = typing.get_origin(option) or option
        parts.append(words.get(option) or ("a list" if origin in (tuple, list) else str(option)))
    return " or ".join(parts)


def parse_value(text: str) -> Any:
    """Option values: JSON when it parses (numbers, booleans, lists), else the string itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignments(items: Iterable[str], option: str, example: str) -> dict[str, Any]:
    """['k=v', ...] → {'k': parsed v}; anything else is a one-line error naming the option."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} {item!r}: expected KEY=VALUE (e.g. {example})")
        result[key.strip()] = parse_value(value)
    return result
