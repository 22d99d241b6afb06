"""`archcalc export`: the generated PyTorch source rebuilds exactly the module archcalc builds
(same parameters, same outputs once given the same weights), and the CLI writes every format."""
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import archcalc
from archcalc.analysis.walk import analyze_graph
from archcalc.cli import app
from archcalc.errors import SpecError

torch = pytest.importorskip("torch")

from archcalc.torch import build  # noqa: E402
from archcalc.torch.build import example_input, example_inputs, layer_module  # noqa: E402
from archcalc.torch.source import class_name, constructor_source, export_onnx, pytorch_source  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent.parent
from bundled import SPEC_FILES as SPECS, numeric_graph, torch_device  # noqa: E402

runner = CliRunner()


@pytest.fixture(autouse=True)
def _one_thread():
    """These small forward passes run fastest on one thread, above all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _spec(input_shape, *entries, blocks=""):
    lines = [f"input: {list(input_shape)}"]
    if blocks:
        lines.append(blocks.rstrip())
    lines.append("layers:")
    lines += [f"  - {e}" for e in entries]
    return "\n".join(lines) + "\n"


# Inline specs that together use every layer kind, with the arguments whose constructor calls
# are easy to get wrong (tuples, strings, None defaults, flags stored as Parameters).
INLINE = {
    "mamba": """
input: {tokens: [10]}
layers:
  - embedding: {num: 17, dim: 12}
  - mamba: {d_state: 4, d_conv: 3}
  - {mamba: {d_state: 2, expand: 3, dt_rank: 2, bias: true, conv_bias: false}, trainable: false}
  - linear: 17
""",
    "t5": """
input: {tokens: [6]}
layers:
  - {name: e, embedding: {num: 20, dim: 16}}
  - {name: bias, relative_position_bias: {heads: 2, num_buckets: 8, max_distance: 16}, from: input}
  - {name: a, attention: {heads: 2, bias: false, scale: 1, causal: true}, from: [e, bias]}
  - {multiply_by: 0.25}
""",
    # Routed experts: constructor flags, choices, floats and None widths.
    "experts": """
input: [6, 16]
layers:
  - moe: {experts: 4, top_k: 2, hidden: 8}
  - {moe: {experts: 4, top_k: 1, hidden: 8, expert: mlp, activation: gelu_tanh, bias: true, router_bias: true,
           renormalize: false, scale: 1.5, shared_experts: 2, shared_hidden: 3, shared_gate: true}}
""",
    "windows": """
input: [3, 16, 12]
layers:
  - conv: {out: 6, kernel: 2, stride: 2}
  - {name: hwc, permute: [1, 2, 0]}
  - {name: a, window_attention: {heads: 3, window: 4}}
  - {add: {}, from: [a, hwc]}
  - {window_attention: {heads: 2, window: [3, 4], shift: [1, 2], qkv_bias: false}}
  - {window_attention: {heads: 1, window: 8, shift: 3}}
  - {name: m, patch_merging: {}}
  - {roll: {shifts: [2], dims: [2]}}
  - {roll: {shifts: [-1, 1], dims: [0, 1]}}
  - {name: p, window_partition: [3, 2]}
  - {window_merge: [3, 2], from: [p, m]}
  - {from: hwc, patch_merging: {}}
  - {from: add1, patch_merging: {}}
""",
    # Two inputs (forward(self, src, tgt)); cross-attention with a memory of another length and width.
    "encoder_decoder": """
inputs: {src: [7, 12], tgt: {tokens: [5]}}
layers:
  - {name: enc, linear: 10}
  - {name: emb, from: tgt, embedding: {num: 20, dim: 12}}
  - {cross_attention: {heads: 3, k_bias: false}, from: [emb, enc]}
  - {cross_attention: {heads: 4, kv_heads: 2, head_dim: 5, bias: false, scale: 1.0}, from: [cross_attention1, enc]}
  - {name: x, from: [cross_attention2, emb], add: {}}
""",
    "parameters": """
input: [4, 6, 6]
layers:
  - {name: c, conv: {out: 4, kernel: 3, padding: 1}, trainable: false}
  - {name: ls, scale: 0.000001}
  - {name: bias, parameter: {shape: [4, 1, 1], init: constant, value: -0.5}, from: input}
  - {add: {}, from: [ls, bias]}
  - {name: tab, parameter: {shape: [3, 5], init: normal, std: 0.2}, from: input}
  - {scale: {dim: -1, init: 0.5}}
  - {channel_shuffle: 2, from: c}
