"""Parsing `KEY=VALUE` options, shared by the CLI, job files and the Python API."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from vadctl.errors import UsageError


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
