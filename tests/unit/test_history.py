"""A run's history on disk, and judging it again."""

from __future__ import annotations

import numpy as np
import pytest

from chaos.core.errors import ConfigError
from chaos.runner.history import load, parse_override, rejudge, save
from chaos.core.slo import Series


def test_history_round_trips(tmp_path):
    s = Series("join_time", np.array([0.5, 1.5]), np.array([0.2, np.inf]))
    save(tmp_path, {"join_time": s}, {"dc-a": {"join_time": s}})
    overall, per_dc = load(tmp_path)
    assert list(overall["join_time"].values) == [0.2, np.inf]
    assert list(per_dc["dc-a"]["join_time"].t_s) == [0.5, 1.5]


@pytest.mark.parametrize("content, says", [(None, "no history"), (b"not a zip", "damaged")])
def test_a_missing_or_damaged_history_is_a_clear_error(tmp_path, content, says):
    if content is not None:
        (tmp_path / "history.npz").write_bytes(content)
    with pytest.raises(ConfigError, match=says):
        load(tmp_path)


@pytest.mark.parametrize("text, threshold, window", [("join_time=3", 3.0, None),
                                                     ("audio_delivered=0.99@10", 0.99, 10.0)])
def test_overrides(text, threshold, window):
    o = parse_override(text)
    assert o.threshold == threshold and o.window_s == window


@pytest.mark.parametrize("text, says", [("join_time", "write SLI=THRESHOLD"), ("warp=3", "unknown SLI"),
                                        ("mos=high", "must be numbers"), ("=3", "write SLI")])
def test_bad_overrides_are_refused(text, says):
    with pytest.raises(ConfigError, match=says):
        parse_override(text)


def test_a_journal_without_its_declaration_cannot_be_judged_again(tmp_path):
    with pytest.raises(ConfigError, match="does not keep its experiment's declaration"):
        rejudge({"experiment": {"name": "old"}}, tmp_path)