""",
    "decoder": """
input: {tokens: [10]}
layers:
  - {name: wte, embedding: {num: 30, dim: 16, tie: head}}
  - {name: attn, attention: {heads: 4, causal: true}}
  - {name: gqa, attention: {heads: 4, kv_heads: 2, rotary: true, bias: false}}
  - {name: mqa, attention: {heads: 2, kv_heads: 1, head_dim: 4}}
  - {name: mha, attention: {heads: 4, causal: true, layout: packed}}
  - {name: head, linear: {out: 30, bias: false}}
""",
    "tensor_ops": """
input: [6, 16]
layers:
  - {name: qkv, linear: 48}
  - {name: q, split: {sizes: 16, index: 0}, from: qkv}
  - {name: k, chunk: {chunks: 3, index: 1}, from: qkv}
  - {name: v, split: {sizes: [16, 16, 16], dim: -1, index: -1}, from: qkv}
  - {name: scores, matmul: {transpose: true, scale: 0.25}, from: [q, k]}
  - {name: masked, causal_mask: {window: 4}}
  - softmax: -1
  - {name: ctx, matmul: {}, from: [softmax1, v]}
  - {name: m, mean: {dim: 0, keepdim: true}}
  - {name: first, select: {dim: 0, index: 0}, from: ctx}
""",
    "transformer": """
input: [3, 16, 16]
layers:
  - {name: patches, conv: {out: 16, kernel: 4, stride: 4}}
  - reshape: [16, -1]
  - permute: [1, 0]
  - class_token
  - positional
  - {positional: {learned: false}}
  - {rmsnorm: {eps: 0.00001}}
  - {attention: {heads: 2, rotary: true}}
  - reshape: [17, 2, 8]
  - permute: [1, 0, 2]
  - {rotary: {dims: 4, interleaved: true}}
  - {rotary: {base: 500000}}
""",
    "recurrent": """
input: {tokens: [6]}
layers:
  - {embedding: {num: 20, dim: 10, padding_idx: 0}}
  - rnn: {hidden: 8, layers: 2, bidirectional: true, nonlinearity: relu, bias: false}
  - lstm: {hidden: 12, layers: 3, bidirectional: true, dropout: 0.2}
  - lstm: {hidden: 6, proj_size: 4, bidirectional: true, bias: false}
  - gru: {hidden: 9, layers: 2}
