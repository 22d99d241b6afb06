"""Shared pieces of the kinds' `explain` methods (`archcalc explain`): values as formula text, steps
for one spatial axis at a time, and the receptive-field steps common to several kinds.

Values may be ints, Fractions (receptive-field strides) or sympy expressions (symbolic sizes):
they are written with `str()` and combined with plain operators only, never compared.
"""
from __future__ import annotations

from contextvars import ContextVar
from fractions import Fraction

from archcalc.geometry.receptive_field import GLOBAL, MAX_PERIOD, RF
from archcalc.geometry.window import axis_name
from archcalc.layers.base import Step

#: How a value is shown in formula text (set by archcalc.explain for symbolic sizes: the user's
#: own symbols, H rather than 4*H_4); None shows values as they are.
DISPLAY: ContextVar = ContextVar("archcalc_explain_display", default=None)

DIM_NAMES = {1: ("F",), 2: ("C", "L"), 3: ("C", "H", "W"), 4: ("C", "D", "H", "W")}


def val(x) -> str:
    """A value as formula text."""
    show = DISPLAY.get()
    if show is not None:
        x = show(x)
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, Fraction) and x.denominator == 1:
        return str(x.numerator)
    return str(x)


def par(x) -> str:
    """`val(x)` in parentheses where it would not read as one factor: negative numbers, fractions
    and formulas with a top-level operator (`H - 1`, `H/2`)."""
    s = val(x)
    if s.startswith("-"):
        return f"({s})"
    depth = 0
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and ch in " /+":
            return f"({s})"
    return s


def times(values) -> str:
    """Values as a product: 28*28*5*5."""
    return "*".join(par(v) for v in values) if len(values) else "1"


def letters(letter: str, n: int) -> str:
    """K1*K2*... for n axes."""
    return "*".join(f"{letter}{i + 1}" for i in range(n))


def shape_text(shape) -> str:
    return "[" + ", ".join(val(v) for v in shape) + "]"


def dim_names(rank: int) -> tuple:
    return DIM_NAMES.get(rank, tuple(f"d{i}" for i in range(rank)))


def where(axes, n: int) -> str:
    """Names of spatial axes: "H, W"."""
    return ", ".join(axis_name(i, n) for i in axes)


def exact(v):
    """A Fraction that is whole as an int (strides after fractional steps)."""
    if isinstance(v, Fraction) and v.denominator == 1:
        return v.numerator
    return v


def per_axis(figure: str, items, n: int) -> list[Step]:
    """Steps for output sizes along the spatial axes: items[i] = (formula, substituted, result,
    note) for spatial axis i; axes with the same line share one step (at: output dimensions)."""
    groups: dict = {}
    for i, (formula, subs, result, note) in enumerate(items):
        key = (formula, subs, val(result), note)
        groups.setdefault(key, ([], result))[0].append(i)
    return [Step(figure, k[0], k[1], result, at=tuple(i + 1 for i in axes), where=where(axes, n), note=k[3])
            for k, (axes, result) in groups.items()]


def rf_per_axis(items, n: int, note: str = "", notes=None) -> list[Step]:
    """Receptive-field steps: items[i] = three (formula, substituted, result) for the size r, the
    jump j and the start along spatial axis i; `notes[i]` adds a remark for axis i. Axes with
    equal lines share steps."""
    groups: dict = {}
    for i, triple in enumerate(items):
        remark = "; ".join(filter(None, [note, notes[i] if notes else ""]))
        key = tuple((f, s, val(r)) for f, s, r in triple) + (remark,)
        groups.setdefault(key, ([], triple, remark))[0].append(i)
    steps = []
    for axes, triple, remark in groups.values():
        for figure, (formula, subs, result) in zip(("rf", "jump", "start"), triple):
            steps.append(Step(figure, formula, subs, result, at=tuple(axes), where=where(axes, n),
                              note=remark if figure == "start" else ""))
    return steps


# --- common steps ---------------------------------------------------------------------------------

def output_step(formula: str, substituted: str, out, note: str = "") -> Step:
    return Step("output", formula, substituted if substituted != shape_text(out) else "", out, note=note)


def zero(figure: str, note: str = "") -> Step:
    return Step(figure, "0", "", 0, note=note)


def rf_untracked(note: str = "") -> Step:
    return Step("rf", "", "", None, note=note)


def rf_global(note: str = "") -> Step:
    return Step("rf", "", "", GLOBAL, note=note)


