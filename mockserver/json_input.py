"""JSON that users send (admin bodies, symbols files), read strictly and within bounds.

docs/behaviour.md#reliability: deep or broken JSON is an error with a reason, never
a traceback. Refused: bytes that are not UTF-8, NaN and Infinity, integers of more
than Python's 4,300 digits, lone surrogates (they cannot be encoded again), and
nesting deeper than the caller allows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONInputError(ValueError):
    """JSON that cannot be used; the message says why, without echoing the input."""


def _no_constant(name: str) -> Any:
    raise JSONInputError(f"{name} is not a JSON number")


def parse(text: bytes | str, max_depth: int, parse_float: Callable[[str], Any] = float) -> Any:
    """The JSON value in `text`, checked as the module docstring says."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONInputError(f"not UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_float=parse_float, parse_constant=_no_constant)
    except RecursionError:
        raise JSONInputError(f"nested deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise JSONInputError(f"not JSON: {exc}") from None
    except JSONInputError:
        raise
    except ValueError as exc:  # an integer over Python's digit limit
        raise JSONInputError(f"not usable JSON: {exc}") from None
    _check_tree(value, max_depth)
    return value


def _check_tree(value: Any, max_depth: int) -> None:
    """Depth and strings, walked with a stack (a recursive walk could overflow itself)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _LONE_SURROGATE.search(item):
                raise JSONInputError("a string holds a lone surrogate (\\ud800-\\udfff)")
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise JSONInputError(f"nested deeper than {max_depth} levels")
            children = [*item, *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
