import pytest
from pydantic import ValidationError

from clara_es.domain import BackoffPolicy


def test_default_schedule_is_the_spec() -> None:
    assert BackoffPolicy().schedule_ms() == [1000, 2000, 4000, 8000, 16000]


def test_cap_limits_every_delay() -> None:
    policy = BackoffPolicy(base_delay_ms=500, factor=3, max_attempts=6, cap_ms=5000)
    assert policy.schedule_ms() == [500, 1500, 4500, 5000, 5000, 5000]


def test_jitter_is_bounded_and_reproducible_per_session() -> None:
    policy = BackoffPolicy(jitter=0.5, seed=42)
    first = policy.schedule_ms("session-a")
    assert first == policy.schedule_ms("session-a")
    assert first != policy.schedule_ms("session-b")
    for n, delay in enumerate(first, start=1):
        nominal = 1000 * 2 ** (n - 1)
        assert nominal * 0.5 <= delay <= nominal * 1.5
    assert BackoffPolicy(jitter=0.5, seed=43).schedule_ms("session-a") != first


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_delay_ms": -1}, "base_delay_ms"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"factor": 0.5}, "factor"),
        ({"jitter": 2}, "jitter"),
        ({"cap_ms": 10, "base_delay_ms": 100}, "cap_ms (10) must not be below base_delay_ms"),
        ({"retries": 3}, "retries"),
    ],
)
def test_invalid_policy_is_rejected_with_the_field_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        BackoffPolicy(**kwargs)


def test_attempt_outside_the_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="between 1 and 5"):
        BackoffPolicy().delay_ms(6)