def rf_inherited(rf_in):
    """The step for an input field that is not tracked or already global, else None."""
    if rf_in is None:
        return rf_untracked("the input's field is not tracked")
    if rf_in == GLOBAL:
        return rf_global("the input already sees the whole input")
    return None


def rf_unchanged(rf_in, note: str = "") -> Step:
    return rf_inherited(rf_in) or Step("rf", "unchanged", "", rf_in, note=note)


def elementwise_steps(shapes, out, rf_in, rf_out) -> list[Step]:
    """The default explanation: an elementwise layer without parameters."""
    return [output_step("input shape", "", out), zero("params"), zero("macs"), rf_unchanged(rf_in[0])]


def _misaligned(rf) -> str:
    return "misaligned: merged branches had different strides" if isinstance(rf, RF) and rf.misaligned else ""


def rf_window(rf_in, rf_out, kernel, stride, left, dilation, dilated: bool = True) -> list[Step]:
    """The window step (convolution, pooling) per axis: r' = r + D(K-1) j, j' = j S,
    start' = start - P j; after fractional steps the exact windows, in words."""
    inherited = rf_inherited(rf_in)
    if inherited:
        return [inherited]
    n = len(kernel)
    if not rf_in.regular:
        jumps = [("j*S", f"{par(j)}*{par(s)}", exact(Fraction(j) * s)) for j, s in zip(rf_in.stride, stride)]
        return rf_exact(rf_in, rf_out, "output o reads inputs o*S - P + t*D, t = 0..K-1, each with its own "
                        "window (the input's windows differ)", jumps)
    items = []
    for r, j, b, k, s, p, d in zip(rf_in.size, rf_in.stride, rf_in.start, kernel, stride, left, dilation):
        if dilated:
            size = ("r + D(K-1)*j", f"{val(r)} + {par(d)}*({par(k)} - 1)*{par(j)}", r + d * (k - 1) * j)
        else:
            size = ("r + (K-1)*j", f"{val(r)} + ({par(k)} - 1)*{par(j)}", r + (k - 1) * j)
        items.append((size, ("j*S", f"{par(j)}*{par(s)}", j * s),
                      ("start - P*j", f"{val(b)} - {par(p)}*{par(j)}", b - p * j)))
    return rf_per_axis(items, n, _misaligned(rf_in))


def rf_exact(rf_in, rf_out, rule: str, jumps, notes=None) -> list[Step]:
    """Fields kept exactly per output (after upsampling, strided transposed convolution, adaptive
    pooling): the widest window, the exact jump and output 0's start, with the rule in words.
    jumps[i] = (formula, substituted, value) of the new jump along axis i; notes[i] a remark."""
    inherited = rf_inherited(rf_in)
    if inherited:
        return [inherited]
    if not isinstance(rf_out, RF):
        return [rf_untracked(untracked_reason(rf_in))]
    n = len(rf_out.size)
    items = [(("widest window", "", rf_out.size[i]), jumps[i], ("output 0's first pixel", "", rf_out.start[i]))
             for i in range(n)]
    note = "; ".join(filter(None, ["exact per output: " + rule, _misaligned(rf_out)]))
    return rf_per_axis(items, n, note, notes)


def untracked_reason(rf_in) -> str:
    """Why a field after fractional steps is not tracked (see archcalc.geometry.receptive_field)."""
    if isinstance(rf_in, RF) and not rf_in.resolved:
        q = max(axis.q for axis in rf_in.axes if axis.windows is None)
        return (f"the input's windows repeat only every {q:,} outputs, more than the {MAX_PERIOD:,} "
                "archcalc lists, so they cannot be carried further")
    return (f"the windows depend on symbolic sizes, or listing them would pass archcalc's bounds ({MAX_PERIOD:,} "
            "outputs a period, 1,000,000 look-ups a layer, 10,000,000 an analysis)")


def rf_text(rf) -> str:
    """A field as words: size 7, jump 2, start -3 (lists where the axes differ)."""
    if rf is None:
        return "not tracked"
    if rf == GLOBAL:
        return "global"

    def one(values):
        texts = [val(v) for v in values]
        return texts[0] if len(set(texts)) == 1 else "[" + ", ".join(texts) + "]"

    text = f"size {one(rf.size)}, jump {one(rf.stride)}, start {one(rf.start)}"
    return text + (" (misaligned)" if rf.misaligned else "")


