"""Python dicts to and from `google.protobuf.Struct`, the registry's metadata
and filters.

A Struct holds every number as a double, so an int leaves as a float; it
comes back as an int when it is whole and exactly representable, so
`{"floor": 1}` reads back as `{"floor": 1}` and numbers stay numbers. Ints a
double cannot hold exactly (beyond 2**53) and NaN or infinities (which JSON,
and so the proxy's filters, cannot carry) are refused with the path of the
value, before anything is sent.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from google.protobuf import struct_pb2

#: The largest magnitude of an int a double holds exactly.
MAX_EXACT_INT = 2**53


def _check(value: object, path: str) -> None:
    """Raises `TypeError`/`ValueError` naming `path` when `value` cannot be
    carried by a Struct without changing."""
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if abs(value) > MAX_EXACT_INT:
            raise ValueError(
                f"{path}: {value} is beyond ±2**53 and would not survive as a number; "
                "send it as a string"
            )
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: {value} is not a finite number")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path}: keys must be str, got {type(key).__name__}")
            _check(item, f"{path}.{key}")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    raise TypeError(
        f"{path}: {type(value).__name__} cannot be sent; use dicts, lists, str, "
        "numbers, bools and None"
    )


def to_struct(data: Mapping[str, Any] | None, what: str) -> struct_pb2.Struct | None:
    """`data` as a Struct (`None` stays absent); `what` names it in errors."""
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise TypeError(f"{what} must be a dict, got {type(data).__name__}")
    _check(data, what)
    struct = struct_pb2.Struct()
    struct.update(data)
    return struct


def _number(value: float) -> int | float:
    if value.is_integer() and abs(value) <= MAX_EXACT_INT:
        return int(value)
    return value


def _from_value(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return _number(value.number_value)
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return from_struct(value.struct_value)
    if kind == "list_value":
        return [_from_value(item) for item in value.list_value.values]
    return None


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as a plain dict, whole numbers as ints."""
    return {key: _from_value(value) for key, value in struct.fields.items()}
