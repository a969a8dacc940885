"""Metadata and filters to and from protobuf Struct, and what `multicast`
sends for a message, without servers."""

from __future__ import annotations

import math

import pytest

from prism_client._struct import from_struct, to_struct
from prism_client.registry import encode_payload


def test_numbers_stay_numbers_and_everything_round_trips() -> None:
    data = {
        "int": 7,
        "negative": -3,
        "float": 2.5,
        "whole_float": 4.0,
        "limit": 2**53,
        "text": "x",
        "flag": False,
        "nothing": None,
        "list": [1, "a", [True], {"k": 1.5}],
        "nested": {"deeper": {"n": 1}},
    }
    struct = to_struct(data, "metadata")
    assert struct is not None
    back = from_struct(struct)
    assert back == data
    assert type(back["int"]) is int and type(back["float"]) is float
    assert type(back["list"][3]["k"]) is float
    assert to_struct(None, "filter") is None


def test_what_a_struct_cannot_carry_is_refused_naming_the_place() -> None:
    with pytest.raises(ValueError, match=r"metadata\.a\.b\[1\]"):
        to_struct({"a": {"b": [0, 2**53 + 1]}}, "metadata")
    with pytest.raises(ValueError, match=r"filter\.t"):
        to_struct({"t": math.nan}, "filter")
    with pytest.raises(TypeError, match=r"metadata\.when: datetime"):
        import datetime

        to_struct({"when": datetime.datetime.now()}, "metadata")
    with pytest.raises(TypeError, match="keys must be str"):
        to_struct({"a": {1: "x"}}, "metadata")
    with pytest.raises(TypeError, match="filter must be a dict"):
        to_struct(["a"], "filter")  # type: ignore[arg-type]


def test_a_message_is_sent_as_bytes_text_or_compact_json() -> None:
    assert encode_payload(b"\x00raw") == b"\x00raw"
    assert encode_payload("héllo") == "héllo".encode()
    assert encode_payload({"command": "read", "n": [1, 2]}) == b'{"command":"read","n":[1,2]}'
    with pytest.raises(ValueError):
        encode_payload({"x": math.inf})