def window_output_steps(shape, kernel, stride, left, right, dilation, ceil_mode: bool = False,
                        dilated: bool = True, note: str = "") -> list[Step]:
    """Output size per spatial axis of a sliding window, as `archcalc.geometry.window.window_output` computes it:
    floor((N + 2P - D(K-1) - 1)/S) + 1 (ceil with ceil_mode, dropping a last window that would
    start in the right padding)."""
    from archcalc.geometry.window import is_num

    rounding = "ceil" if ceil_mode else "floor"
    n_axes = len(kernel)
    items = []
    for n, k, s, pl, pr, d in zip(shape[1:], kernel, stride, left, right, dilation):
        if val(pl) == val(pr):
            pad_f, pad_s = "2P", f"2*{par(pl)}"
        else:
            pad_f, pad_s = "P_left + P_right", f"{par(pl)} + {par(pr)}"
        if dilated:
            formula = f"{rounding}((N + {pad_f} - D(K-1) - 1)/S) + 1"
            subs = f"{rounding}(({val(n)} + {pad_s} - {par(d)}*({par(k)}-1) - 1)/{par(s)}) + 1"
        else:
            formula = f"{rounding}((N + {pad_f} - K)/S) + 1"
            subs = f"{rounding}(({val(n)} + {pad_s} - {par(k)})/{par(s)}) + 1"
        room = n + pl + pr - (d * (k - 1) + 1)
        result = (-(-room // s) if ceil_mode else room // s) + 1
        why = note
        if ceil_mode and is_num(result) and (result - 1) * s >= n + pl:
            result -= 1
            subs += " - 1"
            why = "; ".join(filter(None, [note, "the last window would start in the right padding: "
                                                "dropped, as PyTorch does"]))
        items.append((formula, subs, result, why))
    return per_axis("output", items, n_axes)


def rf_union(rfs, rf_out) -> list[Step]:
    """A merge's field, as `rf.merge` computes it: the union of the inputs' windows; strides that
    differ leave it misaligned with the largest stride."""
    if any(rf is None for rf in rfs):
        return [rf_untracked("an input's field is not tracked")]
    if any(rf == GLOBAL for rf in rfs):
        return [rf_global("an input already sees the whole input")]
    n = len(rfs[0].size)
    if any(len(rf.size) != n for rf in rfs):
        return [rf_untracked("the inputs have different spatial axes")]
    misaligned = any(rf.misaligned for rf in rfs) or any(len({rf.stride[a] for rf in rfs}) > 1 for a in range(n))
    if not misaligned and not all(rf.regular for rf in rfs):
        jumps = [("j", "", rfs[0].stride[a]) for a in range(n)]
        return rf_exact(rfs[0], rf_out, "the union of the inputs' windows, output by output", jumps)
    items = []
    for a in range(n):
        starts = [rf.start[a] for rf in rfs]
        ends = [rf.start[a] + (rf.size[a] - 1) for rf in rfs]
        lo, hi = min(starts), max(ends)
        items.append((("max(start_i + r_i - 1) - min(start_i) + 1",
                       "max(" + ", ".join(f"{val(rf.start[a])} + {par(rf.size[a])} - 1" for rf in rfs) + ") - min("
                       + ", ".join(val(b) for b in starts) + ") + 1", hi - lo + 1),
                      ("max(j_i)", "max(" + ", ".join(val(rf.stride[a]) for rf in rfs) + ")",
                       max(rf.stride[a] for rf in rfs)),
                      ("min(start_i)", "min(" + ", ".join(val(b) for b in starts) + ")", lo)))
    note = "misaligned: the inputs' strides differ, the largest is kept" if misaligned else ""
    return rf_per_axis(items, n, note)


def norm_steps(c, affine: bool, track: bool, out, rf_in, trainable_note: str, frozen_note: str) -> list[Step]:
    """BatchNorm and InstanceNorm: 2C trainable (scale, shift) with affine, 2C non-trainable
    (running mean, variance) with track_running_stats."""
    t = 2 * c if affine else 0
    f = 2 * c if track else 0
    return [
        output_step("input shape", "", out),
        Step("trainable", "2C" if affine else "0", f"2*{par(c)}" if affine else "", t,
             note=trainable_note if affine else "affine: false"),
        Step("non-trainable", "2C" if track else "0", f"2*{par(c)}" if track else "", f,
             note=frozen_note if track else "track_running_stats: false"),
        Step("params", "trainable + non-trainable", f"{val(t)} + {val(f)}", t + f,
             note="the lecture's 4K parameters for K feature maps" if affine and track else ""),
        zero("macs", "normalisation is not counted"),
        rf_unchanged(rf_in, "statistics taken as fixed, as at inference"),
    ]
