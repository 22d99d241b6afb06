"""What each layer saves for backward (Layer.saved_tensors) and how archcalc.analysis.memory adds it
up: hand-computed bytes for small specs (tests/torch/test_saved_measured.py has PyTorch measure the
same). Every tensor shared by two layers counts once, for the first that saves it; views are their
base; a layer with nothing needing a gradient saves nothing."""
import textwrap

import pytest

from archcalc import api
from archcalc.analysis.memory import plan_memory, saved_bytes
from archcalc.layers import KINDS
from archcalc.layers.base import Layer, Saved


def per_layer(tmp_path, text, batch=2, itemsize=4):
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    graph = api.load_graph(path)
    report = api.analyze(graph)
    shapes = dict(graph.input_shapes)
    shapes.update((row.name, tuple(row.output_shape)) for row in report.layers)
    details = {}
    out = saved_bytes(graph, shapes, batch, itemsize, details)
    return out, details


def test_conv_relu_conv(tmp_path):
    # conv1 keeps its input, the network input (autograd saves it for the weight's gradient though
    # the input needs none); relu its output [4, 8, 8], which is conv2's input: counted once.
    out, details = per_layer(tmp_path, """\
        input: [3, 8, 8]
        layers:
          - conv: {out: 4, kernel: 3, padding: 1}
          - relu
          - conv: {out: 2, kernel: 3, padding: 1}
        """)
    assert out == {"conv1": 2 * 3 * 64 * 4, "relu1": 2 * 4 * 64 * 4, "conv2": 0}
    assert [s for s, _ in details["conv2"]] == [Saved("input", "input")]


def test_a_residual_block_keeps_each_tensor_once(tmp_path):
    # x -> conv a -> relu -> conv b; add(b, x) -> relu. conv a keeps x; the add keeps nothing;
    # the last relu its output. conv b's input is the first relu's output.
    out, _ = per_layer(tmp_path, """\
        input: [4, 5, 5]
        layers:
          - {name: a, conv: {out: 4, kernel: 3, padding: 1}}
          - {name: r, relu}
          - {name: b, conv: {out: 4, kernel: 3, padding: 1}}
          - {name: s, add, from: [b, input]}
          - {name: o, relu}
          - {name: c, conv: {out: 4, kernel: 1}, from: input}
        """, batch=1)
    one = 4 * 25 * 4
    assert out == {"a": one, "r": one, "b": 0, "s": 0, "o": one, "c": 0}  # c: x is a's already


def test_views_are_their_base(tmp_path):
    # maxpool keeps its input and int64 indices; flatten is a view of the pooled tensor, which the
    # linear keeps (once, as the pooled tensor's storage); dropout keeps a float mask on CPU.
    out, _ = per_layer(tmp_path, """\
        input: [2, 4, 4]
        layers:
          - conv: {out: 3, kernel: 1}
          - maxpool: 2
          - flatten
          - dropout: 0.5
          - linear: 5
          - {permute: [0]}
          - linear: 2
        """, batch=3)
    assert out["conv1"] == 3 * 2 * 16 * 4
    assert out["maxpool1"] == 3 * 3 * 16 * 4 + 3 * 3 * 4 * 8  # input [3, 4, 4] + indices [3, 2, 2]
    assert out["flatten1"] == 0 and out["dropout1"] == 3 * 12 * 4
    assert out["linear1"] == 3 * 12 * 4  # dropout's output [12]
    assert out["permute1"] == 0 and out["linear2"] == 3 * 5 * 4  # linear1's output, seen through the view


def test_a_view_pytorch_cannot_make_is_a_copy(tmp_path):
    # [N, 4, 3, 3] permuted to [N, 3, 3, 4] cannot be flattened in place: flatten copies, and the
    # linear keeps the copy although relu keeps the same values. Without the permute, the
    # flatten is a view of relu's output, kept once.
    text = """\
        input: [4, 3, 3]
        layers:
          - conv: {out: 4, kernel: 1}
          - relu
          %s
          - flatten
          - linear: 2
        """
    out, _ = per_layer(tmp_path, text % "- {permute: [1, 2, 0]}", batch=2)
    assert out["relu1"] == out["linear1"] == 2 * 36 * 4
    out, _ = per_layer(tmp_path, text % "- {permute: [0, 1, 2]}", batch=2)  # the identity: still a view
    assert out["relu1"] == 2 * 36 * 4 and out["linear1"] == 0