""",
    "conv2d": _spec([3, 12, 12], "conv: {out: 8, kernel: [3, 5], stride: [1, 2], padding: [1, 2], bias: false}",
                    "conv: {out: 8, kernel: 3, padding: same, dilation: 2, groups: 4}",
                    "conv: {out: 6, kernel: 3, padding: 1, padding_mode: reflect}",
                    "conv: {out: 6, kernel: 1, padding: valid}", "relu", "relu6", "hardswish", "hardsigmoid"),
    "conv1d_3d": _spec([4, 6, 6, 6], "conv: {out: 4, kernel: 3, padding: [1, 0, 1], padding_mode: circular}",
                       "batchnorm: {eps: 0.001, momentum: 0.3}", "maxpool: {kernel: 2, ceil_mode: true}",
                       "avgpool: {kernel: 2, padding: 1}", "instancenorm: {affine: true}",
                       "conv_transpose: {out: 3, kernel: 3, stride: 2, padding: 1, output_padding: 1}",
                       "upsample: {scale: 0.5, mode: trilinear, align_corners: true}",
                       "zeropad: [1, 0, 2, 1, 0, 3]", "global_maxpool", "flatten", "linear: {out: 5, bias: false}"),
    "seq1d": _spec([6, 20], "conv: {out: 8, kernel: 3, stride: 2}", "batchnorm", "elu: 0.5", "leaky_relu: 0.2",
                   "maxpool: {kernel: 3, stride: 2, padding: 1, dilation: 2}",
                   "avgpool: {kernel: 2, stride: 1, ceil_mode: true, count_include_pad: false}",
                   "instancenorm: {track_running_stats: true, momentum: 0.5}",
                   "conv_transpose: {out: 4, kernel: 4, stride: 3, dilation: 2, groups: 2, bias: false}",
                   "upsample: {size: 30, mode: linear}", "zeropad: [2, 1]", "zeropad: 1", "adaptive_avgpool: 7",
                   "global_avgpool", "flatten: {start_dim: 0}", "dropout: 0.3"),
    "image_ops": _spec([4, 9, 9], "upsample: 2", "upsample: {scale: [1.5, 2], mode: bilinear}",
                       "upsample: {size: [11, 7], mode: bicubic, align_corners: false}",
                       "avgpool: {kernel: 3, stride: 2, padding: 1, ceil_mode: true, count_include_pad: false}",
                       "groupnorm: {groups: 2, eps: 0.0001, affine: false}", "prelu: {num_parameters: 4, init: 0.1}",
                       "prelu", "dropout2d: 0.2", "stochastic_depth: {p: 0.3, mode: row}", "gelu: tanh", "gelu", "silu", "sigmoid", "tanh", "identity",
                       "zeropad: [1, 2, 3, 4]", "adaptive_avgpool: [3, 2]", "softmax", "log_softmax: -1"),
    "norms": _spec([5, 6], "layernorm", "layernorm: {dims: 2, eps: 0.01}", "layernorm: {bias: false}",
                   "layernorm: {affine: false}", "batchnorm: {affine: false}",
                   "batchnorm: {track_running_stats: false}", "linear: 7", "softmax: 1", "log_softmax"),
    "features": _spec([12], "linear: 16", "batchnorm", "layernorm", "reshape: [4, -1]", "permute: [1, 0]",
                      "reshape: [2, 2, 4]", "permute: [0, 2, 1]", "flatten: {start_dim: 1}", "flatten",
                      "linear: 3"),
    "merges": _spec([4, 8, 8],
                    "{name: a, conv: {out: 4, kernel: 3, padding: 1}}",
                    "{name: b, from: input, conv: {out: 4, kernel: 1}}",
                    "{name: gate, from: input, global_avgpool: {}}",
                    "{name: s, add: {}, from: [a, b, input]}",
                    "{name: m, multiply: {}, from: [s, gate]}",
                    "{name: sq, multiply: {}, from: [m, m]}",
                    "{name: unused, from: a, relu: {}}",
                    "{name: cat, concat: 0, from: [sq, a, input]}",
                    "{name: cat2, concat: -1, from: [cat, cat]}",
                    "{name: cat3, concat: 1, from: [cat2, cat2]}"),
    "activations": _spec([4, 6, 6], "selu", "celu: 0.5", "rrelu: {lower: 0.1, upper: 0.2}",
                         "hardtanh: {min_val: -2, max_val: 3}", "hardtanh", "threshold: {threshold: 0.1, value: 2}",
                         "mish", "softplus: {beta: 2, threshold: 10}", "softsign", "hardshrink: 0.3",
                         "softshrink: 0.2", "tanhshrink", "logsigmoid", "softmin: -1", "softmax2d", "quick_gelu",
                         "quick_gelu", "glu: 0", "glu: -1", "glu: 1"),
    # Names that are Python keywords, builtins, nn.Module attributes or the generator's own
    # variables, and dotted names that collide once `.` becomes `_`.
    "awkward_names": _spec(
        [6],
        "{name: x, linear: 6}", "{name: self, relu: {}}", "{name: torch, from: x, linear: 6}",
        "{name: plus, add: {}, from: [self, torch]}", "{name: class, linear: 6}",
        "{name: nn, from: input, relu: {}}", "{name: None, add: {}, from: [class, nn]}",
        "{name: x_in, from: plus, relu: {}}", "{name: sum, add: {}, from: [x_in, None]}",
        "{name: layer1_1, linear: 6}", "{name: layer1, blk: {}, repeat: 2}", "{name: layer1_1_lin, relu: {}}",
        "{name: lambda, add: {}, from: [layer1_1_lin, layer1_1]}",
        blocks="blocks:\n  blk:\n    layers: [{name: lin, linear: 6}, {name: lin_x, relu: {}}]"),
}


def _generated(graph):
    """Exec the generated source in a fresh namespace (no archcalc); return (source, class)."""
    source = pytorch_source(graph)
    assert "archcalc" not in source.split('"""', 2)[2]  # only the docstring mentions it
    namespace = {"__name__": "generated_net"}
    exec(compile(source, "<generated>", "exec"), namespace)
    # The network's class: class_name(graph.name), unless a kind's own class took that name
    # (a spec named "mamba" gets MambaNet beside the kind's Mamba).
    name = re.search(r"^    model = (\w+)\(\)\.eval\(\)$", source, re.M).group(1)
    assert name.startswith(class_name(graph.name))
    cls = namespace[name]
    assert issubclass(cls, torch.nn.Module)
    return source, cls


