"""moe against PyTorch and Hugging Face: parameters, FlopCounterMode MACs and shapes of the built
module (on the CPU and the meta device), routing for real (each token reaches exactly its top_k
experts), and the same outputs as transformers' own MoE blocks with their weights copied in:
Mixtral (SwiGLU experts, renormalised top-2), Qwen2-MoE (no renormalisation, a shared expert with
a sigmoid gate), DeepSeek-V2 (two shared experts, routed_scaling_factor) and Switch Transformers
(top-1, two-layer ReLU experts, router bias)."""
import pytest

torch = pytest.importorskip("torch")

import archcalc  # noqa: E402
from archcalc.torch import build  # noqa: E402
from archcalc.torch.verify import flop_counter  # noqa: E402
from layer_helpers import spec, torch_check  # noqa: E402

D = 16


@pytest.mark.parametrize("shape, entry", [
    ([5, D], "moe: {experts: 4, top_k: 2, hidden: 8}"),
    ([7, D], "moe: {experts: 8, top_k: 3, hidden: 6, renormalize: false, scale: 2.5}"),
    ([5, D], "moe: {experts: 4, top_k: 1, hidden: 8, expert: mlp, bias: true, router_bias: true, "
             "shared_experts: 2, shared_hidden: 3, shared_gate: true}"),
    ([2, 3, D], "moe: {experts: 3, top_k: 2, hidden: 4, activation: gelu_tanh, shared_experts: 1}"),
    ([D], "moe: {experts: 5, top_k: 5, hidden: 4, expert: mlp, activation: gelu}"),
])
def test_shapes_params_and_macs_match_pytorch(shape, entry):
    torch_check(shape, entry)


def test_on_the_meta_device_the_counts_are_those_of_real_routing():
    text = spec([9, D], "moe: {experts: 4, top_k: 2, hidden: 8, shared_experts: 1, shared_gate: true}")
    report = archcalc.analyze_text(text)
    model = build(archcalc.parse_spec(text), device="meta")
    with torch.no_grad(), flop_counter() as counter:
        y = model(torch.empty(3, 9, D, device="meta"))
    assert y.shape == (3, 9, D) and y.device.type == "meta"
    assert counter.get_total_flops() // 2 == 3 * report.totals.macs
    assert sum(p.numel() for p in model.parameters()) == report.totals.params


def test_verify_is_clean_on_cpu_and_meta(tmp_path):
    from archcalc.torch.verify import verify

    path = tmp_path / "moe.yaml"
    path.write_text(spec([6, D], "moe: {experts: 4, top_k: 2, hidden: 8}", "relu",
                         "moe: {experts: 3, top_k: 1, hidden: 4, expert: mlp, shared_experts: 2}"))
    for device in ("cpu", "meta"):
        result = verify(archcalc.load_spec(path), device=device)
        assert result.ok, (device, result.mismatches())
    result = verify(archcalc.load_spec(path))
    assert all(layer.checks["rf"].ok for layer in result.layers)  # global, measured by the probe


def _module(entry, shape=(6, D)):
    return build(archcalc.parse_spec(spec(list(shape), entry))).eval().get_submodule("moe1")


def test_each_token_reaches_exactly_its_top_k_experts():
    """Router weights chosen so that token t scores experts t and t+1 highest: each expert then sees
    only the tokens sent to it, once, and the output is the definition written out."""
    e, t = 6, 5
    moe = _module(f"moe: {{experts: {e}, top_k: 2, hidden: 4, renormalize: true}}", (t, D))
    x = torch.randn(t, D)
    seen = {i: [] for i in range(e)}
    original = moe.experts.forward

    def spy(tokens, i):
        seen[i].append(tokens.shape[0])
        return original(tokens, i)

    moe.experts.forward = spy
    with torch.no_grad():
        logits = torch.full((t, e), -5.0)
        for i in range(t):
            logits[i, i], logits[i, i + 1] = 3.0, 2.0
        moe.gate.weight.zero_()
        moe.gate.forward = lambda h: logits.to(h.dtype).expand(h.shape[0], e)
        y = moe(x)
    assert seen == {0: [1], 1: [2], 2: [2], 3: [2], 4: [2], 5: [1]}
    p = torch.softmax(logits, -1)
    with torch.no_grad():
        expected = torch.zeros_like(x)
        for i in range(t):
            w = p[i, [i, i + 1]] / p[i, [i, i + 1]].sum()
            expected[i] = w[0] * original(x[i:i + 1], i)[0] + w[1] * original(x[i:i + 1], i + 1)[0]
    torch.testing.assert_close(y, expected)