def test_batch_norm_statistics_are_per_batch_and_dtypes_keep_their_size(tmp_path):
    text = """\
        input: [3, 4, 4]
        layers:
          - conv: {out: 8, kernel: 1}
          - batchnorm
          - maxpool: 2
        """
    for batch, itemsize in ((1, 4), (5, 4), (5, 2)):
        out, _ = per_layer(tmp_path, text, batch=batch, itemsize=itemsize)
        # input [8, 4, 4] per example + save_mean and save_invstd [8] for the whole batch
        assert out["batchnorm1"] == batch * 128 * itemsize + 2 * 8 * itemsize
        # batchnorm's output [8, 4, 4] + int64 indices [8, 2, 2], 8 bytes whatever the dtype
        assert out["maxpool1"] == batch * 128 * itemsize + batch * 32 * 8


def test_nothing_is_saved_where_no_gradient_flows(tmp_path):
    # The network input needs no gradient: a relu and a max pool on it record nothing; a frozen
    # conv neither. The first trainable conv keeps its input (the pooled [2, 4, 4]).
    out, _ = per_layer(tmp_path, """\
        input: [2, 8, 8]
        layers:
          - relu
          - maxpool: 2
          - {conv: {out: 2, kernel: 1}, trainable: false}
          - conv: {out: 2, kernel: 1}
          - {linear: 3, trainable: false}
          - {conv: {out: 2, kernel: 1}, trainable: false}
        """, batch=1)
    assert out == {"relu1": 0, "maxpool1": 0, "conv1": 0, "conv2": 2 * 16 * 4,
                   "linear1": 0,  # frozen: mm keeps its input only for the weight's gradient
                   "conv3": 2 * 4 * 3 * 4}  # a convolution keeps its input even frozen


@pytest.mark.parametrize("kind, saved", [
    ("relu", [Saved("output", "output")]), ("sigmoid", [Saved("output", "output")]),
    ("tanh", [Saved("output", "output")]), ("gelu", [Saved("input", "input")]),
    ("silu", [Saved("input", "input")]), ("elu", [Saved("input", "input")]), ("identity", []),
    ("softmax", [Saved("output", "output")]), ("flatten", []), ("global_avgpool", []),
])
def test_declarations(kind, saved):
    layer = KINDS[kind]
    a = {arg.name: arg.default for arg in layer.args}
    assert layer.saved_tensors(a, [(4, 3, 3)], (4, 3, 3)) == saved
    assert "saved" in layer.formulas


def test_saved_for_backward_is_derived_and_the_default_is_the_output():
    bn = KINDS["batchnorm"]
    a = {"eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True}
    assert bn.saved_for_backward(a, [(8, 4, 4)], (8, 4, 4)) == 128 + 2 * 8  # input + mean + invstd

    class Undeclared(Layer):
        kind = "undeclared"

    class Counted(Layer):
        kind = "counted"

        def saved_for_backward(self, a, shapes, out):
            return 7

    assert Undeclared().saved_tensors({}, [(2, 3)], (2, 3)) == [Saved("output", "output")]
    assert Undeclared().saved_for_backward({}, [(2, 3)], (2, 3)) == 6
    assert Counted().saved_tensors({}, [(2, 3)], (2, 3)) == [Saved("saved", elements=7)]


def test_plan_memory_uses_the_saved_bytes(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3, padding: 1}\n  - relu\n"
                    "  - conv: {out: 2, kernel: 3, padding: 1}\n")
    graph = api.load_graph(path)
    plan = plan_memory(graph, api.analyze(graph, batch=2, dtype="bfloat16"))
    assert plan.get("training", "activations") == 2 * (3 * 64 + 4 * 64) * 2
    assert any("autograd" in note for note in plan.notes)
