"""archcalc.importers.hf_config: a Hugging Face config.json mapped to a spec, checked against the
model transformers (5.x) builds from the same config (random weights; nothing is downloaded).

Per family (llama, mistral, qwen2, gemma, mixtral, gpt2, gpt_neox, bert, vit, whisper, t5, clip towers):
- the real size (configs/<model>/config.json; llama2_7b, mistral_7b, qwen2_0_5b, mixtral_8x7b, gpt2,
  bert_base_uncased, pythia_160m and t5_small in the Hub's transformers-4 layout, rope_theta and
  rotary_pct at the top level, the rest as transformers 5 writes them) on the meta device
  (FlopCounterMode MACs of HF's full forward pass on meta too, all but Mixtral): the same parameters, trainable
  and not, the same state_dict keys and shapes after convert_state_dict; for the five families
  with a bundled spec, the import gives the bundled spec's figures (parameters, MACs, per layer);
- a small config (configs/tiny_<family>/config.json, 2 layers): FlopCounterMode MACs of HF's
  eager forward equal the analysis, the output shape equals, and with HF's weights loaded
  (convert_state_dict, strict) the built spec's outputs equal HF's;
- importing imports neither torch nor transformers (a subprocess reads sys.modules);
- fields the importer cannot represent are errors naming the field and the file.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import archcalc
from archcalc.api import analyze_text
from archcalc.errors import SpecError
from archcalc.importers.hf_config import convert_state_dict, import_config
from archcalc.reader.parse import parse_spec

HERE = Path(__file__).resolve().parent
CONFIGS = HERE / "configs"
SPECS = HERE.parents[1] / "specs" / "transformers"
BIG = ["llama_7b", "llama2_7b", "mistral_7b", "qwen2_0_5b", "gemma_2b", "mixtral_8x7b", "gpt2", "pythia_160m", "bert_base",
       "bert_base_uncased",
       "vit_base_patch16_224", "whisper_tiny", "t5_small", "clip_vit_b32_vision", "clip_vit_b32_text"]
TINY = ["tiny_llama", "tiny_mistral", "tiny_qwen2", "tiny_gemma", "tiny_mixtral", "tiny_gpt2", "tiny_gpt_neox",
        "tiny_bert", "tiny_vit", "tiny_whisper", "tiny_t5", "tiny_clip_vision", "tiny_clip_text"]
_DROP = object()  # a field removed from a config (_write)
CLASSES = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
           "gemma": "GemmaForCausalLM", "mixtral": "MixtralForCausalLM", "gpt2": "GPT2LMHeadModel",
           "gpt_neox": "GPTNeoXForCausalLM", "bert": "BertModel", "whisper": "WhisperForConditionalGeneration",
           "t5": "T5ForConditionalGeneration"}


def _analyze(name, seq_len=None):
    return analyze_text(import_config(CONFIGS / name, seq_len=seq_len), filename=name)


# --- without torch ---------------------------------------------------------------------------------

def test_importing_and_analyzing_imports_neither_torch_nor_transformers():
    code = (
        "import sys\n"
        "from archcalc.importers.hf_config import import_config\n"
        "from archcalc.api import analyze_text\n"
        f"for name in {BIG + TINY!r}:\n"
        f"    analyze_text(import_config({str(CONFIGS)!r} + '/' + name))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the bundled specs -----------------------------------------------------------------------------

@pytest.mark.parametrize("config, spec, tokens", [
    ("llama_7b", "llama_7b", 2048), ("qwen2_0_5b", "qwen2_0_5b", 2048), ("mixtral_8x7b", "mixtral_8x7b", 4096),
    ("gpt2", "gpt2_small", 1024), ("bert_base", "bert_base", 512), ("vit_base_patch16_224", "vit_b16", None),
    ("whisper_tiny", "whisper_tiny", None), ("t5_small", "t5_small", None)])
def test_same_figures_as_the_bundled_spec(config, spec, tokens):
    ours = _analyze(config, tokens)
    bundled = archcalc.analyze(SPECS / f"{spec}.yaml")
    for field in ("params", "trainable_params", "non_trainable_params", "macs", "active_params"):
        assert getattr(ours.totals, field) == getattr(bundled.totals, field), field
    assert ours.output_shape == bundled.output_shape
    assert ours.input_shape == bundled.input_shape
    # layer by layer: the same multiset of (kind, parameters, MACs, output shape)
    rows = lambda r: Counter((x.kind, x.params, x.macs, tuple(x.output_shape))  # noqa: E731
                             for x in r.layers if x.kind != "dropout")  # t5_small writes HF's dropouts (0 in eval)
    assert rows(ours) == rows(bundled)


def test_published_sizes():
    """Model cards: Mistral-7B 7.24 B, Gemma-2B 2.51 B (tied), Qwen2-0.5B 494 M, Mixtral 46.7 B."""
    assert _analyze("mistral_7b").totals.params == 7_241_732_096
    assert _analyze("gemma_2b").totals.params == 2_506_172_416
    assert _analyze("qwen2_0_5b").totals.params == 494_032_768
    assert _analyze("mixtral_8x7b").totals.active_params == 12_879_925_248
    assert _analyze("pythia_160m").totals.params == 162_322_944
    assert _analyze("llama2_7b").totals.params == 6_738_415_616
    assert _analyze("bert_base_uncased").totals.params == 109_514_298  # BertForMaskedLM


def test_default_sequence_length_and_header():
    text = import_config(CONFIGS / "mistral_7b")
    assert "input: {tokens: [2048]}" in text  # min(max_position_embeddings 32768, 2048)
    assert "min(max_position_embeddings = 32768, 2048)" in text.splitlines()[1]
    assert text.startswith("# Imported by archcalc from the Hugging Face config")
    assert "input: {tokens: [2, 64]}" in import_config(CONFIGS / "tiny_bert")  # min(64, 2048), two rows
    assert "input: {tokens: [100]}" in import_config(CONFIGS / "tiny_llama" / "config.json", seq_len=100)
    assert "window: window" in text and "window: 4096" in text


# --- Hugging Face ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hf():
    torch = pytest.importorskip("torch")
    try:  # torchvision's wheel here does not load against this torch, and transformers imports it
        sys.path.insert(0, str(HERE.parent))
        from torchvision_models import torchvision_models
        torchvision_models()
    except ImportError:
        pass
    transformers = pytest.importorskip("transformers")
    return torch, transformers


def _hf_model(hf, name, device=None):
    """HF's model for configs/NAME (or a folder path) with eager attention (and experts)."""
    torch, transformers = hf
    folder = CONFIGS / name
    fields = json.loads((folder / "config.json").read_text())
    mt = fields["model_type"]
    cls = getattr(transformers, (fields.get("architectures") or [CLASSES[mt]])[0])
    extra = {"experts_implementation": "eager"} if fields["model_type"] == "mixtral" else {}
    config = cls.config_class.from_pretrained(folder, attn_implementation="eager", **extra)
    with torch.device(device or "cpu"):
        if device is None:
            torch.manual_seed(0)
        model = cls(config).eval()
    if device is None:  # HF starts biases at 0 and norms at 1 (Gemma's at 0): move every weight
        gen = torch.Generator().manual_seed(2)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return model


