"""The orjson decode (adapters/transcoder.py) gives what eventsourcing's stock decode gives on
every shape the stock encoder can write (stored events of every type:
tests/integration/test_transcoder_stored_events.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import TranscodingNotRegisteredError

from tests.support.transcoders import transcoders


@pytest.mark.parametrize("value", [
    {"a": [{"u": uuid4(), "t": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)}, [Decimal("1.50")]]},
    {"t": datetime(2026, 1, 2, tzinfo=timezone(timedelta(hours=-3))), "n": None, "b": True},
    [1, 1.0, -0.0, 1e300, 2**63 - 1, -(2**63), "x", [], {}],
    {"_type_": "uuid_hex", "_data_": "x", "other": 1},  # three keys: a plain object
    {"_type_": "uuid_hex"}, {"_data_": 1, "x": 2},
    {"big": 2**70, "nan": float("nan")},  # orjson refuses these: the stock decoder takes them
    {"text": "é\u2028\U0001f600", "s": "\\\"\n"},
    "scalar", 3,
])
def test_every_shape_the_stock_encoder_writes_decodes_the_same(value: Any) -> None:
    stock, fast = transcoders()
    data = stock.encode(value)
    assert repr(fast.decode(data)) == repr(stock.decode(data))


def test_text_the_stock_encoder_does_not_write_still_decodes_the_same() -> None:
    stock, fast = transcoders()
    for data in (b'{"s":"\\ud800"}', b'[NaN,Infinity,-Infinity]', b'{"a":1,"a":2}'):
        assert repr(fast.decode(data)) == repr(stock.decode(data))


def test_an_unknown_transcoding_is_refused_as_the_stock_transcoder_refuses_it() -> None:
    stock, fast = transcoders()
    data = b'{"a":[{"_type_":"nope","_data_":1}]}'
    for transcoder in (stock, fast):
        with pytest.raises(TranscodingNotRegisteredError, match="nope"):
            transcoder.decode(data)