def _randomise(module):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.3)
    return module.eval()


def _same(ours, theirs, pairs, x):
    with torch.no_grad():
        for mine, name in pairs:
            mine.copy_(theirs.get_parameter(name))
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
        counter = flop_counter()
        with counter:
            theirs(x)
        with flop_counter() as mine_counter:
            ours(x)
    assert counter.get_total_flops() == mine_counter.get_total_flops() > 0


def test_same_outputs_and_macs_as_hugging_face_mixtral():
    transformers = pytest.importorskip("transformers")
    from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock

    config = transformers.MixtralConfig(hidden_size=D, intermediate_size=8, num_local_experts=4,
                                        num_experts_per_tok=2)
    config._experts_implementation = "eager"
    theirs = _randomise(MixtralSparseMoeBlock(config))
    ours = _module("moe: {experts: 4, top_k: 2, hidden: 8}")
    # Same names and shapes: gate.weight [E, D], experts.gate_up_proj [E, 2h, D], experts.down_proj [E, D, h]
    assert {n: tuple(p.shape) for n, p in ours.named_parameters()} == \
        {n: tuple(p.shape) for n, p in theirs.named_parameters()}
    x = torch.randn(3, 6, D)
    _same(ours, theirs, [(p, n) for n, p in ours.named_parameters()], x)
    assert archcalc.analyze_text(spec([6, D], "moe: {experts: 4, top_k: 2, hidden: 8}")).totals.macs * 3 == \
        _flops(theirs, x) // 2


def _flops(module, x):
    with torch.no_grad(), flop_counter() as counter:
        module(x)
    return counter.get_total_flops()


def test_same_outputs_and_macs_as_hugging_face_qwen2_moe():
    transformers = pytest.importorskip("transformers")
    from transformers.models.qwen2_moe.modeling_qwen2_moe import Qwen2MoeSparseMoeBlock

    config = transformers.Qwen2MoeConfig(hidden_size=D, moe_intermediate_size=6, shared_expert_intermediate_size=10,
                                         num_experts=8, num_experts_per_tok=3, norm_topk_prob=False)
    config._experts_implementation = "eager"
    theirs = _randomise(Qwen2MoeSparseMoeBlock(config))
    entry = ("moe: {experts: 8, top_k: 3, hidden: 6, renormalize: false, shared_experts: 1, shared_hidden: 10, "
             "shared_gate: true}")
    ours = _module(entry)
    names = {"gate.weight": "gate.weight", "experts.gate_up_proj": "experts.gate_up_proj",
             "experts.down_proj": "experts.down_proj", "shared_expert_gate.weight": "shared_expert_gate.weight",
             **{f"shared_experts.{p}.weight": f"shared_expert.{p}.weight" for p in ("gate_proj", "up_proj", "down_proj")}}
    mine = dict(ours.named_parameters())
    assert set(mine) == set(names)
    assert sum(p.numel() for p in theirs.parameters()) == archcalc.analyze_text(spec([6, D], entry)).totals.params
    x = torch.randn(2, 6, D)
    _same(ours, theirs, [(mine[a], b) for a, b in names.items()], x)
    assert archcalc.analyze_text(spec([6, D], entry)).totals.macs * 2 == _flops(theirs, x) // 2