def _spec(name, seq_len=None):
    return parse_spec(import_config(CONFIGS / name, seq_len=seq_len), name)


@pytest.mark.parametrize("name", BIG)
@pytest.mark.slow
def test_real_size_parameters_keys_and_shapes_on_meta(hf, name):
    from archcalc.torch import build

    model = _hf_model(hf, name, device="meta")
    report = _analyze(name)
    params = list(model.parameters())  # tied weights once
    assert report.totals.params == sum(p.numel() for p in params)
    assert report.totals.trainable_params == sum(p.numel() for p in params if p.requires_grad)
    assert report.totals.non_trainable_params == sum(p.numel() for p in params if not p.requires_grad)
    ours = build(_spec(name), device="meta")
    converted = convert_state_dict(CONFIGS / name, model.state_dict())
    assert {k: tuple(v.shape) for k, v in converted.items()} == \
        {k: tuple(v.shape) for k, v in ours.state_dict().items()}


def _inputs(hf, name, tokens):
    torch, _ = hf
    gen = torch.Generator().manual_seed(1)
    if name in ("tiny_vit", "tiny_clip_vision"):
        x = torch.randn(1, 3, 32, 32, generator=gen)
        return {"pixel_values": x}, x
    if name == "tiny_whisper":  # 16 mel bins x 2 * max_source_positions frames, and decoder tokens
        x = torch.randn(1, 16, 60, generator=gen)
        ids = torch.randint(0, 256, (1, tokens), generator=gen)
        return {"input_features": x, "decoder_input_ids": ids}, (x, ids)
    if name == "tiny_t5":  # encoder and decoder tokens, 24 and 16
        ids = torch.randint(0, 256, (1, tokens), generator=gen)
        dec = torch.randint(0, 256, (1, 16), generator=gen)
        return {"input_ids": ids, "decoder_input_ids": dec}, (ids, dec)
    ids = torch.randint(0, 256, (1, tokens), generator=gen)
    if name == "tiny_bert":
        types = torch.randint(0, 2, (1, tokens), generator=gen)
        return {"input_ids": ids, "token_type_ids": types}, torch.stack([ids, types], dim=1)
    return {"input_ids": ids}, ids


