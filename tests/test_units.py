"""archcalc/units.py: the one formatter of short figures (counts, bytes, rates, durations), by hand."""
import sympy
import pytest

from archcalc import units


@pytest.mark.parametrize("value, text", [
    (0, "0"), (999, "999"), (1000, "1 k"), (11_689_512, "11.7 M"), (25_557_032, "25.6 M"),
    (-2500, "-2.5 k"), (999_499, "999 k"),
    (999_999, "1 M"),              # rounds up: the next prefix, never "1e+03 k"
    (10**15, "1 P"), (175 * 10**9, "175 G"), (3 * 10**21, "3 Z"),
])
def test_counts_take_decimal_prefixes(value, text):
    assert units.count(value) == text


def test_a_count_with_a_unit_and_a_formula():
    assert units.count(4_100_000_000, "FLOP") == "4.1 GFLOP"
    assert units.count(12, "FLOP") == "12 FLOP"
    H = sympy.Symbol("H")
    assert units.count(9 * H**2) == "9*H**2"   # a formula is not abbreviated


@pytest.mark.parametrize("value, text", [
    (0, "0 B"), (512, "512 B"), (1023, "1023 B"), (1024, "1 KiB"), (1536, "1.5 KiB"),
    (46_827_520, "44.7 MiB"), (2**20 - 1, "1 MiB"), (3 * 2**40, "3 TiB"), (2**50, "1 PiB"),
])
def test_bytes_take_binary_prefixes(value, text):
    assert units.binary_bytes(value) == text


def test_rates():
    assert units.rate(1523.4, "ex/s") == "1.52 kex/s"
    assert units.rate(3.1e14, "FLOP/s") == "310 TFLOP/s"
    assert units.rate(12.25, "ex/s") == "12.2 ex/s"


@pytest.mark.parametrize("seconds, text", [
    (0.85, "850 ms"), (42.5, "42.5 s"), (90, "90 s"), (210, "3.5 min"), (4.5 * 3600, "4.5 h"),
    (12.3 * 86400, "12.3 days"), (1234 * 86400, "1,234 days"),
])
def test_durations(seconds, text):
    assert units.duration(seconds) == text


def test_the_cli_and_the_footer_use_it():
    # the memory table and analyze's footer print the same short forms (one home for them)
    from archcalc import render
    from archcalc.analysis.memory import Item
    from archcalc import cli

    assert cli._amount(Item("x", "x", 46_827_520, "bytes", "")) == "44.7 MiB"
    assert cli._amount(Item("x", "x", 3.5e18, "flops", "")) == "3.5 EFLOP"
    assert render.count is units.count