def test_same_outputs_and_macs_as_hugging_face_deepseek_v2_shared_experts():
    transformers = pytest.importorskip("transformers")
    from transformers.models.deepseek_v2.modeling_deepseek_v2 import DeepseekV2Moe

    config = transformers.DeepseekV2Config(hidden_size=D, moe_intermediate_size=4, n_routed_experts=6,
                                           num_experts_per_tok=2, n_shared_experts=2, routed_scaling_factor=1.5,
                                           topk_method="greedy", norm_topk_prob=False, num_attention_heads=2,
                                           num_key_value_heads=2)
    config._experts_implementation = "eager"
    theirs = _randomise(DeepseekV2Moe(config))
    entry = "moe: {experts: 6, top_k: 2, hidden: 4, renormalize: false, scale: 1.5, shared_experts: 2}"
    ours = _module(entry)
    mine = dict(ours.named_parameters())
    assert {n: tuple(p.shape) for n, p in mine.items()} == {n: tuple(p.shape) for n, p in theirs.named_parameters()}
    x = torch.randn(2, 6, D)
    _same(ours, theirs, [(p, n) for n, p in mine.items()], x)
    assert archcalc.analyze_text(spec([6, D], entry)).totals.macs * 2 == _flops(theirs, x) // 2


def test_same_outputs_and_macs_as_hugging_face_switch_transformers():
    """Top-1 routing, weight = the softmax's largest probability (no renormalisation), two-layer
    ReLU experts wi, wo; a capacity of every token makes HF's routing dropless, as archcalc's."""
    transformers = pytest.importorskip("transformers")
    from transformers.models.switch_transformers.modeling_switch_transformers import SwitchTransformersSparseMLP

    t = 6
    config = transformers.SwitchTransformersConfig(d_model=D, d_ff=12, num_experts=4, expert_capacity=2 * t,
                                                   router_bias=True, dropout_rate=0.0)
    theirs = _randomise(SwitchTransformersSparseMLP(config))
    entry = "moe: {experts: 4, top_k: 1, hidden: 12, expert: mlp, router_bias: true, renormalize: false}"
    ours = _module(entry, (t, D))
    pairs = [(ours.gate.weight, "router.classifier.weight"), (ours.gate.bias, "router.classifier.bias")]
    with torch.no_grad():
        for i in range(4):  # HF keeps one nn.Linear per expert; archcalc the stacked [E, h, D] tensors
            ours.experts.up_proj[i].copy_(theirs.get_parameter(f"experts.expert_{i}.wi.weight"))
            ours.experts.down_proj[i].copy_(theirs.get_parameter(f"experts.expert_{i}.wo.weight"))
    assert sum(p.numel() for p in theirs.parameters()) == archcalc.analyze_text(spec([t, D], entry)).totals.params
    x = torch.randn(2, t, D)
    _same(ours, theirs, pairs, x)
    assert archcalc.analyze_text(spec([t, D], entry)).totals.macs * 2 == _flops(theirs, x) // 2


def test_export_writes_the_routing_module():
    """The exported file (no archcalc in it) holds the same parameters and, given the same weights,
    computes the same outputs."""
    from archcalc.torch.build import example_input
    from archcalc.torch.source import class_name, pytorch_source

    graph = archcalc.parse_spec(spec([4, D], "moe: {experts: 3, top_k: 2, hidden: 4, shared_experts: 1}",
                                     "moe: {experts: 4, top_k: 1, hidden: 6, expert: mlp, bias: true, "
                                     "router_bias: true, shared_experts: 1, shared_gate: true}"))
    built = build(graph).eval()
    assert built.get_submodule("moe1").export_call.startswith("MixtureOfExperts(16, 3, 2, 4, True, 'silu'")
    namespace = {"__name__": "generated_net"}
    exec(compile(pytorch_source(graph), "<generated>", "exec"), namespace)  # noqa: S102 - archcalc's own output
    generated = namespace[class_name(graph.name)]().eval()
    generated.load_state_dict(built.state_dict())
    x = example_input(graph, 3)
    with torch.no_grad():
        torch.testing.assert_close(generated(x), built(x))