def _hf_out(name, out):
    """The output the imported spec computes: logits (BertForMaskedLM's too), else BertModel's /
    ViTModel's / CLIPVisionModel's
    pooler_output, CLIPVisionModelWithProjection's image_embeds, CLIPTextModel's last_hidden_state."""
    if name == "tiny_clip_text":
        return out.last_hidden_state
    for field in ("logits", "image_embeds", "pooler_output", "last_hidden_state"):
        if getattr(out, field, None) is not None:
            return getattr(out, field)
    raise AssertionError(f"no output for {name}")


@pytest.mark.parametrize("name", TINY)
@pytest.mark.slow
def test_small_config_macs_output_shape_and_outputs_with_hf_weights(hf, name):
    _same_as_hf(hf, name)


def _same_as_hf(hf, name, family=None):
    """MACs (FlopCounterMode), output shape, parameters and outputs with HF's weights loaded."""
    torch, _ = hf
    from archcalc.torch import build
    from archcalc.torch.verify import flop_counter

    tokens = 24  # longer than tiny_mistral's sliding window of 8: the window matters
    family = family or name
    model = _hf_model(hf, name)
    theirs_in, ours_in = _inputs(hf, family, tokens)
    with torch.no_grad(), flop_counter() as counter:
        expected = _hf_out(family, model(**theirs_in))
    # an image's size is the config's; T5: encoder and decoder tokens; Whisper: T decoder tokens
    seq = None if family in ("tiny_vit", "tiny_clip_vision") else (tokens, 16) if family == "tiny_t5" else tokens
    report = _analyze(name, seq)
    assert report.totals.macs == counter.get_total_flops() // 2
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    assert tuple(expected.shape[1:]) == tuple(report.output_shape)
    ours = build(_spec(name, seq)).eval()
    ours.load_state_dict(convert_state_dict(CONFIGS / name, model.state_dict()), strict=True)
    with torch.no_grad():
        got = ours(*ours_in) if isinstance(ours_in, tuple) else ours(ours_in)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("base, changes", [
    ("tiny_llama", {"attention_bias": True, "mlp_bias": True, "head_dim": 32, "tie_word_embeddings": True}),
    ("tiny_llama", {"hidden_act": "gelu", "num_key_value_heads": 1, "rms_norm_eps": 1e-3}),
    ("tiny_llama", {"architectures": ["LlamaModel"], "tie_word_embeddings": True}),
    ("tiny_mixtral", {"architectures": ["MixtralModel"]}),
    ("tiny_gpt2", {"architectures": ["GPT2Model"]}),
    ("tiny_gpt_neox", {"architectures": ["GPTNeoXModel"]}),
    ("tiny_qwen2", {"tie_word_embeddings": False}),
    # sliding windows (of 8 < 24 tokens) on some layers: layers 1-2 of 3, then all, then by layer_types
    ("tiny_qwen2", {"use_sliding_window": True, "sliding_window": 8, "max_window_layers": 1, "num_hidden_layers": 3}),
    ("tiny_qwen2", {"use_sliding_window": True, "sliding_window": 8, "max_window_layers": 0}),
    ("tiny_qwen2", {"use_sliding_window": True, "sliding_window": 8, "num_hidden_layers": 3,
                    "layer_types": ["sliding_attention", "full_attention", "sliding_attention"]}),
    ("tiny_gemma", {"hidden_act": "gelu", "hidden_activation": "gelu_pytorch_tanh", "attention_bias": True}),
    ("tiny_gemma", {"hidden_act": "relu", "tie_word_embeddings": False}),
    # scaled rotary frequencies (Llama 3.1's llama3, and linear, in both config layouts); the
    # pre-training context of 16 < 24 tokens puts some frequencies in each of llama3's three bands
    ("tiny_llama", {"rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0, "original_max_position_embeddings": 16}}),
    ("tiny_llama", {"rope_parameters": _DROP, "rope_theta": 5e5,
                    "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 2.0,
                                     "high_freq_factor": 3.0, "original_max_position_embeddings": 12}}),
    ("tiny_mistral", {"rope_parameters": _DROP, "rope_scaling": {"type": "linear", "factor": 3.0}}),
    ("tiny_gemma", {"head_dim": _DROP}),  # GemmaConfig's default head_dim: 256, not hidden_size / heads
    # fields left out take the config class's defaults, which differ by family:
    ("tiny_mistral", {"sliding_window": _DROP}),  # MistralConfig: 4096 (not none)
    ("tiny_mixtral", {"rms_norm_eps": _DROP, "rope_parameters": _DROP}),  # MixtralConfig: 1e-5, base 1e6
    ("tiny_gpt_neox", {"rope_parameters": _DROP}),  # GPTNeoXConfig: a quarter of each head rotated
    ("tiny_gpt_neox", {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}}),  # the same
    ("tiny_gpt2", {"scale_attn_weights": False, "n_inner": 80, "activation_function": "relu"}),
    ("tiny_gpt_neox", {"use_parallel_residual": False, "attention_bias": False, "tie_word_embeddings": True,
                       "rope_parameters": {"rope_type": "default", "rope_theta": 500.0,
                                           "partial_rotary_factor": 0.5}}),
    ("tiny_bert", {"hidden_act": "relu", "type_vocab_size": 3, "layer_norm_eps": 1e-5}),
    ("tiny_bert", {"architectures": ["BertForMaskedLM"]}),
    ("tiny_bert", {"architectures": ["BertForMaskedLM"], "hidden_act": "gelu_new", "pad_token_id": 3}),
    ("tiny_vit", {"architectures": ["ViTModel"], "qkv_bias": False, "pooler_output_size": 48, "num_channels": 3}),
    ("tiny_whisper", {"tie_word_embeddings": False, "activation_function": "relu", "pad_token_id": None}),
    ("tiny_t5", {"feed_forward_proj": "gated-gelu", "tie_word_embeddings": False, "scale_decoder_outputs": False,
                 "dense_act_fn": "gelu_new", "is_gated_act": True, "num_decoder_layers": 3}),
    ("tiny_t5", {"feed_forward_proj": "gated-silu", "dense_act_fn": "silu", "is_gated_act": True}),
    ("tiny_clip_vision", {"architectures": ["CLIPVisionModel"], "hidden_act": "gelu", "layer_norm_eps": 1e-6}),
])
@pytest.mark.slow
def test_config_variants_are_the_same_function(hf, tmp_path, base, changes):
    folder = _write(tmp_path, base, **changes).parent
    _same_as_hf(hf, folder, family=base)


