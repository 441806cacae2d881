import random
from itertools import islice

import pytest

from chaos.core.errors import ConfigError
from chaos.core.retry import RetryPolicy, parse_retry_after


def test_none_never_retries():
    assert list(RetryPolicy("none").delays()) == []


def test_fixed_zero_is_immediate():
    assert list(islice(RetryPolicy("fixed", 0.0).delays(), 3)) == [0.0, 0.0, 0.0]


def test_exponential_doubles_up_to_cap():
    assert list(islice(RetryPolicy("exponential", 0.1, 1.0).delays(), 6)) == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_full_jitter_stays_under_the_exponential_envelope():
    rng = random.Random(1)
    delays = list(islice(RetryPolicy("exponential_jitter", 0.1, 2.0).delays(rng), 200))
    envelope = [min(2.0, 0.1 * 2**i) for i in range(200)]
    assert all(0 <= d <= e for d, e in zip(delays, envelope))
    assert len(set(delays)) > 150  # jittered, not a fixed schedule


def test_max_attempts_bounds_the_retries():
    assert len(list(RetryPolicy("fixed", 0.1, max_attempts=3).delays())) == 2


@pytest.mark.parametrize("kw", [{"kind": "sometimes"}, {"base_s": -1}, {"max_attempts": 0}])
def test_bad_policy_is_rejected_with_the_accepted_values(kw):
    with pytest.raises(ConfigError, match="retry|max_attempts|>= 0"):
        RetryPolicy(**kw)


def test_retry_after_header():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