def _check_same_network(graph, batch=2, device="cpu"):
    """The generated class holds the same parameters (names, shapes, dtypes) as archcalc's module
    and, on the CPU, computes the same outputs once given the same weights."""
    source, cls = _generated(graph)
    reference = build(graph, device=device).eval()
    with torch.device("meta"):
        generated = cls()
    assert generated.__class__.__name__.startswith(class_name(graph.name))
    count = sum(p.numel() for p in reference.parameters())
    assert sum(p.numel() for p in generated.parameters()) == count
    gen_state = generated.state_dict()
    # In the order of the layers, as the generated class holds them: a block's bare tensor
    # (`bare: true`) comes before the block's layers in `reference.state_dict()`.
    ref_state = {f"{node.name}.{key}": value for node in graph.nodes
                 for key, value in layer_module(reference, node.name).state_dict().items()}
    assert len(ref_state) == len(reference.state_dict()) == len(gen_state)
    for (ref_key, ref_value), (gen_key, gen_value) in zip(ref_state.items(), gen_state.items()):
        # state_dict order and names: `stage.2.conv1.weight` is `stage_2_conv1.weight`
        assert ref_key.rsplit(".", 1)[1] == gen_key.rsplit(".", 1)[1], (ref_key, gen_key)
        assert ref_value.shape == gen_value.shape and ref_value.dtype == gen_value.dtype, (ref_key, gen_key)
    if device == "meta":
        return source
    generated.load_state_dict(dict(zip(gen_state, ref_state.values())), assign=True)
    generated.eval()
    xs = example_inputs(graph, batch)  # one tensor per input
    with torch.no_grad():
        expected, got = reference(*xs), generated(*xs)
    assert got.shape == expected.shape == (batch, *analyze_graph(graph).output_shape)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    return source


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(ROOT / "specs")))
@pytest.mark.slow
def test_bundled_spec_source_is_the_same_network(path):
    torch.manual_seed(0)
    graph = numeric_graph(path)
    _check_same_network(graph, batch=1, device=torch_device(graph))


def test_names_of_module_attributes_are_renamed():
    # `self.forward = nn.ReLU()` would replace the method; such names get a trailing `_`.
    graph = archcalc.parse_spec(_spec([4], "{name: forward, relu: {}}", "{name: training, linear: 4}",
                                      "{name: parameters, add: {}, from: [forward, training]}",
                                      "{name: to, linear: 2}"))
    source, cls = _generated(graph)
    assert "self.forward_ = nn.ReLU()" in source and "self.training_ = nn.Linear(4, 4)" in source
    assert "self.to_ = nn.Linear(4, 2)" in source and "x = forward + x  # [4]" in source
    model = cls().eval()
    assert sum(p.numel() for p in model.parameters()) == analyze_graph(graph).totals.trainable_params
    x = torch.randn(3, 4)
    expected = model.to_(torch.relu(x) + model.training_(torch.relu(x)))
    torch.testing.assert_close(model(x), expected)


@pytest.mark.parametrize("name", sorted(INLINE))
def test_inline_spec_source_is_the_same_network(name):
    torch.manual_seed(0)
    _check_same_network(archcalc.parse_spec(INLINE[name], filename=f"{name}.yaml"))


def test_tied_weights_stay_tied_in_the_source():
    source, cls = _generated(archcalc.parse_spec(INLINE["decoder"]))
    assert "self.head.weight = self.wte.weight  # tied weights" in source
    model = cls()
    assert model.head.weight is model.wte.weight
    assert "x = torch.randint(0, 30, (1, 10))  # token ids" in source


def test_inline_specs_use_every_kind():
    from archcalc.layers import KINDS

    used = {node.kind for text in INLINE.values() for node in archcalc.parse_spec(text).nodes}
    assert used == set(KINDS)