@pytest.mark.slow
def test_the_sliding_window_changes_mistrals_outputs(hf):
    """Without the window the outputs differ: the test above would catch a missing window."""
    torch, _ = hf
    from archcalc.torch import build

    model = _hf_model(hf, "tiny_mistral")
    theirs_in, ids = _inputs(hf, "tiny_mistral", 24)
    text = import_config(CONFIGS / "tiny_mistral", seq_len=24).replace("window: window, ", "")
    ours = build(parse_spec(text)).eval()
    ours.load_state_dict(convert_state_dict(CONFIGS / "tiny_mistral", model.state_dict()))
    with torch.no_grad():
        assert not torch.allclose(ours(ids), model(**theirs_in).logits, atol=1e-3)


def test_the_rope_scaling_changes_llamas_outputs(hf, tmp_path):
    """Without rotary_scaling the outputs differ: the variants above would catch a scaling left out."""
    torch, _ = hf
    from archcalc.torch import build

    rope = {"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
    folder = _write(tmp_path, "tiny_llama", rope_parameters=rope).parent
    model = _hf_model(hf, folder)
    theirs_in, ids = _inputs(hf, "tiny_llama", 24)
    text = import_config(folder, seq_len=24)
    assert "rotary_scaling: llama3" in text and "rotary_original_max: 16" in text
    plain = re.sub(r", rotary_scaling: llama3(, rotary_\w+: [\d.]+)+", "", text)
    assert "rotary_factor" not in plain and "rotary_base: 500000" in plain
    ours = build(parse_spec(plain)).eval()
    ours.load_state_dict(convert_state_dict(folder, model.state_dict()))
    with torch.no_grad():
        assert not torch.allclose(ours(ids), model(**theirs_in).logits, atol=1e-3)


def test_gemma_norm_weights_are_loaded_as_one_plus_hfs(hf):
    torch, _ = hf
    model = _hf_model(hf, "tiny_gemma")
    sd = model.state_dict()
    converted = convert_state_dict(CONFIGS / "tiny_gemma", sd)
    key = next(k for k in converted if k.endswith("input_layernorm.weight"))
    hf_key = "model.layers.0.input_layernorm.weight"
    assert torch.equal(converted[key], sd[hf_key] + 1)


# --- errors ----------------------------------------------------------------------------------------

def _write(tmp_path, base, **changes):
    fields = json.loads((CONFIGS / base / "config.json").read_text())
    for k, v in changes.items():
        if v is _DROP:
            fields.pop(k, None)
        else:
            fields[k] = v
    path = tmp_path / "config.json"
    path.write_text(json.dumps(fields))
    return path



@pytest.mark.parametrize("base, changes, words", [
    ("tiny_llama", {"model_type": "falcon"}, ["model_type", "'falcon'", "llama"]),
    ("tiny_llama", {"rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0}},
     ["rope_parameters", "llama3"]),
    ("mistral_7b", {"rope_scaling": {"type": "dynamic", "factor": 2.0}}, ["rope_scaling", "dynamic", "llama3"]),
    ("tiny_llama", {"rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0}}, ["yarn"]),
    # null is no value: transformers fails on it (only a field left out falls back to max_position_embeddings)
    ("tiny_llama", {"rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0, "original_max_position_embeddings": None}},
     ["original_max_position_embeddings"]),
    ("tiny_llama", {"rope_parameters": {"rope_type": "linear", "rope_theta": 1e4, "factor": 0}}, ["factor above 0"]),
    ("tiny_llama", {"rope_parameters": {"rope_type": "linear", "rope_theta": 1e4, "factor": 2.0,
                                        "low_freq_factor": 1.0}}, ["low_freq_factor"]),
    ("tiny_llama", {"flash_attention_window": 4}, ["flash_attention_window", "not understood"]),
    ("tiny_llama", {"hidden_act": "mish"}, ["hidden_act", "mish"]),
    ("tiny_llama", {"hidden_size": _DROP}, ["hidden_size", "missing"]),
    ("tiny_llama", {"num_key_value_heads": 3}, ["num_key_value_heads"]),
    ("tiny_qwen2", {"layer_types": ["sliding_attention", "full_attention"]}, ["layer_types", "use_sliding_window"]),
    ("tiny_qwen2", {"layer_types": ["full_attention"]}, ["layer_types", "2 layer types"]),
    ("tiny_mixtral", {"router_jitter_noise": 0.1}, ["router_jitter_noise"]),
    ("tiny_gpt2", {"scale_attn_by_inverse_layer_idx": True}, ["scale_attn_by_inverse_layer_idx"]),
    ("tiny_gpt2", {"reorder_and_upcast_attn": True}, ["reorder_and_upcast_attn"]),
    ("tiny_bert", {"position_embedding_type": "relative_key"}, ["position_embedding_type", "relative_key"]),
    ("tiny_bert", {"is_decoder": True}, ["is_decoder"]),
    ("tiny_bert", {"architectures": ["BertForSequenceClassification"]}, ["architectures", "BertForMaskedLM"]),
    ("tiny_llama", {"architectures": ["LlamaForSequenceClassification"]}, ["architectures", "LlamaModel"]),
    ("tiny_bert", {"architectures": ["BertForMaskedLM"], "tie_word_embeddings": False}, ["tie_word_embeddings"]),
    ("tiny_gemma", {"use_bidirectional_attention": True}, ["use_bidirectional_attention"]),
    ("tiny_gemma", {"hidden_act": "gelu_pytorch_tanh", "hidden_activation": "relu"}, ["hidden_activation"]),
    ("tiny_gpt_neox", {"rope_parameters": {"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.01}},
     ["partial_rotary_factor", "even"]),
    ("tiny_llama", {"rope_parameters": {"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.5}},
     ["rope_parameters", "partial_rotary_factor"]),
    ("tiny_llama", {"quantization_config": {"quant_method": "gptq"}}, ["quantization_config"]),
    ("tiny_vit", {"architectures": ["ViTForMaskedImageModeling"]}, ["architectures", "ViTForMaskedImageModeling"]),
    ("tiny_vit", {"patch_size": 5}, ["patch_size", "does not divide"]),
    ("tiny_whisper", {"scale_embedding": True}, ["scale_embedding"]),
    ("tiny_whisper", {"apply_spec_augment": True}, ["apply_spec_augment"]),
    ("tiny_t5", {"feed_forward_proj": "fancy-relu"}, ["feed_forward_proj", "fancy-relu"]),
    ("tiny_t5", {"scale_decoder_outputs": False}, ["scale_decoder_outputs"]),
    ("clip_vit_b32", {}, ["model_type", "'clip'", "clip_vision_model", "clip_text_model"]),
    ("tiny_clip_text", {"architectures": ["CLIPTextModelWithProjection"]}, ["architectures", "end-of-text"]),
])
def test_unrepresentable_fields_are_errors_naming_field_and_file(tmp_path, base, changes, words):
    path = _write(tmp_path, base, **changes)
    with pytest.raises(SpecError) as err:
        import_config(path)
    message = str(err.value)
    assert str(path) in message
    for w in words:
        assert w in message, message


def test_files_that_are_not_configs(tmp_path):
    with pytest.raises(SpecError, match="no Hugging Face config"):
        import_config(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(SpecError, match="is not JSON"):
        import_config(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(SpecError, match="JSON object"):
        import_config(tmp_path)
    with pytest.raises(SpecError, match="sequence length"):
        import_config(CONFIGS / "tiny_llama", seq_len=0)
    with pytest.raises(SpecError, match="position table holds 64"):
        import_config(CONFIGS / "tiny_gpt2", seq_len=65)
    with pytest.raises(SpecError, match="position table holds 64"):
        import_config(CONFIGS / "tiny_bert", seq_len=65)


def test_convert_refuses_keys_it_does_not_know():
    with pytest.raises(SpecError, match="classifier.weight"):
        convert_state_dict(CONFIGS / "tiny_bert", {"classifier.weight": None})


@pytest.mark.parametrize("name, renamed", [
    ("tiny_llama", r"\.self_attn\.(q|k|v|o|out)(_proj)?\."), ("tiny_mixtral", r"\.self_attn\.(q|k|v|o|out)(_proj)?\."),
    ("tiny_qwen2", r"\.self_attn\.(q|k|v|o|out)(_proj)?\."), ("tiny_gpt_neox", None),
    ("tiny_whisper", r"_attn\.(q|k|v|out)(_proj)?\."),
    ("tiny_vit", r"\.attention\.(q|k|v|o|out)(_proj)?\.|\.cls_token|\.position_embeddings"),
    ("tiny_clip_vision", r"_attn\.(q|k|v|out)(_proj)?\.|class_embedding"),
    ("tiny_clip_text", r"_attn\.(q|k|v|out)(_proj)?\.")])
def test_state_dict_keys_are_hugging_faces_apart_from_the_documented_renames(hf, name, renamed):
    """Without convert_state_dict: every key but the renamed ones (attention's projections; ViT's
    class token and position table) is Hugging Face's own, layers numbered from 0."""
    import re

    from archcalc.torch import build

    theirs = set(_hf_model(hf, name, device="meta").state_dict())
    ours = set(build(_spec(name), device="meta").state_dict())
    keep = (lambda k: True) if renamed is None else (lambda k: not re.search(renamed, k))  # noqa: E731
    assert {k for k in ours if keep(k)} == {k for k in theirs if keep(k)}
    assert any(".0." in k for k in ours)
    if renamed is None:
        assert ours == theirs


@pytest.mark.parametrize("name", TINY)
@pytest.mark.slow
def test_archcalc_verify_is_clean_on_the_imported_spec(hf, name):
    """Every layer's shape, parameters and MACs, measured on the built module (archcalc verify)."""
    from archcalc.torch.verify import verify

    result = verify(_spec(name))
    assert result.ok, result.mismatches()


@pytest.mark.parametrize("name", TINY)
def test_any_wrong_value_of_any_field_is_a_spec_error_never_a_traceback(tmp_path, name):
    """Every field of the small configs set in turn to a word, a list, a negative number and a
    mapping: the import (and the analysis of what it writes) succeeds or raises SpecError."""
    base = json.loads((CONFIGS / name / "config.json").read_text())
    path = tmp_path / "config.json"
    for key in base:
        for value in ("x", [1], -1, {"a": 1}):
            path.write_text(json.dumps({**base, key: value}))
            try:
                analyze_text(import_config(path))
            except SpecError as exc:
                assert exc.cli_line().startswith("error:") and "\n" not in str(exc)
                assert not str(exc).startswith("error:")


@pytest.mark.parametrize("name", [n for n in BIG if n != "mixtral_8x7b"])  # HF's experts call nonzero()
@pytest.mark.slow
def test_real_size_macs_on_meta_equal_flop_counter(hf, name):
    """FlopCounterMode on Hugging Face's forward pass of the full model on the meta device, at the
    import's default input, counts the analysis's MACs (Mixtral: on the small config above)."""
    torch, _ = hf
    from archcalc.torch.verify import flop_counter

    model = _hf_model(hf, name, device="meta")
    report = _analyze(name)
    shape, mt = report.input_shape, model.config.model_type
    zeros = lambda *s: torch.zeros(1, *s, dtype=torch.long, device="meta")  # noqa: E731
    if mt == "bert":
        inputs = {"input_ids": zeros(shape[1]), "token_type_ids": zeros(shape[1])}
    elif mt in ("vit", "clip_vision_model"):
        inputs = {"pixel_values": torch.zeros(1, *shape, device="meta")}
    elif mt == "whisper":
        inputs = {"input_features": torch.zeros(1, *shape, device="meta"), "decoder_input_ids": zeros(448)}
    elif mt == "t5":
        inputs = {"input_ids": zeros(512), "decoder_input_ids": zeros(128)}
    else:
        inputs = {"input_ids": zeros(shape[0])}
    with torch.no_grad(), flop_counter() as counter:
        model(**inputs)
    assert counter.get_total_flops() // 2 == report.totals.macs


@pytest.mark.parametrize("name, what", [("tiny_vit", "a ViT config"), ("tiny_clip_vision", "a CLIP vision config")])
def test_an_image_config_takes_no_sequence_length(name, what):
    with pytest.raises(SpecError, match=rf"--input 24: {what}'s input is its image, \[3, \d+, \d+\] .*it takes no "
                                        "sequence length"):
        import_config(CONFIGS / name, seq_len=24)
