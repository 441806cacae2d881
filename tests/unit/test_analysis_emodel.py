"""ITU-T G.107 E-model: worked values and monotonicity."""

import pytest
from hypothesis import given, strategies as st

from chaos.audio.analysis.emodel import (G711, G711_PLC, burst_ratio, delay_impairment_simplified,
                                   effective_ie, mos, r_factor, r_to_mos)

delays = st.floats(0, 2000, allow_nan=False)
losses = st.floats(0, 1, allow_nan=False)


def test_defaults_give_r_93_2():
    assert r_factor(0) == pytest.approx(93.2, abs=0.05)
    assert mos(0) == pytest.approx(4.41, abs=0.01)


def test_150_ms_without_loss():
    assert r_factor(150) == pytest.approx(89.5, abs=0.1)
    assert mos(150) == pytest.approx(4.3, abs=0.05)


def test_400_ms_without_loss():
    # G.107 in full with its defaults: Idd 24.1, Idte 5.8, Idle 1.2 -> R 62.3, MOS 3.22.
    assert r_factor(400) == pytest.approx(62.25, abs=0.1)
    assert mos(400) == pytest.approx(3.22, abs=0.01)
    # The often-quoted ~3.0 is the simplified (Cole-Rosenbluth) delay term.
    assert mos(400, id_of=delay_impairment_simplified) == pytest.approx(3.0, abs=0.1)


def test_loss_impairment_matches_g107_equation():
    # G.711 with PLC (Bpl 25.1), 1 % random loss: Ie,eff = 95 * 1 / (1 + 25.1).
    assert effective_ie(0.01, 1.0, G711_PLC) == pytest.approx(3.640, abs=0.001)
    assert effective_ie(0.02, 2.0, G711) == pytest.approx(95 * 2 / (1 + 4.3), abs=1e-9)
    assert mos(150, 0.05) < mos(150, 0.01) < mos(150)


def test_mos_scale_ends():
    assert (r_to_mos(-5), r_to_mos(0), r_to_mos(100), r_to_mos(120)) == (1.0, 1.0, 4.5, 4.5)
    assert r_to_mos(50) == pytest.approx(2.58, abs=0.01)


def test_burst_ratio():
    assert burst_ratio([]) == 1.0 and burst_ratio([False] * 10) == 1.0
    assert burst_ratio([0, 1, 1, 0, 0, 0, 1, 1, 0, 0]) == pytest.approx(2 * 0.6)
    assert burst_ratio([1] * 5 + [0] * 95) == pytest.approx(5 * 0.95)


@pytest.mark.parametrize("bad", [dict(delay_ms=-1), dict(delay_ms=10, loss=1.5),
                                 dict(delay_ms=10, loss=0.1, burst_ratio=0)])
def test_bad_input_is_refused(bad):
    with pytest.raises(ValueError):
        r_factor(**bad)


@given(a=delays, b=delays, loss=losses)
def test_mos_falls_with_delay(a, b, loss):
    lo, hi = sorted((a, b))   # within float rounding: a delay of 1e-12 s is no delay
    assert mos(lo, loss) >= mos(hi, loss) - 1e-12
    assert mos(lo, loss, id_of=delay_impairment_simplified) >= \
        mos(hi, loss, id_of=delay_impairment_simplified) - 1e-12


@given(a=losses, b=losses, delay=delays, burst=st.floats(0.5, 10))
def test_mos_falls_with_loss(a, b, delay, burst):
    lo, hi = sorted((a, b))   # within float rounding: a loss of 1e-17 is no loss
    assert mos(delay, lo, burst_ratio=burst) >= mos(delay, hi, burst_ratio=burst) - 1e-12


@given(a=st.floats(0.5, 10), b=st.floats(0.5, 10), loss=losses, delay=delays)
def test_burstier_loss_is_worse(a, b, loss, delay):
    lo, hi = sorted((a, b))
    assert mos(delay, loss, burst_ratio=lo) >= mos(delay, loss, burst_ratio=hi)


@given(a=st.floats(-50, 150), b=st.floats(-50, 150))
def test_mos_rises_with_r_and_stays_on_its_scale(a, b):
    lo, hi = sorted((a, b))
    assert 1.0 <= r_to_mos(lo) <= r_to_mos(hi) <= 4.5
