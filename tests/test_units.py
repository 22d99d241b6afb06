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


@pytest.mark.parametrize("value, text", [
    (10**24, "1 Y"), (38 * 10**24, "38 Y"), (10**27, "1 R"), (10**30, "1 Q"),
    (999_500 * 10**24, "1 Q"),          # rounds up to the next prefix, as 999,999 does
    (2 * 10**33, "2,000 Q"),            # past the largest prefix: whole, never "2e+03 Q"
    (-2 * 10**33, "-2,000 Q"), (3e33, "3,000 Q"),
])
def test_counts_past_zetta(value, text):
    # a frontier model's training compute (Llama 3 405B: 3.8e25 FLOP) printed "3.8e+04 ZFLOP"
    assert units.count(value) == text


def test_a_count_too_large_for_a_float_is_whole():
    # 10**400 / 10**30 overflows a float: an OverflowError traceback before
    assert units.count(10**400) == f"{10**370:,} Q"


def test_bytes_past_exbi():
    assert units.binary_bytes(2**70) == "1 ZiB"
    assert units.binary_bytes(2**80) == "1 YiB"
    assert units.binary_bytes(3 * 2**90) == "3,072 YiB"  # 3 x 1024 YiB


@pytest.mark.parametrize("seconds, text", [
    (0.9996, "1 s"),      # 999.6 ms to three digits is 1,000 ms: the next unit (was "1e+03 ms")
    (0.99949, "999 ms"), (0.9995, "1 s"), (1.0, "1 s"), (0.0, "0 ms"),
])
def test_durations_round_up_to_the_next_unit(seconds, text):
    assert units.duration(seconds) == text


def test_the_memory_table_gives_training_compute_past_zetta():
    from archcalc import cli
    from archcalc.analysis.memory import Item

    assert cli._amount(Item("x", "x", 3.8e25, "flops", "")) == "38 YFLOP"


def test_sympy_numbers_and_fractions_are_numbers():
    # numbers.Real, but format(sympy.Integer(5), ".3g") and format(Fraction(7, 2), ".3g") are a
    # TypeError on Python 3.11, and sympy's Float printed "1.50 G"
    from fractions import Fraction

    assert units.count(sympy.Integer(12_345_678)) == "12.3 M"
    assert units.binary_bytes(sympy.Integer(12_345_678)) == "11.8 MiB"   # 12,345,678 / 2^20 = 11.77
    assert units.count(sympy.Float(1.5e9), "FLOP") == "1.5 GFLOP"
    assert units.count(Fraction(7, 2)) == "3.5"
    assert units.duration(Fraction(7000, 3)) == "38.9 min"             # 2,333.3 s / 60
    assert units.duration(sympy.Rational(17, 20)) == "850 ms"