def test_deterministic_initial_values_match_without_loading():
    # PReLU's init, norms' ones and zeros, running statistics: equal before any weight is copied.
    graph = archcalc.parse_spec(INLINE["image_ops"].replace("prelu: {num_parameters: 4, init: 0.1}",
                                                           "prelu: {num_parameters: 4, init: -0.3}"))
    _, cls = _generated(graph)
    ref, gen = build(graph).state_dict(), cls().state_dict()
    assert len(ref) == len(gen)
    for a, b in zip(ref.values(), gen.values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(torch.all(v == -0.3) for v in gen.values())


def test_source_layout():
    graph = archcalc.load_spec(ROOT / "specs" / "zoo" / "resnet18.yaml")
    source = pytorch_source(graph)
    assert source.startswith('"""resnet18 as a PyTorch module.\n\nGenerated by archcalc from the spec resnet18.yaml.\n'
                             "Input [3, 224, 224]")
    assert "\nimport torch\nfrom torch import nn\n" in source
    assert len(re.findall(r"^class ", source, re.M)) == 1 and "\nclass Resnet18(nn.Module):\n" in source
    assert ("        self.conv1 = nn.Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), "
            "bias=False)\n") in source
    assert "        self.layer1_0_conv1 = nn.Conv2d(64, 64, kernel_size=(3, 3), padding=(1, 1), bias=False)\n" in source
    assert "        self.bn1 = nn.BatchNorm2d(64)\n" in source
    assert "        self.fc = nn.Linear(512, 1000)\n" in source
    # a value used twice gets a name; a chain reuses x; a merge is an expression
    assert "        maxpool1 = self.maxpool1(x)  # [64, 56, 56]\n" in source
    assert "        x = self.layer1_0_conv1(maxpool1)  # [64, 56, 56]\n" in source
    assert "        x = x + maxpool1  # [64, 56, 56]\n" in source
    assert "        # layer2.0 (basic_down)\n" in source
    assert "        return x\n" in source
    assert '\nif __name__ == "__main__":\n' in source and "torch.randn(1, 3, 224, 224)" in source
    compile(source, "resnet18.py", "exec")


def test_expressions_for_custom_modules():
    source = pytorch_source(archcalc.parse_spec(INLINE["features"]))
    assert "x = x.reshape(x.shape[0], 4, 4)  # [4, 4]" in source
    assert "x = x.permute(0, 2, 1)  # [4, 4]" in source
    source = pytorch_source(archcalc.parse_spec(INLINE["merges"]))
    assert "x_in = x" in source
    assert "        a = self.a(x_in)  # [4, 8, 8]\n" in source  # used twice: named
    assert "        x = a + b + x_in  # [4, 8, 8]\n        x = x * gate  # [4, 8, 8]\n" in source
    assert "        sq = x * x  # [4, 8, 8]\n" in source
    assert "        x = self.unused(a)  # [4, 8, 8]\n" in source  # computed, as archcalc's module does
    assert "        x = torch.cat([sq, a, x_in], dim=1)  # [12, 8, 8]\n" in source
    assert "        x = torch.cat([x, x], dim=3)  # [12, 8, 16]\n" in source
    assert "class" not in source.split("class Spec(nn.Module)")[1]  # no helper classes


@pytest.mark.parametrize("make, expected", [
    (lambda nn: nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
     "nn.Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)"),
    (lambda nn: nn.Conv1d(4, 4, 3, padding="same"), 'nn.Conv1d(4, 4, kernel_size=(3,), padding="same")'),
    (lambda nn: nn.LayerNorm([4, 5], bias=False), "nn.LayerNorm(normalized_shape=(4, 5), bias=False)"),
    (lambda nn: nn.LayerNorm(8, eps=1e-6), "nn.LayerNorm(normalized_shape=(8,), eps=1e-06)"),
    (lambda nn: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
     "nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)"),
    (lambda nn: nn.PReLU(6, init=0.1), "nn.PReLU(num_parameters=6, init=0.1)"),
    (lambda nn: nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
     'nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=True)'),
    (lambda nn: nn.Upsample(size=(5, 6)), "nn.Upsample(size=(5, 6))"),
    (lambda nn: nn.ZeroPad2d((1, 2, 3, 4)), "nn.ZeroPad2d(padding=(1, 2, 3, 4))"),
    (lambda nn: nn.MaxPool2d(2), "nn.MaxPool2d(2)"),
    (lambda nn: nn.Softmax(dim=1), "nn.Softmax(dim=1)"),
    (lambda nn: nn.BatchNorm1d(7, momentum=None), "nn.BatchNorm1d(7, momentum=None)"),
    (lambda nn: nn.Identity(), "nn.Identity()"),
])
def test_constructor_source(make, expected):
    module = make(torch.nn)
    assert constructor_source(module) == expected


def test_constructor_source_refuses_custom_classes():
    class Custom(torch.nn.Module):
        pass

    with pytest.raises(TypeError, match="not a torch.nn class"):
        constructor_source(Custom())


def test_odd_spec_names_make_valid_source():
    graph = archcalc.parse_spec('name: \'say "hi" \\N{x} """\'\ninput: [3]\nlayers: [relu]\n')
    assert graph.name == 'say "hi" \\N{x} """'
    source, cls = _generated(graph)
    assert cls.__name__ == "SayHiNX" and cls.__doc__.startswith('say "hi" \\N{x} """: input [N, 3]')


def test_class_names():
    assert class_name("conv3x3_stack") == "Conv3x3Stack"
    assert class_name("tiny-resnet") == "TinyResnet"
    assert class_name("mobilenet_v2") == "MobilenetV2"
    assert class_name("3layers") == "Net3layers"
    assert class_name("<spec>") == "Spec"
    assert class_name("none") == "None_"


# --- the command line ------------------------------------------------------------------------------

CONV3X3 = ROOT / "specs" / "lecture" / "conv3x3_stack.yaml"


def test_cli_pytorch_to_stdout_and_file(tmp_path):
    result = runner.invoke(app, ["export", str(CONV3X3), "--to", "pytorch"])
    assert result.exit_code == 0, result.output
    assert result.stdout == pytorch_source(archcalc.load_spec(CONV3X3))
    out = tmp_path / "net.py"
    result = runner.invoke(app, ["export", str(CONV3X3), "--to", "pytorch", "-o", str(out)])
    assert result.exit_code == 0 and result.stdout == "" and f"wrote {out}" in result.stderr
    assert out.read_text() == pytorch_source(archcalc.load_spec(CONV3X3))


@pytest.mark.parametrize("fmt, start", [("dot", 'digraph "conv3x3_stack" {'), ("mermaid", "```mermaid")])
def test_cli_drawings(tmp_path, fmt, start):
    result = runner.invoke(app, ["export", str(CONV3X3), "--to", fmt])
    assert result.exit_code == 0 and result.stdout.startswith(start)
    assert all(name in result.stdout for name in ("conv1", "relu2", "conv3", "[16, 256, 256]"))
    out = tmp_path / f"net.{fmt}"
    assert runner.invoke(app, ["export", str(CONV3X3), "--to", fmt, "-o", str(out)]).exit_code == 0
    assert out.read_text() == result.stdout


def test_cli_onnx_needs_an_output_file():
    result = runner.invoke(app, ["export", str(CONV3X3), "--to", "onnx"])
    assert result.exit_code == 2 and "-o FILE.onnx" in result.stderr


def test_cli_spec_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 9}\n")
    result = runner.invoke(app, ["export", str(bad), "--to", "pytorch"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "bad.yaml:3:" in result.stderr


def test_onnx_missing_packages_is_a_one_line_error(tmp_path, monkeypatch):
    import importlib.util

    from archcalc.torch import source

    real = importlib.util.find_spec
    monkeypatch.setattr(source.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxscript" else real(name, *a))
    result = runner.invoke(app, ["export", str(CONV3X3), "--to", "onnx", "-o", str(tmp_path / "n.onnx")])
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: ONNX export needs the onnx and onnxscript packages: "
                                     "pip install onnx onnxscript")
    assert not (tmp_path / "n.onnx").exists()


@pytest.mark.parametrize("error", [ModuleNotFoundError("No module named 'onnxscript'", name="onnxscript"),
                                   RuntimeError("Module onnx is not installed!")])
def test_onnx_import_failures_inside_the_exporter_are_spec_errors(tmp_path, monkeypatch, error):
    from archcalc.torch import source

    monkeypatch.setattr(source.importlib.util, "find_spec", lambda name, *a: object())

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(torch.onnx, "export", fail)
    with pytest.raises(SpecError, match="pip install onnx onnxscript"):
        export_onnx(archcalc.load_spec(CONV3X3), tmp_path / "n.onnx")


ONNX_SPEC = _spec([3, 8, 8], "{name: a, conv: {out: 4, kernel: 3, padding: 1}}", "batchnorm", "relu",
                  "{name: b, from: input, conv: {out: 4, kernel: 1}}", "{add: {}, from: [relu1, b]}",
                  "{concat: 0, from: [add1, a]}", "maxpool: 2", "reshape: [8, -1]", "permute: [1, 0]",
                  "flatten", "linear: 5")


@pytest.mark.slow
def test_cli_onnx(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    spec = tmp_path / "small.yaml"
    spec.write_text(ONNX_SPEC)
    out = tmp_path / "small.onnx"
    torch.manual_seed(0)
    result = runner.invoke(app, ["export", str(spec), "--to", "onnx", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and f"wrote {out}" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.onnx", "small.yaml"]  # weights inline
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    (inp,), (outp,) = model.graph.input, model.graph.output
    assert inp.name == "input" and outp.name == "output"
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["batch", 3, 8, 8]
    assert [d.dim_param or d.dim_value for d in outp.type.tensor_type.shape.dim] == ["batch", 5]
    try:
        import onnxruntime
    except ImportError:
        return
    session = onnxruntime.InferenceSession(str(out))
    torch.manual_seed(0)
    model_t = build(archcalc.load_spec(spec)).eval()  # the same weights as the exported one
    x = torch.randn(3, 3, 8, 8)
    (y,) = session.run(None, {"input": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(y), model_t(x).detach(), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_onnx_keeps_a_fixed_batch_where_it_cannot_be_dynamic(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    graph = archcalc.parse_spec(_spec([2, 9], "conv: {out: 2, kernel: 3, padding: 1, padding_mode: circular}"))
    assert export_onnx(graph, tmp_path / "c.onnx") is False  # torch.export guards circular padding's batch
    model = onnx.load(tmp_path / "c.onnx")
    onnx.checker.check_model(model)
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 2, 9]


def test_onnx_refuses_keyword_layer_names(tmp_path, monkeypatch):
    from archcalc.torch import source

    monkeypatch.setattr(source.importlib.util, "find_spec", lambda name, *a: object())
    graph = archcalc.parse_spec(_spec([4], "{name: class, linear: 2}"), filename="kw.yaml")
    with pytest.raises(SpecError, match="'class' \\(a Python keyword\\)") as info:
        export_onnx(graph, tmp_path / "kw.onnx")
    assert str(info.value).startswith("kw.yaml:3:")


def test_export_doc_shows_the_real_source():
    # Regenerate with: archcalc export specs/lecture/conv3x3_stack.yaml --to pytorch
    text = (ROOT / "docs" / "export.md").read_text()
    assert "```python\n" + pytorch_source(archcalc.load_spec(CONV3X3)) + "```" in text
    excerpt = re.search(r"```python\n(    def forward\(self, x\):\n.*?)```", text, re.S).group(1)
    assert excerpt in pytorch_source(archcalc.load_spec(ROOT / "specs" / "zoo" / "resnet18.yaml"))


@pytest.mark.slow
def test_onnx_of_a_token_decoder_runs_in_onnxruntime(tmp_path):
    """Token ids (int64) in, tied weights, causal, grouped-query and rotary attention: the ONNX file
    computes what archcalc's module computes."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    onnxruntime = pytest.importorskip("onnxruntime")
    graph = archcalc.parse_spec(INLINE["decoder"])
    out = tmp_path / "decoder.onnx"
    torch.manual_seed(0)
    export_onnx(graph, out)
    torch.manual_seed(0)
    model = build(graph).eval()  # same seed: the same initial weights as the exported module
    ids = example_input(graph, 2)
    with torch.no_grad():
        expected = model(ids).numpy()
    got = onnxruntime.InferenceSession(str(out)).run(None, {"input": ids.numpy()})[0]
    assert got.shape == expected.shape == (2, 10, 30)
    assert abs(got - expected).max() < 1e-4


def test_the_network_class_never_shadows_a_kinds_class():
    # A spec named after a kind's own module class ("self_attention" -> SelfAttention) gets a
    # class of its own: the file still defines SelfAttention once and builds the same network.
    import torch

    text = "name: self_attention\ninput: [4, 8]\nlayers:\n  - attention: {heads: 2}\n"
    source = pytorch_source(archcalc.parse_spec(text))
    assert re.findall(r"^class (\w+)", source, re.M) == ["Rotary", "SelfAttention", "SelfAttentionNet"]
    namespace = {}
    exec(compile(source, "<export>", "exec"), namespace)  # noqa: S102 - archcalc's own output
    model = namespace["SelfAttentionNet"]()
    assert sum(p.numel() for p in model.parameters()) == 4 * 8 * 8 + 4 * 8
    assert tuple(model(torch.randn(1, 4, 8)).shape) == (1, 4, 8)
