"""eventsourcing's JSON transcoder with the decode done by orjson.

The stock decode calls a Python object hook for every JSON object; here orjson parses the
whole text and one walk, bottom-up as the hook runs, hands every object of two keys to the
stock hook (`_decode_obj`), so which objects are transcodings, and the error for an unknown
one, stay eventsourcing's. The encode is the stock one: what is stored does not change.
Text orjson refuses and the stock decoder takes (NaN, integers beyond 64 bits, lone
surrogates) goes to the stock decoder.
"""

from __future__ import annotations

from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder


class OrjsonTranscoder(JSONTranscoder):
    def decode(self, data: bytes) -> Any:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            return super().decode(data)
        if type(value) is dict or type(value) is list:
            return self._revive(value)
        return value

    def _revive(self, value: dict[str, Any] | list[Any]) -> Any:
        """`value` with its objects replaced by what the object hook makes of them."""
        if type(value) is dict:
            for key, item in value.items():
                if type(item) is dict or type(item) is list:
                    value[key] = self._revive(item)
            return self._decode_obj(value) if len(value) == 2 else value
        for index, item in enumerate(value):
            if type(item) is dict or type(item) is list:
                value[index] = self._revive(item)
        return value
