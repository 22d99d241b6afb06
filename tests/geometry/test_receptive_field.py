"""Receptive-field bookkeeping: the window step and merges (union, misalignment, global)."""
from fractions import Fraction

from archcalc.geometry.receptive_field import GLOBAL, RF, merge


def test_window_step_follows_araujo():
    # 3x3 conv, stride 2, padding 1 on the input: r = 1 + 2*1 = 3, j = 2, start = 0 - 1*1 = -1
    a = RF.identity(2).window((3, 3), (2, 2), (1, 1), (1, 1))
    assert a == RF((3, 3), (2, 2), (-1, -1))
    # then a 3x3 conv with dilation 2, padding 2: r = 3 + 2*2*2 = 11, j = 2, start = -1 - 2*2 = -5
    b = a.window((3, 3), (1, 1), (2, 2), (2, 2))
    assert b == RF((11, 11), (2, 2), (-5, -5))


def test_merge_is_the_union_of_fields():
    a = RF((3,), (1,), (-1,))  # covers -1..1
    b = RF((5,), (1,), (0,))  # covers 0..4
    assert merge([a, b]) == RF((6,), (1,), (-1,))


def test_merge_with_different_strides_is_marked():
    out = merge([RF((3,), (1,), (0,)), RF((3,), (2,), (0,))])
    assert out.misaligned and out.stride == (2,)
    assert out.to_json() == {"size": [3], "stride": [2], "start": [0], "misaligned": True}


def test_merge_with_global_or_untracked():
    a = RF((3,), (1,), (0,))
    assert merge([a, GLOBAL]) == GLOBAL
    assert merge([a, None]) is None


def test_fractional_strides_stay_exact_and_serialise():
    rf = RF((2,), (Fraction(1, 2),), (0,))
    assert rf.to_json()["stride"] == [0.5]


def test_network_receptive_fields(analyze_yaml):
    report = analyze_yaml("""
        input: [1, 64, 64]
        layers:
          - {name: a, conv: {out: 4, kernel: 3}}           # r 3, j 1, start 0
          - {name: p, maxpool: {kernel: 2}}                 # r 3 + 1*1 = 4, j 2
          - {name: b, conv: {out: 4, kernel: 3, padding: 1}}  # r 4 + 2*2 = 8, j 2, start 0 - 1*2 = -2
          - {name: skip, from: p, conv: {out: 4, kernel: 1}}  # r 4, j 2, start 0
          - {name: sum, add: {}, from: [b, skip]}           # union: -2..5 -> r 8, start -2
          - {name: up, upsample: 2}                         # nearest: r 8, j 2/2 = 1
          - global_avgpool
    """)
    assert report.layer("p").rf == RF((4, 4), (2, 2), (0, 0))
    assert report.layer("b").rf == RF((8, 8), (2, 2), (-2, -2))
    assert report.layer("sum").rf == RF((8, 8), (2, 2), (-2, -2))
    assert report.layer("up").rf == RF((8, 8), (1, 1), (-2, -2))
    assert report.layers[-1].rf == GLOBAL
