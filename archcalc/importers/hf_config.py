"""Hugging Face `config.json` -> an archcalc spec (YAML text), mapped from the config's fields.

Pure Python (json only): neither torch nor transformers is imported, so `archcalc analyze
llama/config.json` runs where neither is installed. Nothing is downloaded.

    import_config(path, seq_len=None) -> str        the spec's text
    convert_state_dict(config, state_dict) -> dict  HF's weights under the built spec's names

Families (`model_type`): llama, mistral, qwen2, gemma, mixtral, gpt2, gpt_neox, bert, vit,
whisper, t5, clip_vision_model, clip_text_model (clip itself, CLIPModel, is refused: its logits
mix the examples of a batch). Each maps to the model class named in the header
(LlamaForCausalLM, ..., GPT2LMHeadModel, BertModel with its pooler or BertForMaskedLM,
ViTForImageClassification or ViTModel, WhisperForConditionalGeneration,
T5ForConditionalGeneration, CLIPVisionModel(WithProjection), CLIPTextModel). Entry names
follow Hugging Face's module paths (`model.layers.0.self_attn`,
`transformer.h.0.mlp.c_fc`, `encoder.layer.0.attention.self`), so the built spec's state_dict keys
are Hugging Face's wherever archcalc's kinds name their parameters as Hugging Face does. Where they
do not, `convert_state_dict` renames, stated key by key (never silently; a key it does not know
is an error):

- attention's projections are `q`, `k`, `v`, `out` (HF: `q_proj`, `k_proj`, `v_proj`, `o_proj`
  or `out_proj`; BERT: `self.query`, `self.key`, `self.value` and `output.dense`; T5: `q`, `k`,
  `v`, `o`; GPT-NeoX's attention is written from primitives under HF's own names);
- ViT's `cls_token` [1, 1, D] and CLIP's `class_embedding` [D] are the class_token kind's
  parameter [1, 1, D]; ViT's `position_embeddings` [1, N + 1, D] the positional kind's weight;
- T5's `block.{i}.layer.{j}.X` are the spec's `block.{i}.X` by sublayer (layer_norm_{j+1}),
  block 0's relative bias table the stack's `relative_attention_bias`, `shared` the tied tables;
- BertForMaskedLM's `cls.predictions.bias` is its decoder's bias (tied): kept once;
- GPT-2's Conv1D weights are stored transposed ([in, out]) and q, k, v fused in `c_attn`
  ([D, 3D], q first): they are split and transposed into `attn.q`, `attn.k`, `attn.v`, `attn.out`,
  and `mlp.c_fc` / `mlp.c_proj` are transposed;
- Gemma's RMSNorm multiplies by (1 + weight) (GemmaRMSNorm, in float32); archcalc's rmsnorm
  multiplies by its weight, so the weight loaded is 1 + HF's weight: the same function exactly;
- Hugging Face's module lists count from 0: every `repeat` is written with `start: 0`, so
  `model.layers.0` is the spec's `model.layers.0`.

The sequence length (`--input T`): `seq_len`, by default min(max_position_embeddings, 2048)
(GPT-2: n_positions; Whisper: the decoder's max_target_positions); for BERT the input holds two
rows of T ids (word pieces, token types); T5's encoder T defaults to 512 and its decoder's to 128
(`seq_len=(T_enc, T_dec)` sets both); ViT and CLIP's vision tower take their image_size.

`convert_state_dict` takes the state_dict of transformers 5's model (its key names).

Fields: each family reads the fields its table in docs/import.md lists; fields that change
nothing archcalc computes are ignored (ids of special tokens, initialisation, caching, dropout
probabilities, which are zero in eval mode, metadata, generation settings). Any other field, an
unknown `model_type`, a rope scaling, a quantisation or an attention variant archcalc cannot
write is a SpecError naming the field and the file.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from archcalc.errors import SpecError

DEFAULT_MAX_T = 2048

# Fields that do not change shapes, parameters, MACs or the eval-mode function.
IGNORED = frozenset({
    "_name_or_path", "architectures", "transformers_version", "torch_dtype", "dtype", "model_type",
    "id2label", "label2id", "problem_type", "output_attentions", "output_hidden_states", "return_dict",
    "chunk_size_feed_forward", "is_encoder_decoder", "bos_token_id", "eos_token_id", "pad_token_id",
    "sep_token_id", "decoder_start_token_id", "initializer_range", "init_std", "initializer_factor",
    "use_cache", "tokenizer_class",
    "prefix", "task_specific_params", "finetuning_task", "_attn_implementation_autoset",
    "_commit_hash", "attn_implementation", "experts_implementation", "gradient_checkpointing",
    "tf_legacy_loss", "use_bfloat16", "pruned_heads", "torchscript", "cross_attention_hidden_size",
    "tie_encoder_decoder",
    # generation settings (generation_config.json in recent files)
    "max_length", "min_length", "do_sample", "early_stopping", "num_beams", "num_beam_groups",
    "diversity_penalty", "temperature", "top_k", "top_p", "typical_p", "repetition_penalty",
    "length_penalty", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size", "bad_words_ids",
    "num_return_sequences", "output_scores", "return_dict_in_generate", "forced_bos_token_id",
    "forced_eos_token_id", "remove_invalid_values", "exponential_decay_length_penalty",
    "suppress_tokens", "begin_suppress_tokens", "is_decoder", "add_cross_attention",
})

ACTIVATIONS = {  # HF's ACT2FN name -> (archcalc entry, moe's activation)
    "silu": ("silu: {}", "silu"), "swish": ("silu: {}", "silu"), "relu": ("relu: {}", "relu"),
    "gelu": ("gelu: {}", "gelu"), "gelu_new": ("gelu: tanh", "gelu_tanh"),
    "gelu_pytorch_tanh": ("gelu: tanh", "gelu_tanh"), "quick_gelu": ("quick_gelu: {}", None),
    "tanh": ("tanh: {}", None),
}


# --- reading ---------------------------------------------------------------------------------------

def read_config(path) -> tuple[dict, Path]:
    """(the config's fields, the config file): `path` is a config.json or a folder holding one."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"no Hugging Face config at {p} (give a config.json or a folder holding one)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read {p}: {exc}") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{p} is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if not isinstance(config, dict):
        raise SpecError(f"{p} is not a Hugging Face config (a JSON object of fields)")
    return config, p


class _Fields:
    """The config's fields, each read at most once; what is neither read nor ignored is refused."""

    def __init__(self, config: dict, file: Path, family: str):
        self.config, self.file, self.family = config, file, family
        self.read = set()

    def error(self, field: str, why: str) -> SpecError:
        return SpecError(f"{self.file}: field '{field}' {why}")

    def get(self, field, default=None, kind=None):
        self.read.add(field)
        value = self.config.get(field, default)
        if value is None:
            return default
        if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise self.error(field, f"must be a positive integer, got {value!r}")
        if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise self.error(field, f"must be a non-negative number, got {value!r}")
        if kind is bool and not isinstance(value, bool):
            raise self.error(field, f"must be true or false, got {value!r}")
        return value

    def need(self, field, kind=int):
        if self.config.get(field) is None:
            raise self.error(field, f"is missing; the {self.family} importer needs it")
        return self.get(field, kind=kind)

    def only(self, field, allowed, default=None, why="archcalc cannot represent it"):
        """A field whose only representable values are `allowed`."""
        value = self.get(field, default)
        if value not in allowed:
            raise self.error(field, f"is {value!r}: {why} (the {self.family} importer takes "
                                    f"{' or '.join(repr(a) for a in allowed)})")
        return value

    def zero_dropout(self, *fields):
        """Dropout probabilities: no parameters, no MACs, nothing in eval mode; not written (the
        spec is the eval-mode function)."""
        for f in fields:
            self.get(f, 0.0, kind=float)

    def finish(self):
        rest = [k for k in self.config if k not in self.read and k not in IGNORED]
        if rest:
            raise self.error(rest[0], f"is not understood by the {self.family} importer (model_type "
                                      f"'{self.config.get('model_type')}'); archcalc does not guess what it changes")


def _activation(f: _Fields, field: str, default: str, moe=False) -> str:
    name = f.get(field, default)
    entry = ACTIVATIONS.get(name) if isinstance(name, str) else None
    if entry is None or (moe and entry[1] is None):
        raise f.error(field, f"is {name!r}, an activation the importer does not map (known: "
                             f"{', '.join(a for a, e in ACTIVATIONS.items() if e[1] or not moe)})")
    return entry[1] if moe else entry[0]


def _no_sequence_length(seq_len, what: str, channels, image, file) -> None:
    """An image model's config takes its input from image_size: `--input T` is a mistake."""
    if seq_len is not None:
        raise SpecError(f"--input {seq_len}: {what}'s input is its image, [{channels}, {image}, {image}] "
                        f"(image_size in {file}); it takes no sequence length")


def _rope_theta(f: _Fields, default: float = 10000.0) -> tuple[float, dict]:
    """The rotary base from rope_parameters (transformers >= 5) or rope_theta / rope_scaling, and
    the attention kind's scaling arguments (rotary_scaling linear or llama3; {} for none)."""
    theta, _, scaling = _rope(f, default, scalings=True)
    return theta, scaling


# Hugging Face's rope_type -> its fields -> the attention kind's arguments
_SCALINGS = {"linear": {"factor": "rotary_factor"},
             "llama3": {"factor": "rotary_factor", "low_freq_factor": "rotary_low_freq_factor",
                        "high_freq_factor": "rotary_high_freq_factor",
                        "original_max_position_embeddings": "rotary_original_max"}}


def _rope(f: _Fields, default: float = 10000.0, partial: bool = False,
          theta_field: str = "rope_theta", partial_field: str | None = None,
          partial_default: float = 1.0, scalings: bool = False) -> tuple[float, float, dict]:
    """(base, partial rotary factor, scaling arguments) from rope_parameters (transformers >= 5),
    or the older rope_theta / rope_scaling (and GPT-NeoX's rotary_emb_base, rotary_pct). The
    default RoPE, and with `scalings` the linear and llama3 scalings (the attention kind's
    rotary_scaling); `partial` allows partial_rotary_factor (GPT-NeoX)."""
    params = f.get("rope_parameters")
    scaling = f.get("rope_scaling")
    theta = f.get(theta_field)
    factor = f.get(partial_field) if partial_field else None
    allowed = ("rope_type", "type", "rope_theta") + (("partial_rotary_factor",) if partial else ())
    out = {}
    # transformers' convert_rope_params_to_dict: `rope_scaling or rope_parameters`, so a rope_scaling
    # that is not empty replaces rope_parameters whole (its type, factor and rope_theta)
    for field, spec in (("rope_scaling", scaling),) if scaling else (("rope_parameters", params),):
        if spec is None:
            continue
        if not isinstance(spec, dict):
            raise f.error(field, f"must be a mapping, got {spec!r}")
        kind = spec.get("rope_type", spec.get("type", "default"))
        fields = _SCALINGS.get(kind, {}) if scalings else {}
        if kind != "default" and not fields:
            known = "the default RoPE" + (", linear and llama3" if scalings else " only")
            raise f.error(field, f"has rope_type {kind!r}: archcalc's rotary embedding is {known}")
        for key in spec:
            if key not in allowed and key not in fields:
                raise f.error(field, f"holds '{key}', which archcalc's rotary embedding cannot represent")
        if fields:
            if not isinstance(spec.get("factor"), (int, float)) or isinstance(spec.get("factor"), bool) \
                    or spec["factor"] <= 0:
                raise f.error(field, f"rope_type {kind} needs a factor above 0, got {spec.get('factor')!r}")
            out = {"rotary_scaling": kind}
            for key, arg in fields.items():
                value = spec.get(key)
                if key not in spec and key == "original_max_position_embeddings":
                    value = f.config.get("max_position_embeddings")  # Hugging Face's fallback (when left out)
                if value is None:
                    raise f.error(field, f"rope_type {kind} needs '{key}'")
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or (
                        arg == "rotary_original_max" and not float(value).is_integer()):
                    raise f.error(field, f"'{key}' must be a positive number, got {value!r}")
                out[arg] = int(value) if arg == "rotary_original_max" else float(value)
        if "rope_theta" in spec:
            theta = spec["rope_theta"]
        if "partial_rotary_factor" in spec:
            factor = spec["partial_rotary_factor"]
    theta = default if theta is None else theta
    if isinstance(theta, bool) or not isinstance(theta, (int, float)) or theta <= 0:
        raise f.error("rope_theta", f"must be a positive number, got {theta!r}")
    factor = partial_default if factor is None else factor
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor <= 1:
        raise f.error(partial_field or "rope_parameters", f"partial rotary factor must be in (0, 1], got {factor!r}")
    return float(theta), float(factor), out


# --- writing ---------------------------------------------------------------------------------------

def _num(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        text = repr(v)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exp = text.split("e")
            text = f"{mantissa}.0e{exp}"
        return text
    return str(v)


def _args(args: dict) -> str:
    return "{" + ", ".join(f"{k}: {_num(v)}" for k, v in args.items() if v is not None) + "}"


def _entry(name, kind, args=None, src=None, repeat=None, comment=None, text=None) -> str:
    body = text if text is not None else _args(args or {})
    parts = [f"name: {name}"]
    if src is not None:
        parts.append(f"from: {src if isinstance(src, str) else '[' + ', '.join(src) + ']'}")
    parts.append(f"{kind}: {body}")
    if repeat is not None:  # numbered from 0, as Hugging Face's nn.ModuleList
        parts.append(f"repeat: {repeat}, start: 0")
    line = "- {" + ", ".join(parts) + "}"
    return line + (f"   # {comment}" if comment else "")


class _Spec:
    def __init__(self):
        self.blocks = []  # (name, comment, inputs, entries)

    def block(self, name, entries, comment=None, inputs=None):
        self.blocks.append((name, comment, inputs, entries))

    def text(self, header, name, description, input_line, vars_, top) -> str:
        out = [f"# {line}" for line in header]
        out.append(f"name: {name}")
        out.append("description: >")
        out += _wrap(description, "  ")
        out.append(input_line)
        out.append("vars: {" + ", ".join(f"{k}: {_num(v)}" for k, v in vars_.items()) + "}")
        out.append("blocks:")
        for bname, comment, inputs, entries in self.blocks:
            out.append(f"  {bname}:" + (f"   # {comment}" if comment else ""))
            if inputs:
                out.append(f"    inputs: [{', '.join(inputs)}]")
            out.append("    layers:")
            out += [f"      {e}" for e in entries]
        out.append("layers:")
        out += [f"  {e}" for e in top]
        return "\n".join(out) + "\n"


def _wrap(text, indent, width=100):
    words, lines, line = text.split(), [], indent
    for w in words:
        if len(line) + len(w) + 1 > width and line.strip():
            lines.append(line.rstrip())
            line = indent
        line += w + " "
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _spec_name(config: dict, file: Path) -> str:
    raw = config.get("_name_or_path") or (file.parent.name if file.name == "config.json" else file.stem)
    raw = str(raw).strip().split("/")[-1] or str(config.get("model_type", "model"))
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", raw)[:200] or "model"


def _seq(f: _Fields, seq_len, positions_field: str, limit: int | None = None):
    """(T, how it was chosen): seq_len, else min(max positions, 2048)."""
    positions = f.get(positions_field, limit, kind=int) if positions_field else limit
    if seq_len is not None:
        if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
            raise SpecError(f"--input for a Hugging Face config is the sequence length T, a positive integer; "
                            f"got {seq_len!r}")
        if positions is not None and seq_len > positions and positions_field in ("n_positions",
                                                                                    "max_position_embeddings_learned"):
            raise SpecError(f"--input {seq_len}: the model's learned position table holds {positions} "
                            f"positions ({positions_field} in {f.file})")
        return seq_len, positions, f"T = {seq_len} (--input)"
    if positions is None:
        return DEFAULT_MAX_T, positions, f"T = {DEFAULT_MAX_T} (default)"
    t = min(positions, DEFAULT_MAX_T)
    return t, positions, (f"T = {t} (default: min({positions_field} = {positions}, {DEFAULT_MAX_T}); "
                          "--input T changes it)")


# --- families --------------------------------------------------------------------------------------

def import_config(path, seq_len=None) -> str:
    """The spec (YAML text) of the Hugging Face model a config.json describes. `seq_len` is the
    sequence length T (default min(max_position_embeddings, 2048))."""
    config, file = read_config(path)
    model_type = config.get("model_type")
    family = FAMILIES.get(model_type) if isinstance(model_type, str) else None
    if family is None:
        raise SpecError(f"{file}: field 'model_type' is {model_type!r}; the config importer knows "
                        f"{', '.join(FAMILIES)}")
    text = family(config, file, seq_len)
    dtype = config.get("torch_dtype") or config.get("dtype")
    if dtype in ("float32", "float16", "bfloat16", "float64"):  # stored weights' type: memory's --dtype
        head, rest = text.split("\n# Weights: ", 1)
        weights, rest = rest.split("\n", 1)
        text = (f"{head}\n# Weights: {weights}\n"
                f"# The checkpoint's dtype is {dtype}: archcalc memory --dtype {dtype}.\n{rest}")
    return text


def _header(file, model_type, cls, how_t):
    return [f"Imported by archcalc from the Hugging Face config {file} (model_type {model_type}),",
            f"as transformers' {cls}; input: {how_t}.",
            "Weights: archcalc.importers.hf_config.convert_state_dict(config, model.state_dict())."]


def _causal_lm_top(spec, model, bare, tie, block, attr, table, comment):
    """The top-level entries of a decoder-only model: the base model's own entries (`bare`), or the
    ...ForCausalLM: the base model as block `block` under `attr`, then an unbiased lm_head to the
    vocabulary (tied to `attr`.`table` when `tie`)."""
    if bare:
        return model
    spec.block(block, model, comment=comment)
    return [_entry(attr, block, {}),
            _entry("lm_head", "linear", {"out": "vocab", "bias": False},
                   comment=f"tied to {attr}.{table}" if tie else None)]


def _llama_like(config, file, seq_len):
    """llama, mistral, qwen2, gemma, mixtral: pre-norm decoders with RMSNorm, RoPE and a gated FFN."""
    mt = config["model_type"]
    f = _Fields(config, file, mt)
    lm = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
          "gemma": "GemmaForCausalLM", "mixtral": "MixtralForCausalLM"}[mt]
    cls = _architecture(f, (lm, lm[:-len("ForCausalLM")] + "Model"), lm)
    bare = cls != lm  # the base model: no output layer, the final norm's states are the output
    vocab, d = f.need("vocab_size"), f.need("hidden_size")
    ffn, depth = f.need("intermediate_size"), f.need("num_hidden_layers")
    heads = f.need("num_attention_heads")
    # A field left out takes the config class's default, which differs by family (null: heads)
    kv = f.get("num_key_value_heads", heads, kind=int) if "num_key_value_heads" in config else \
        {"llama": heads, "mistral": 8, "qwen2": 32, "gemma": 16, "mixtral": 8}[mt]
    f.read.add("num_key_value_heads")
    # GemmaConfig's head_dim defaults to 256 (a field of its own); the others' to D / heads
    head_dim = f.get("head_dim", 256 if mt == "gemma" else None, kind=int)
    if head_dim is None:
        if d % heads:
            raise f.error("num_attention_heads",
                          f"({heads}) does not divide hidden_size ({d}) and no head_dim is given")
        head_dim = d // heads
    if heads % kv:
        raise f.error("num_key_value_heads", f"({kv}) does not divide num_attention_heads ({heads})")
    eps = f.get("rms_norm_eps", 1e-5 if mt == "mixtral" else 1e-6, kind=float)
    theta, scaling = _rope_theta(f, 1e6 if mt == "mixtral" else 10000.0)
    tie = f.get("tie_word_embeddings", mt in ("gemma",), kind=bool) and not bare
    pad = config.get("pad_token_id", 0 if mt == "gemma" else None)  # GemmaConfig's default: 0
    if pad is not None and not (isinstance(pad, int) and not isinstance(pad, bool) and 0 <= pad < vocab):
        raise f.error("pad_token_id", f"must be a token id below vocab_size, got {pad!r}")
    default_act = "gelu_pytorch_tanh" if mt == "gemma" else "silu"
    if mt == "gemma":
        # GemmaConfig reads hidden_act, and turns the legacy "gelu" of the official releases into
        # gelu_pytorch_tanh; hidden_activation (in those files too) is not read by transformers 5.
        if config.get("hidden_act") == "gelu":
            config = {**config, "hidden_act": "gelu_pytorch_tanh"}
            f.config = config
        legacy = f.get("hidden_activation")
        if legacy is not None and legacy != config.get("hidden_act", default_act):
            raise f.error("hidden_activation", f"is {legacy!r} but hidden_act is "
                                               f"{config.get('hidden_act', default_act)!r}; transformers "
                                               "uses hidden_act, so the config contradicts itself")
    act_field = "hidden_act"
    f.zero_dropout("attention_dropout")
    t, _, how_t = _seq(f, seq_len, "max_position_embeddings")
    f.get("pretraining_tp", 1, kind=int)  # a tensor-parallel slicing of the same matmuls (same function)

    qkv_bias = o_bias = mlp_bias = False
    if mt in ("llama", "gemma"):
        qkv_bias = o_bias = f.get("attention_bias", False, kind=bool)
    if mt == "llama":
        mlp_bias = f.get("mlp_bias", False, kind=bool)
    if mt == "qwen2":
        qkv_bias = True
    window = None
    if mt in ("mistral", "mixtral"):
        # MistralConfig's default window is 4096 (a field left out); null: none
        window = (f.get("sliding_window", None, kind=int) if "sliding_window" in config
                  else 4096 if mt == "mistral" else None)
        f.read.add("sliding_window")
    runs = None  # Qwen2: [(first layer, count, sliding?)] where the layers differ
    if mt == "qwen2":
        # Qwen2Config: sliding_window only with use_sliding_window; layer i slides when
        # i >= max_window_layers, unless layer_types lists each layer's type.
        use_window = f.get("use_sliding_window", False, kind=bool)
        sliding = ((f.get("sliding_window", None, kind=int) if "sliding_window" in config else 4096)
                   if use_window else (f.get("sliding_window") and None))
        f.read.add("sliding_window")
        first = f.get("max_window_layers", 28)
        if isinstance(first, bool) or not isinstance(first, int) or first < 0:
            raise f.error("max_window_layers", f"must be a whole number >= 0, got {first!r}")
        types = f.get("layer_types")
        if types is None:
            types = ["sliding_attention" if sliding is not None and i >= first else "full_attention"
                     for i in range(depth)]
        if (not isinstance(types, list) or len(types) != depth
                or any(x not in ("full_attention", "sliding_attention") for x in types)):
            raise f.error("layer_types", f"must list {depth} layer types, each 'full_attention' or "
                                         f"'sliding_attention'; got {types!r}")
        if "sliding_attention" in types and sliding is None:
            raise f.error("layer_types", "names sliding_attention layers but use_sliding_window is false "
                                         "(transformers then has no window)")
        if "sliding_attention" in types:
            window = sliding
            runs = []
            for i, kind in enumerate(types):
                if runs and runs[-1][2] == (kind == "sliding_attention"):
                    runs[-1][1] += 1
                else:
                    runs.append([i, 1, kind == "sliding_attention"])
            if len(runs) == 1 and runs[0][2]:
                runs = None  # every layer slides: one block with the window
    if mt == "gemma":
        f.only("use_bidirectional_attention", (None, False), why="bidirectional attention in a causal LM")
    if mt == "mixtral":
        experts, top_k = f.need("num_local_experts"), f.need("num_experts_per_tok")
        f.only("router_jitter_noise", (0, 0.0), 0.0, why="router noise (training only) changes the routing")
        f.get("output_router_logits")
        f.get("router_aux_loss_coef")
        moe_act = _activation(f, "hidden_act", "silu", moe=True)
    else:
        act = _activation(f, act_field, default_act)
    f.finish()

    vars_ = {"vocab": vocab, "d": d, "heads": heads, "kv_heads": kv, "head_dim": head_dim, "ffn": ffn}
    if mt == "mixtral":
        vars_.update(experts=experts, top_k=top_k)
    vars_["depth"] = depth
    if window is not None:
        vars_["window"] = window
    base = lm[:-len("ForCausalLM")]
    att = {"heads": "heads", "kv_heads": "kv_heads", "head_dim": "head_dim", "causal": True,
           "window": "window" if window is not None else None, "rotary": True,
           "rotary_base": theta if theta != 10000.0 else None, **scaling}
    if qkv_bias == o_bias:
        att["bias"] = qkv_bias
    else:
        att.update(bias=qkv_bias, o_bias=o_bias)
    norm = {"eps": eps}
    spec = _Spec()
    if mt != "mixtral":
        spec.block(f"{mt}_mlp", [
            _entry("gate_proj", "linear", {"out": "ffn", "bias": mlp_bias}),
            _entry("act_fn", act.split(":")[0], text=act.split(": ")[1]),
            _entry("up_proj", "linear", {"out": "ffn", "bias": mlp_bias}, src="input"),
            _entry("gated", "multiply", {}, src=["act_fn", "up_proj"], comment="act(x W_gate) * (x W_up)"),
            _entry("down_proj", "linear", {"out": "d", "bias": mlp_bias}),
        ], comment=f"{base}MLP")
        mlp = _entry("mlp", f"{mt}_mlp", {})
    else:
        moe = {"experts": "experts", "top_k": "top_k", "hidden": "ffn",
               "activation": moe_act if moe_act != "silu" else None}
        mlp = _entry("mlp", "moe", moe, comment="router gate + experts (gate_up_proj, down_proj)")
    def decoder_layer(name, att, comment):
        spec.block(name, [
            _entry("input_layernorm", "rmsnorm", norm),
            _entry("self_attn", "attention", att),
            _entry("res_1", "add", {}, src=["input", "self_attn"]),
            _entry("post_attention_layernorm", "rmsnorm", norm),
            mlp,
            _entry("res_2", "add", {}, src=["res_1", "mlp"]),
        ], comment=comment)

    if runs is None:
        decoder_layer(f"{mt}_decoder_layer", att, f"{base}DecoderLayer")
        layers = _entry("layers", f"{mt}_decoder_layer", {}, repeat="depth")
    else:  # full-attention and sliding-window layers, numbered as HF's ModuleList
        decoder_layer(f"{mt}_decoder_layer", {**att, "window": None}, f"{base}DecoderLayer, full attention")
        decoder_layer(f"{mt}_sliding_decoder_layer", att, f"{base}DecoderLayer, sliding_attention")
        entries = []
        for start, count, slides in runs:
            kind = f"{mt}_sliding_decoder_layer" if slides else f"{mt}_decoder_layer"
            entries.append(_entry(start, kind, {}, repeat=None) if count == 1 else
                           "- {" + f"name: {start}, {kind}: {{}}, repeat: {count}" + "}")
        spec.block(f"{mt}_layers", entries, comment="layer_types: "
                   + ", ".join(f"{s}-{s + c - 1} {'sliding' if w else 'full'}" for s, c, w in runs))
        layers = _entry("layers", f"{mt}_layers", {})
    model = [_entry("embed_tokens", "embedding", {"num": "vocab", "dim": "d", "padding_idx": pad,
                                                   "tie": "lm_head" if tie else None})]
    if mt == "gemma":
        model.append(_entry("normalizer", "multiply_by", text='"d ** 0.5"',
                            comment="GemmaModel: embeddings times sqrt(hidden_size)"))
    model += [layers, _entry("norm", "rmsnorm", norm)]
    top = _causal_lm_top(spec, model, bare, tie, f"{mt}_model", "model", "embed_tokens", f"{base}Model")
    features = [f"{depth} pre-norm decoder layers of width {d} with RMSNorm (eps {eps:g})",
                f"causal attention with {heads} query heads" + (f" sharing {kv} key/value heads" if kv != heads else "")
                + f" of {head_dim}, rotary embeddings of base {theta:g}"
                + (f" ({scaling['rotary_scaling']} scaling by {scaling['rotary_factor']:g})" if scaling else "")
                + (f", a sliding window of {window}" if window is not None else "")
                + (", biases on q, k and v" if qkv_bias and not o_bias else ", biases" if qkv_bias else ""),
                (f"a mixture of {experts} SwiGLU experts of {ffn}, top {top_k}" if mt == "mixtral"
                 else f"a gated feed-forward ({act.split(':')[0]}{' tanh' if 'tanh' in act else ''}) of {ffn}")]
    if mt == "gemma":
        features.append("embeddings scaled by sqrt(hidden_size); RMSNorm as (1 + weight), loaded as such")
    features.append("no output layer (the base model: the final norm's states)" if bare else
                    "output layer tied to the token embedding" if tie else "untied output layer")
    desc = f"{cls} from {_where(file)}: " + "; ".join(features) + "."
    return spec.text(_header(file, mt, cls, how_t), _spec_name(config, file), desc,
                     f"input: {{tokens: [{t}]}}", vars_, top)


def _gpt2(config, file, seq_len):
    f = _Fields(config, file, "gpt2")
    cls = _architecture(f, ("GPT2LMHeadModel", "GPT2Model"), "GPT2LMHeadModel")
    bare = cls == "GPT2Model"
    vocab, d, depth, heads = f.need("vocab_size"), f.need("n_embd"), f.need("n_layer"), f.need("n_head")
    inner = f.get("n_inner", None, kind=int) or 4 * d
    eps = f.get("layer_norm_epsilon", 1e-5, kind=float)
    act = _activation(f, "activation_function", "gelu_new")
    t, positions, how_t = _seq(f, seq_len, "n_positions", 1024)
    f.get("n_ctx")
    scale = f.get("scale_attn_weights", True, kind=bool)
    f.only("scale_attn_by_inverse_layer_idx", (False,), False, why="a per-layer score scale")
    f.only("reorder_and_upcast_attn", (False,), False, why="an upcast, reordered attention")
    f.only("add_cross_attention", (False,), False, why="cross-attention in GPT-2")
    tie = f.get("tie_word_embeddings", True, kind=bool) and not bare
    f.zero_dropout("resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_first_dropout")
    for k in ("summary_type", "summary_use_proj", "summary_activation", "summary_proj_to_labels"):
        f.get(k)  # the sequence-summary head of GPT2DoubleHeadsModel: not in GPT2LMHeadModel
    f.finish()
    if d % heads:
        raise f.error("n_head", f"({heads}) does not divide n_embd ({d})")
    spec = _Spec()
    spec.block("gpt2_mlp", [
        _entry("c_fc", "linear", text="ffn"),
        _entry("act", act.split(":")[0], text=act.split(": ")[1]),
        _entry("c_proj", "linear", text="d"),
    ], comment="GPT2MLP (Conv1D weights, loaded transposed)")
    att = {"heads": "heads", "causal": True, "scale": None if scale else 1.0}
    spec.block("gpt2_block", [
        _entry("ln_1", "layernorm", {"eps": eps}),
        _entry("attn", "attention", att, comment="c_attn (q, k, v fused) and c_proj"),
        _entry("res_1", "add", {}, src=["input", "attn"]),
        _entry("ln_2", "layernorm", {"eps": eps}),
        _entry("mlp", "gpt2_mlp", {}),
        _entry("res_2", "add", {}, src=["res_1", "mlp"]),
    ], comment="GPT2Block")
    model = [_entry("wte", "embedding", {"num": "vocab", "dim": "d", "tie": "lm_head" if tie else None}),
             _entry("wpe", "positional", {"num": "positions"}),
             _entry("h", "gpt2_block", {}, repeat="depth"),
             _entry("ln_f", "layernorm", {"eps": eps})]
    top = _causal_lm_top(spec, model, bare, tie, "gpt2_model", "transformer", "wte", "GPT2Model")
    vars_ = {"vocab": vocab, "positions": positions, "d": d, "heads": heads, "ffn": inner, "depth": depth}
    desc = (f"{cls} from {_where(file)}: token and learned position embeddings ({positions}), {depth} "
            f"pre-norm decoder blocks of width {d} with causal attention ({heads} heads"
            + ("" if scale else ", unscaled scores") + f") and a {act.split(':')[0]} feed-forward of {inner}; "
            + ("no output layer (the base model)." if bare else
               "the output layer tied to the token embedding." if tie else "an untied output layer."))
    return spec.text(_header(file, "gpt2", cls, how_t), _spec_name(config, file), desc,
                     f"input: {{tokens: [{t}]}}", vars_, top)


def _bert(config, file, seq_len):
    f = _Fields(config, file, "bert")
    vocab, d, depth = f.need("vocab_size"), f.need("hidden_size"), f.need("num_hidden_layers")
    heads, ffn = f.need("num_attention_heads"), f.need("intermediate_size")
    segments = f.get("type_vocab_size", 2, kind=int)
    eps = f.get("layer_norm_eps", 1e-12, kind=float)
    act = _activation(f, "hidden_act", "gelu")
    f.only("position_embedding_type", ("absolute",), "absolute", why="relative position embeddings in BERT")
    f.only("is_decoder", (False,), False, why="a causal BERT decoder")
    f.only("add_cross_attention", (False,), False, why="cross-attention in BERT")
    f.zero_dropout("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout")
    pad = config.get("pad_token_id", 0)  # BertConfig's default; the word table's padding_idx
    if pad is not None and not (isinstance(pad, int) and not isinstance(pad, bool) and 0 <= pad < vocab):
        raise f.error("pad_token_id", f"must be a token id below vocab_size, got {pad!r}")
    mlm = _architecture(f, ("BertModel", "BertForMaskedLM"), "BertModel") == "BertForMaskedLM"
    tie = f.get("tie_word_embeddings", True, kind=bool)  # BertForMaskedLM's decoder; BertModel has none
    if mlm and not tie:
        raise f.error("tie_word_embeddings", "is false: BertForMaskedLM then keeps cls.predictions.bias apart "
                                             "from the decoder's bias, a parameter its forward never reads "
                                             "(no spec holds an unread weight)")
    t, positions, how_t = _seq(f, seq_len, "max_position_embeddings", 512)
    if seq_len is not None and seq_len > positions:
        raise SpecError(f"--input {seq_len}: BERT's learned position table holds {positions} positions "
                        f"(max_position_embeddings in {file})")
    f.finish()
    if d % heads:
        raise f.error("num_attention_heads", f"({heads}) does not divide hidden_size ({d})")
    norm = {"eps": eps}
    spec = _Spec()
    spec.block("bert_embeddings", [
        _entry("input_ids", "select", {"dim": 0, "index": 0}, comment="[T] word-piece ids"),
        _entry("word_embeddings", "embedding", {"num": "vocab", "dim": "d", "padding_idx": pad,
                                                "tie": "cls.predictions.decoder" if mlm and tie else None}),
        _entry("token_type_ids", "select", {"dim": 0, "index": 1}, src="input", comment="[T] segment ids"),
        _entry("token_type_embeddings", "embedding", {"num": "segments", "dim": "d"}),
        _entry("sum", "add", {}, src=["word_embeddings", "token_type_embeddings"]),
        _entry("position_embeddings", "positional", {"num": "positions"}),
        _entry("LayerNorm", "layernorm", norm),
    ], comment="BertEmbeddings (the input: row 0 the ids, row 1 the token types)")
    spec.block("bert_add_norm", [
        _entry("residual", "add", {}, src=["hidden_states", "input_tensor"]),
        _entry("LayerNorm", "layernorm", norm),
    ], comment="BertSelfOutput after its dense (inside attention): LayerNorm(x + input)",
        inputs=["hidden_states", "input_tensor"])
    att = {"heads": "heads"}
    spec.block("bert_attention", [
        _entry("self", "attention", att, comment="self.query/key/value and output.dense"),
        _entry("output", "bert_add_norm", {}, src=["self", "input"]),
    ], comment="BertAttention")
    spec.block("bert_intermediate", [
        _entry("dense", "linear", text="ffn"),
        _entry("intermediate_act_fn", act.split(":")[0], text=act.split(": ")[1]),
    ], comment="BertIntermediate")
    spec.block("bert_output", [
        _entry("dense", "linear", text="d", src="hidden_states"),
        _entry("residual", "add", {}, src=["dense", "input_tensor"]),
        _entry("LayerNorm", "layernorm", norm),
    ], comment="BertOutput", inputs=["hidden_states", "input_tensor"])
    spec.block("bert_layer", [
        _entry("attention", "bert_attention", {}),
        _entry("intermediate", "bert_intermediate", {}),
        _entry("output", "bert_output", {}, src=["intermediate", "attention"]),
    ], comment="BertLayer (post-norm)")
    spec.block("bert_encoder", [_entry("layer", "bert_layer", {}, repeat="depth")], comment="BertEncoder")
    spec.block("bert_pooler", [
        _entry("first", "select", {"dim": 0, "index": 0}, comment="the [CLS] token"),
        _entry("dense", "linear", text="d"),
        _entry("activation", "tanh", {}),
    ], comment="BertPooler")
    top = [_entry("embeddings", "bert_embeddings", {}), _entry("encoder", "bert_encoder", {}),
           _entry("pooler", "bert_pooler", {})]
    vars_ = {"vocab": vocab, "positions": positions, "segments": segments, "d": d, "heads": heads,
             "ffn": ffn, "depth": depth}
    what = (f"word-piece, token-type and learned position embeddings, {depth} post-norm encoder layers of width "
            f"{d} with {heads} heads and a {act.split(':')[0]} feed-forward of {ffn}")
    rows = "The input holds two rows of ids: row 0 the word pieces, row 1 the token types."
    if mlm:
        spec.blocks.pop()  # no pooler (add_pooling_layer=False)
        spec.block("bert_model", top[:2], comment="BertModel without its pooler")
        spec.block("bert_prediction_head_transform", [
            _entry("dense", "linear", text="d"),
            _entry("transform_act_fn", act.split(":")[0], text=act.split(": ")[1]),
            _entry("LayerNorm", "layernorm", norm),
        ], comment="BertPredictionHeadTransform")
        spec.block("bert_lm_prediction_head", [
            _entry("transform", "bert_prediction_head_transform", {}),
            _entry("decoder", "linear", {"out": "vocab"},
                   comment="weight tied to bert.embeddings.word_embeddings" if tie else None),
        ], comment="BertLMPredictionHead (its bias is decoder's, tied)")
        spec.block("bert_only_mlm_head", [_entry("predictions", "bert_lm_prediction_head", {})],
                   comment="BertOnlyMLMHead")
        top = [_entry("bert", "bert_model", {}), _entry("cls", "bert_only_mlm_head", {})]
        desc = (f"BertForMaskedLM from {_where(file)}: {what}; the output is the masked-language-model logits "
                "(a dense layer, activation and LayerNorm, then the "
                + ("token table's transpose" if tie else "decoder") + " with a bias). " + rows)
        header = _header(file, "bert", "BertForMaskedLM", how_t)
    else:
        desc = (f"BertModel with its pooler from {_where(file)}: {what}; the output is the pooler's (tanh of a "
                f"dense layer on the first token). {rows}")
        header = _header(file, "bert", "BertModel", how_t)
    return spec.text(header, _spec_name(config, file), desc,
                     f"input: {{tokens: [2, {t}]}}", vars_, top)


def _gpt_neox(config, file, seq_len):
    """GPT-NeoX (Pythia): its attention written from primitives, since it rotates only part of each
    head (partial_rotary_factor) and fuses q, k, v per head; the names are then HF's own."""
    f = _Fields(config, file, "gpt_neox")
    cls = _architecture(f, ("GPTNeoXForCausalLM", "GPTNeoXModel"), "GPTNeoXForCausalLM")
    bare = cls == "GPTNeoXModel"
    vocab, d, depth = f.need("vocab_size"), f.need("hidden_size"), f.need("num_hidden_layers")
    heads, ffn = f.need("num_attention_heads"), f.need("intermediate_size")
    eps = f.get("layer_norm_eps", 1e-5, kind=float)
    act = _activation(f, "hidden_act", "gelu")
    # GPTNeoXConfig rotates a quarter of each head unless told otherwise (rotary_pct 0.25)
    theta, factor, _ = _rope(f, partial=True, theta_field="rotary_emb_base", partial_field="rotary_pct",
                             partial_default=0.25)
    f.get("rope_theta")
    parallel = f.get("use_parallel_residual", True, kind=bool)
    bias = f.get("attention_bias", True, kind=bool)
    tie = f.get("tie_word_embeddings", False, kind=bool) and not bare
    f.zero_dropout("attention_dropout", "hidden_dropout", "classifier_dropout")
    t, _, how_t = _seq(f, seq_len, "max_position_embeddings")
    f.get("rotary_emb_base")
    f.finish()
    if d % heads:
        raise f.error("num_attention_heads", f"({heads}) does not divide hidden_size ({d})")
    head_dim = d // heads
    rot = int(head_dim * factor)
    if rot < 2 or rot % 2:
        raise f.error("partial_rotary_factor", f"gives {rot} rotary features of a head of {head_dim}; "
                                               "rotary turns pairs, so an even number >= 2 is needed")
    norm = {"eps": eps}
    spec = _Spec()
    spec.block("gpt_neox_attention", [
        _entry("query_key_value", "linear", {"out": "3 * d", "bias": bias}, comment="[T, 3D]: per head q, k, v"),
        _entry("per_head", "reshape", text="[-1, heads, 3 * head_dim]"),
        _entry("heads_first", "permute", text="[1, 0, 2]", comment="[H, T, 3 hd]"),
        _entry("query", "chunk", {"chunks": 3, "index": 0}),
        _entry("key", "chunk", {"chunks": 3, "index": 1}, src="heads_first"),
        _entry("value", "chunk", {"chunks": 3, "index": 2}, src="heads_first"),
        _entry("query_rot", "rotary", {"dims": "rotary_dims", "base": theta}, src="query",
               comment="the first rotary_dims features of each head"),
        _entry("key_rot", "rotary", {"dims": "rotary_dims", "base": theta}, src="key"),
        _entry("scores", "matmul", {"transpose": True, "scale": "head_dim ** -0.5"}, src=["query_rot", "key_rot"]),
        _entry("causal", "causal_mask", {}),
        _entry("weights", "softmax", text="-1"),
        _entry("context", "matmul", {}, src=["weights", "value"]),
        _entry("tokens_first", "permute", text="[1, 0, 2]"),
        _entry("merged", "reshape", text="[-1, d]"),
        _entry("dense", "linear", {"out": "d", "bias": bias}),
    ], comment="GPTNeoXAttention (eager)")
    spec.block("gpt_neox_mlp", [
        _entry("dense_h_to_4h", "linear", text="ffn"),
        _entry("act", act.split(":")[0], text=act.split(": ")[1]),
        _entry("dense_4h_to_h", "linear", text="d"),
    ], comment="GPTNeoXMLP")
    if parallel:
        layer = [_entry("input_layernorm", "layernorm", norm),
                 _entry("attention", "gpt_neox_attention", {}),
                 _entry("post_attention_layernorm", "layernorm", norm, src="input"),
                 _entry("mlp", "gpt_neox_mlp", {}),
                 _entry("residual", "add", {}, src=["mlp", "attention", "input"],
                        comment="parallel residual: mlp(ln2(x)) + attn(ln1(x)) + x")]
    else:
        layer = [_entry("input_layernorm", "layernorm", norm),
                 _entry("attention", "gpt_neox_attention", {}),
                 _entry("res_1", "add", {}, src=["attention", "input"]),
                 _entry("post_attention_layernorm", "layernorm", norm),
                 _entry("mlp", "gpt_neox_mlp", {}),
                 _entry("res_2", "add", {}, src=["mlp", "res_1"])]
    spec.block("gpt_neox_layer", layer, comment="GPTNeoXLayer")
    model = [_entry("embed_in", "embedding", {"num": "vocab", "dim": "d", "tie": "lm_head" if tie else None}),
             _entry("layers", "gpt_neox_layer", {}, repeat="depth"),
             _entry("final_layer_norm", "layernorm", norm)]
    top = _causal_lm_top(spec, model, bare, tie, "gpt_neox_model", "gpt_neox", "embed_in", "GPTNeoXModel")
    vars_ = {"vocab": vocab, "d": d, "heads": heads, "head_dim": head_dim, "rotary_dims": rot, "ffn": ffn,
             "depth": depth}
    desc = (f"{cls} from {_where(file)}: {depth} pre-norm layers of width {d} with "
            + ("parallel" if parallel else "sequential") + f" attention and feed-forward residuals, causal "
            f"attention with {heads} heads of {head_dim} whose first {rot} features are rotated (base {theta:g}), "
            f"written from primitives (fused per-head q, k, v), a {act.split(':')[0]} feed-forward of {ffn}; "
            + ("no output layer (the base model)." if bare else
               "the output layer tied to the token embedding." if tie else "an untied output layer."))
    return spec.text(_header(file, "gpt_neox", cls, how_t), _spec_name(config, file), desc,
                     f"input: {{tokens: [{t}]}}", vars_, top)


def _num_labels(f: _Fields) -> int:
    """Classes of a ...ForImageClassification head: num_labels, else len(id2label) (HF's rule)."""
    n = f.get("num_labels", None, kind=int)
    if n is None:
        labels = f.config.get("id2label")
        n = len(labels) if isinstance(labels, dict) and labels else 2
    return n


def _architecture(f: _Fields, known: tuple, default: str) -> str:
    """The model class: the config's architectures[0] where it is one the family writes."""
    archs = f.config.get("architectures") or [default]
    if not isinstance(archs, list) or not archs or archs[0] not in known:
        raise f.error("architectures", f"is {archs!r}; the {f.family} importer writes {' or '.join(known)} "
                                       "(name one of them there to import it)")
    return archs[0]


def _vit(config, file, seq_len):
    f = _Fields(config, file, "vit")
    cls = _architecture(f, ("ViTForImageClassification", "ViTModel"), "ViTModel")
    d, depth, heads = f.need("hidden_size"), f.need("num_hidden_layers"), f.need("num_attention_heads")
    ffn = f.need("intermediate_size")
    act = _activation(f, "hidden_act", "gelu")
    eps = f.get("layer_norm_eps", 1e-12, kind=float)
    image, patch = f.get("image_size", 224), f.get("patch_size", 16)
    channels = f.get("num_channels", 3, kind=int)
    for name, v in (("image_size", image), ("patch_size", patch)):
        if isinstance(v, list) and len(v) == 2 and v[0] == v[1]:
            v = v[0]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise f.error(name, f"must be a positive integer (a square), got {v!r}")
        if name == "image_size":
            image = v
        else:
            patch = v
    if image % patch:
        raise f.error("patch_size", f"({patch}) does not divide image_size ({image})")
    qkv_bias = f.get("qkv_bias", True, kind=bool)
    f.get("encoder_stride")  # ViTForMaskedImageModeling's decoder only
    pooler_out = f.get("pooler_output_size", d, kind=int)
    pooler_act = _activation(f, "pooler_act", "tanh")
    f.zero_dropout("hidden_dropout_prob", "attention_probs_dropout_prob")
    classes = _num_labels(f) if cls == "ViTForImageClassification" else None
    f.finish()
    _no_sequence_length(seq_len, "a ViT config", channels, image, file)
    if d % heads:
        raise f.error("num_attention_heads", f"({heads}) does not divide hidden_size ({d})")
    norm = {"eps": eps}
    spec = _Spec()
    spec.block("vit_patch_embeddings", [
        _entry("projection", "conv", {"out": "d", "kernel": "patch", "stride": "patch"}),
        _entry("flatten", "reshape", text="[d, -1]"),
        _entry("to_tokens", "permute", text="[1, 0]", comment="[patches, d]"),
    ], comment="ViTPatchEmbeddings")
    spec.block("vit_embeddings", [
        _entry("patch_embeddings", "vit_patch_embeddings", {}),
        _entry("cls_token", "class_token", {}, comment="prepended: [patches + 1, d]"),
        _entry("position_embeddings", "positional", {}),
    ], comment="ViTEmbeddings")
    spec.block("vit_mlp", [
        _entry("fc1", "linear", text="ffn"),
        _entry("activation_fn", act.split(":")[0], text=act.split(": ")[1]),
        _entry("fc2", "linear", text="d"),
    ], comment="ViTMLP")
    att = {"heads": "heads", "bias": qkv_bias, "o_bias": None if qkv_bias else True}
    spec.block("vit_layer", [
        _entry("layernorm_before", "layernorm", norm),
        _entry("attention", "attention", att),
        _entry("res_1", "add", {}, src=["input", "attention"]),
        _entry("layernorm_after", "layernorm", norm),
        _entry("mlp", "vit_mlp", {}),
        _entry("res_2", "add", {}, src=["res_1", "mlp"]),
    ], comment="ViTLayer (pre-norm)")
    model = [_entry("embeddings", "vit_embeddings", {}), _entry("layers", "vit_layer", {}, repeat="depth"),
             _entry("layernorm", "layernorm", norm)]
    vars_ = {"patch": patch, "d": d, "heads": heads, "ffn": ffn, "depth": depth}
    if cls == "ViTModel":
        spec.block("vit_pooler", [
            _entry("first", "select", {"dim": 0, "index": 0}, comment="the [CLS] token"),
            _entry("dense", "linear", text="pooler_out"),
            _entry("activation", pooler_act.split(":")[0], text=pooler_act.split(": ")[1]),
        ], comment="ViTPooler")
        top = model + [_entry("pooler", "vit_pooler", {})]
        vars_["pooler_out"] = pooler_out
        ending = "the output is the pooler's (a dense layer and tanh on the class token)"
    else:
        spec.block("vit_model", model, comment="ViTModel without its pooler")
        top = [_entry("vit", "vit_model", {}), _entry("first", "select", {"dim": 0, "index": 0},
                                                      comment="the class token"),
               _entry("classifier", "linear", text="classes")]
        vars_["classes"] = classes
        ending = f"the class token's final state classified into {classes} labels"
    desc = (f"{cls} from {_where(file)}: {patch}x{patch} patches of a {image}x{image} image embedded by a "
            f"strided convolution, a class token, learned positions, {depth} pre-norm encoder layers of width "
            f"{d} with {heads} heads and a {act.split(':')[0]} feed-forward of {ffn}; {ending}.")
    return spec.text(_header(file, "vit", cls, f"[{channels}, {image}, {image}] (image_size; no --input)"),
                     _spec_name(config, file), desc, f"input: [{channels}, {image}, {image}]", vars_, top)


def _whisper(config, file, seq_len):
    f = _Fields(config, file, "whisper")
    _architecture(f, ("WhisperForConditionalGeneration",), "WhisperForConditionalGeneration")
    vocab, d, mels = f.need("vocab_size"), f.need("d_model"), f.get("num_mel_bins", 80, kind=int)
    enc_depth, dec_depth = f.need("encoder_layers"), f.need("decoder_layers")
    enc_heads, dec_heads = f.need("encoder_attention_heads"), f.need("decoder_attention_heads")
    enc_ffn, dec_ffn = f.need("encoder_ffn_dim"), f.need("decoder_ffn_dim")
    f.get("num_hidden_layers")  # = encoder_layers (the cache's count)
    sources = f.need("max_source_positions")
    act = _activation(f, "activation_function", "gelu")
    f.only("scale_embedding", (False,), False,
           why="transformers 5 computes an embedding scale from it but never applies it")
    f.only("use_weighted_layer_sum", (False,), False, why="WhisperForAudioClassification's layer weights")
    f.get("classifier_proj_size")  # WhisperForAudioClassification only
    f.only("apply_spec_augment", (False,), False, why="SpecAugment masking while training")
    for k in ("mask_time_prob", "mask_time_length", "mask_time_min_masks", "mask_feature_prob",
              "mask_feature_length", "mask_feature_min_masks", "median_filter_width", "forced_decoder_ids",
              "alignment_heads", "lang_ids", "max_new_tokens"):
        f.get(k)  # SpecAugment (off), word timestamps, generation: no effect on the forward pass
    f.zero_dropout("dropout", "attention_dropout", "activation_dropout", "encoder_layerdrop", "decoder_layerdrop")
    tie = f.get("tie_word_embeddings", True, kind=bool)
    pad = config.get("pad_token_id", 50256)  # WhisperConfig's default
    if pad is not None and not (isinstance(pad, int) and not isinstance(pad, bool) and 0 <= pad < vocab):
        raise f.error("pad_token_id", f"must be a token id below vocab_size, got {pad!r}")
    t, targets, how_t = _seq(f, seq_len, "max_target_positions", 448)
    if seq_len is not None and seq_len > targets:
        raise SpecError(f"--input {seq_len}: Whisper's learned decoder position table holds {targets} positions "
                        f"(max_target_positions in {file})")
    f.finish()
    for heads, field in ((enc_heads, "encoder_attention_heads"), (dec_heads, "decoder_attention_heads")):
        if d % heads:
            raise f.error(field, f"({heads}) does not divide d_model ({d})")
    frames = 2 * sources
    spec = _Spec()
    spec.block("whisper_encoder_layer", [
        _entry("self_attn_layer_norm", "layernorm", {}),
        _entry("self_attn", "attention", {"heads": "enc_heads", "k_bias": False}),
        _entry("res_1", "add", {}, src=["input", "self_attn"]),
        _entry("final_layer_norm", "layernorm", {}),
        _entry("fc1", "linear", text="enc_ffn"),
        _entry("act", act.split(":")[0], text=act.split(": ")[1]),
        _entry("fc2", "linear", text="d"),
        _entry("res_2", "add", {}, src=["res_1", "fc2"]),
    ], comment="WhisperEncoderLayer")
    spec.block("whisper_decoder_layer", [
        _entry("self_attn_layer_norm", "layernorm", {}, src="x"),
        _entry("self_attn", "attention", {"heads": "dec_heads", "k_bias": False, "causal": True}),
        _entry("res_1", "add", {}, src=["x", "self_attn"]),
        _entry("encoder_attn_layer_norm", "layernorm", {}),
        _entry("encoder_attn", "cross_attention", {"heads": "dec_heads", "k_bias": False},
               src=["encoder_attn_layer_norm", "encoder_hidden_states"]),
        _entry("res_2", "add", {}, src=["res_1", "encoder_attn"]),
        _entry("final_layer_norm", "layernorm", {}),
        _entry("fc1", "linear", text="dec_ffn"),
        _entry("act", act.split(":")[0], text=act.split(": ")[1]),
        _entry("fc2", "linear", text="d"),
        _entry("res_3", "add", {}, src=["res_2", "fc2"]),
    ], comment="WhisperDecoderLayer: self-attention, cross-attention, feed-forward",
        inputs=["x", "encoder_hidden_states"])
    spec.block("whisper_encoder", [
        _entry("conv1", "conv", {"out": "d", "kernel": 3, "padding": 1}),
        _entry("gelu1", "gelu", {}),
        _entry("conv2", "conv", {"out": "d", "kernel": 3, "stride": 2, "padding": 1}),
        _entry("gelu2", "gelu", {}),
        _entry("to_tokens", "permute", text="[1, 0]", comment="[d, sources] -> [sources, d]"),
        "- {name: embed_positions, positional: {num: sources, init: sinusoids}, trainable: false}   "
        "# fixed sinusoids, frozen",
        _entry("layers", "whisper_encoder_layer", {}, repeat="enc_depth"),
        _entry("layer_norm", "layernorm", {}),
    ], comment="WhisperEncoder")
    spec.block("whisper_decoder", [
        _entry("embed_tokens", "embedding", {"num": "vocab", "dim": "d", "padding_idx": pad,
                                             "tie": "proj_out" if tie else None}, src="input_ids"),
        _entry("embed_positions", "positional", {"num": "targets"}, comment="learned"),
        _entry("layers", "whisper_decoder_layer", {}, src=["embed_positions", "encoder_hidden_states"],
               repeat="dec_depth"),
        _entry("layer_norm", "layernorm", {}),
    ], comment="WhisperDecoder", inputs=["input_ids", "encoder_hidden_states"])
    spec.block("whisper_model", [
        _entry("encoder", "whisper_encoder", {}, src="input_features"),
        _entry("decoder", "whisper_decoder", {}, src=["decoder_input_ids", "encoder"]),
    ], comment="WhisperModel", inputs=["input_features", "decoder_input_ids"])
    top = [_entry("model", "whisper_model", {}, src=["input_features", "decoder_input_ids"]),
           _entry("proj_out", "linear", {"out": "vocab", "bias": False},
                  comment="tied to model.decoder.embed_tokens" if tie else None)]
    vars_ = {"d": d, "enc_heads": enc_heads, "dec_heads": dec_heads, "enc_ffn": enc_ffn, "dec_ffn": dec_ffn,
             "enc_depth": enc_depth, "dec_depth": dec_depth, "vocab": vocab, "sources": sources,
             "targets": targets}
    desc = (f"WhisperForConditionalGeneration from {_where(file)}: an audio encoder of {enc_depth} and a text "
            f"decoder of {dec_depth} pre-LayerNorm layers, width {d}. The encoder reads {mels} log-mel bins x "
            f"{frames} frames through two convolutions of kernel 3 (the second of stride 2: {sources} positions) "
            f"and adds a fixed, frozen sinusoid table; the decoder embeds tokens, adds learned positions "
            f"({targets}), and runs causal self-attention, cross-attention to the encoder and the feed-forward. "
            "Every attention projection has a bias but the key's; "
            + ("the output layer is tied to the token table." if tie else "an untied output layer."))
    inputs = (f"inputs:\n  input_features: [{mels}, {frames}]   # log-mel bins x frames (2 * max_source_positions)\n"
              f"  decoder_input_ids: {{tokens: [{t}]}}")
    return spec.text(_header(file, "whisper", "WhisperForConditionalGeneration",
                             f"{mels} x {frames} features; decoder {how_t}"),
                     _spec_name(config, file), desc, inputs, vars_, top)


def _clip(config, file, seq_len):
    f = _Fields(config, file, "clip")
    raise f.error("model_type", "is 'clip': CLIPModel's logits compare every image of a batch with every text "
                                "(logits_per_image is [images, texts]) after an L2 normalisation: not a function of "
                                "one example, which a spec is. Import a tower: a config of model_type "
                                "clip_vision_model (CLIPVisionModel, CLIPVisionModelWithProjection) or "
                                "clip_text_model (CLIPTextModel), e.g. its vision_config or text_config")


def _clip_layers(spec, f, heads_field, causal):
    """The blocks CLIPMLP, CLIPEncoderLayer and CLIPEncoder, shared by both towers."""
    act = _activation(f, "hidden_act", "quick_gelu")
    spec.block("clip_mlp", [
        _entry("fc1", "linear", text="ffn"),
        _entry("activation_fn", act.split(":")[0], text=act.split(": ")[1]),
        _entry("fc2", "linear", text="d"),
    ], comment="CLIPMLP")
    spec.block("clip_encoder_layer", [
        _entry("layer_norm1", "layernorm", {"eps": "eps"}),
        _entry("self_attn", "attention", {"heads": "heads", "causal": True if causal else None}),
        _entry("res_1", "add", {}, src=["input", "self_attn"]),
        _entry("layer_norm2", "layernorm", {"eps": "eps"}),
        _entry("mlp", "clip_mlp", {}),
        _entry("res_2", "add", {}, src=["res_1", "mlp"]),
    ], comment="CLIPEncoderLayer (pre-norm)")
    spec.block("clip_encoder", [_entry("layers", "clip_encoder_layer", {}, repeat="depth")], comment="CLIPEncoder")
    return act


def _clip_vision(config, file, seq_len):
    f = _Fields(config, file, "clip_vision_model")
    cls = _architecture(f, ("CLIPVisionModel", "CLIPVisionModelWithProjection"), "CLIPVisionModel")
    d, ffn = f.need("hidden_size"), f.need("intermediate_size")
    depth, heads = f.need("num_hidden_layers"), f.need("num_attention_heads")
    channels = f.get("num_channels", 3, kind=int)
    image, patch = f.get("image_size", 224, kind=int), f.get("patch_size", 32, kind=int)
    eps = f.get("layer_norm_eps", 1e-5, kind=float)
    proj = f.get("projection_dim", 512, kind=int)
    f.zero_dropout("attention_dropout", "dropout")
    spec = _Spec()
    act = _clip_layers(spec, f, "num_attention_heads", causal=False)
    f.finish()
    _no_sequence_length(seq_len, "a CLIP vision config", channels, image, file)
    if image % patch:
        raise f.error("patch_size", f"({patch}) does not divide image_size ({image})")
    if d % heads:
        raise f.error("num_attention_heads", f"({heads}) does not divide hidden_size ({d})")
    spec.block("clip_vision_embeddings", [
        _entry("patch_embedding", "conv", {"out": "d", "kernel": "patch", "stride": "patch", "bias": False}),
        _entry("flatten", "reshape", text="[d, -1]"),
        _entry("to_tokens", "permute", text="[1, 0]", comment="[patches, d]"),
        _entry("class_embedding", "class_token", {}, comment="prepended: [patches + 1, d]"),
        _entry("position_embedding", "positional", {}),
    ], comment="CLIPVisionEmbeddings")
    model = [_entry("embeddings", "clip_vision_embeddings", {}),
             _entry("pre_layrnorm", "layernorm", {"eps": "eps"}, comment="Hugging Face's spelling"),
             _entry("encoder", "clip_encoder", {}),
             _entry("first", "select", {"dim": 0, "index": 0}, comment="the class token"),
             _entry("post_layernorm", "layernorm", {"eps": "eps"}, comment="pooler_output")]
    vars_ = {"patch": patch, "d": d, "heads": heads, "ffn": ffn, "depth": depth, "eps": eps}
    if cls == "CLIPVisionModel":
        top = model
        ending = "the output is pooler_output (post_layernorm of the class token)"
    else:
        spec.block("clip_vision_transformer", model, comment="CLIPVisionTransformer")
        top = [_entry("vision_model", "clip_vision_transformer", {}),
               _entry("visual_projection", "linear", {"out": "projection_dim", "bias": False},
                      comment="image_embeds")]
        vars_["projection_dim"] = proj
        ending = f"the output is image_embeds (the pooled class token projected to {proj}, no bias)"
    desc = (f"{cls} from {_where(file)}: {patch}x{patch} patches of a {image}x{image} image embedded by a strided "
            f"convolution without bias, a class token, learned positions, a LayerNorm, {depth} pre-norm encoder "
            f"layers of width {d} with {heads} heads and a {act.split(':')[0]} feed-forward of {ffn}; {ending}.")
    how = f"[{channels}, {image}, {image}] (image_size; no --input)"
    return spec.text(_header(file, "clip_vision_model", cls, how),
                     _spec_name(config, file), desc, f"input: [{channels}, {image}, {image}]", vars_, top)


def _clip_text(config, file, seq_len):
    f = _Fields(config, file, "clip_text_model")
    archs = config.get("architectures")
    if isinstance(archs, list) and archs and archs[0] != "CLIPTextModel":
        raise f.error("architectures", f"is {archs!r}: its text_embeds project the hidden state at each "
                                       "sequence's end-of-text token, a position found from the ids (not "
                                       "representable); the importer writes CLIPTextModel")
    f.get("architectures")
    vocab, d, ffn = f.need("vocab_size"), f.need("hidden_size"), f.need("intermediate_size")
    depth, heads = f.need("num_hidden_layers"), f.need("num_attention_heads")
    eps = f.get("layer_norm_eps", 1e-5, kind=float)
    f.get("projection_dim")  # CLIPTextModelWithProjection's only
    f.zero_dropout("attention_dropout", "dropout")
    t, positions, how_t = _seq(f, seq_len, "max_position_embeddings", 77)
    if seq_len is not None and seq_len > positions:
        raise SpecError(f"--input {seq_len}: CLIP's learned position table holds {positions} positions "
                        f"(max_position_embeddings in {file})")
    spec = _Spec()
    act = _clip_layers(spec, f, "num_attention_heads", causal=True)
    f.finish()
    if d % heads:
        raise f.error("num_attention_heads", f"({heads}) does not divide hidden_size ({d})")
    spec.block("clip_text_embeddings", [
        _entry("token_embedding", "embedding", {"num": "vocab", "dim": "d"}),
        _entry("position_embedding", "positional", {"num": "positions"}),
    ], comment="CLIPTextEmbeddings")
    top = [_entry("embeddings", "clip_text_embeddings", {}), _entry("encoder", "clip_encoder", {}),
           _entry("final_layer_norm", "layernorm", {"eps": "eps"}, comment="last_hidden_state")]
    vars_ = {"vocab": vocab, "positions": positions, "d": d, "heads": heads, "ffn": ffn, "depth": depth, "eps": eps}
    desc = (f"CLIPTextModel from {_where(file)}: token and learned position embeddings ({positions}), {depth} "
            f"pre-norm layers of width {d} with causal attention ({heads} heads) and a {act.split(':')[0]} "
            "feed-forward of " f"{ffn}, a final LayerNorm. The output is last_hidden_state; pooler_output (the "
            "hidden state at each sequence's end-of-text token, a position found from the ids) is not written.")
    header = _header(file, "clip_text_model", "CLIPTextModel", how_t)
    header.insert(2, "Output: last_hidden_state (pooler_output picks a position from the ids: not written).")
    return spec.text(header, _spec_name(config, file), desc, f"input: {{tokens: [{t}]}}", vars_, top)


T5_DECODER_T = 128  # the decoder's default length (the bundled t5_small's)


def _t5(config, file, seq_len):
    f = _Fields(config, file, "t5")
    _architecture(f, ("T5ForConditionalGeneration",), "T5ForConditionalGeneration")
    vocab, d, d_kv, d_ff = f.need("vocab_size"), f.need("d_model"), f.need("d_kv"), f.need("d_ff")
    depth, heads = f.need("num_layers"), f.need("num_heads")
    dec_depth = f.get("num_decoder_layers", depth, kind=int)
    buckets = f.get("relative_attention_num_buckets", 32, kind=int)
    distance = f.get("relative_attention_max_distance", 128, kind=int)
    eps = f.get("layer_norm_epsilon", 1e-6, kind=float)
    proj = f.get("feed_forward_proj", "relu")
    parts = str(proj).split("-")
    gated = parts[0] == "gated" and len(parts) == 2
    if len(parts) > 2 or (len(parts) == 2 and not gated):
        raise f.error("feed_forward_proj", f"is {proj!r}; transformers takes 'ACT' or 'gated-ACT'")
    act_name = "gelu_new" if proj == "gated-gelu" else parts[-1]
    f.get("dense_act_fn")
    f.get("is_gated_act")
    for field, derived in (("dense_act_fn", act_name), ("is_gated_act", gated)):
        if config.get(field) is not None and config[field] != derived:
            raise f.error(field, f"is {config[field]!r} but feed_forward_proj {proj!r} gives {derived!r} "
                                 "(transformers derives it from feed_forward_proj)")
    act = ACTIVATIONS.get(act_name)
    if act is None:
        raise f.error("feed_forward_proj", f"names the activation {act_name!r}, which the importer does not map")
    act = act[0]
    # transformers 5: the output layer is always the shared table; tie_word_embeddings: false (T5
    # v1.1's files) only turns off the decoder output's scaling by d_model ** -0.5.
    scale = config.get("tie_word_embeddings", None) is not False
    f.get("tie_word_embeddings")
    saved = f.get("scale_decoder_outputs")
    if saved is not None and saved != scale:
        raise f.error("scale_decoder_outputs", f"is {saved!r} but tie_word_embeddings gives {scale!r}; "
                                               "transformers 5 derives it from tie_word_embeddings")
    f.get("n_positions")  # a legacy field: T5's positions are relative
    f.zero_dropout("dropout_rate", "classifier_dropout")
    f.get("output_past")
    f.finish()
    if isinstance(seq_len, (tuple, list)) and len(seq_len) == 2:
        enc_t, dec_t = seq_len
        how = f"encoder T = {enc_t}, decoder T = {dec_t} (--input)"
    elif seq_len is not None:
        enc_t, dec_t = seq_len, T5_DECODER_T
        how = f"encoder T = {enc_t} (--input), decoder T = {dec_t} (default)"
    else:
        enc_t, dec_t = 512, T5_DECODER_T
        how = f"encoder T = 512, decoder T = {dec_t} (defaults; --input T sets the encoder's)"
    for v in (enc_t, dec_t):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise SpecError(f"--input for a T5 config is the encoder's sequence length T, a positive integer; "
                            f"got {v!r}")
    norm = {"eps": "eps"}
    att = {"heads": "heads", "head_dim": "d_kv", "bias": False, "scale": 1}

    def ff(n, src):
        if gated:
            return [_entry(f"layer_norm_{n}", "rmsnorm", norm),
                    _entry("wi_0", "linear", {"out": "d_ff", "bias": False}, comment="DenseReluDense (gated)"),
                    _entry("act", act.split(":")[0], text=act.split(": ")[1]),
                    _entry("wi_1", "linear", {"out": "d_ff", "bias": False}, src=f"layer_norm_{n}"),
                    _entry("gated", "multiply", {}, src=["act", "wi_1"]),
                    _entry("wo", "linear", {"out": "d", "bias": False}),
                    _entry(f"res_{n}", "add", {}, src=[src, "wo"])]
        return [_entry(f"layer_norm_{n}", "rmsnorm", norm),
                _entry("wi", "linear", {"out": "d_ff", "bias": False}, comment="DenseReluDense"),
                _entry("act", act.split(":")[0], text=act.split(": ")[1]),
                _entry("wo", "linear", {"out": "d", "bias": False}),
                _entry(f"res_{n}", "add", {}, src=[src, "wo"])]

    spec = _Spec()
    spec.block("t5_encoder_layer", [
        _entry("layer_norm_1", "rmsnorm", norm, src="x"),
        _entry("SelfAttention", "attention", att, src=["layer_norm_1", "position_bias"]),
        _entry("res_1", "add", {}, src=["x", "SelfAttention"]),
    ] + ff(2, "res_1"), comment="T5Block: layer.0 = T5LayerSelfAttention, layer.1 = T5LayerFF",
        inputs=["x", "position_bias"])
    spec.block("t5_decoder_layer", [
        _entry("layer_norm_1", "rmsnorm", norm, src="x"),
        _entry("SelfAttention", "attention", {**att, "causal": True}, src=["layer_norm_1", "position_bias"]),
        _entry("res_1", "add", {}, src=["x", "SelfAttention"]),
        _entry("layer_norm_2", "rmsnorm", norm),
        _entry("EncDecAttention", "cross_attention", att, src=["layer_norm_2", "encoder_hidden_states"]),
        _entry("res_2", "add", {}, src=["res_1", "EncDecAttention"]),
    ] + ff(3, "res_2"), comment="layer.0 self-attention (causal), layer.1 T5LayerCrossAttention, layer.2 T5LayerFF",
        inputs=["x", "position_bias", "encoder_hidden_states"])
    bias = {"heads": "heads", "num_buckets": "buckets", "max_distance": "max_distance"}
    spec.block("t5_encoder", [
        _entry("embed_tokens", "embedding", {"num": "vocab", "dim": "d", "tie": "decoder.embed_tokens"},
               comment="the shared table"),
        _entry("relative_attention_bias", "relative_position_bias", bias, src="input",
               comment="layer 0's, read by every layer"),
        _entry("block", "t5_encoder_layer", {}, src=["embed_tokens", "relative_attention_bias"], repeat="depth"),
        _entry("final_layer_norm", "rmsnorm", norm),
    ], comment="T5Stack (is_decoder false)")
    spec.block("t5_decoder", [
        _entry("embed_tokens", "embedding", {"num": "vocab", "dim": "d", "tie": "lm_head"}, src="ids",
               comment="the shared table"),
        _entry("relative_attention_bias", "relative_position_bias", {**bias, "bidirectional": False}, src="ids"),
        _entry("block", "t5_decoder_layer", {}, src=["embed_tokens", "relative_attention_bias",
                                                     "encoder_hidden_states"], repeat="dec_depth"),
        _entry("final_layer_norm", "rmsnorm", norm),
    ], comment="T5Stack (is_decoder true)", inputs=["ids", "encoder_hidden_states"])
    top = [_entry("encoder", "t5_encoder", {}, src="input_ids"),
           _entry("decoder", "t5_decoder", {}, src=["decoder_input_ids", "encoder"])]
    if scale:
        top.append(_entry("scale_decoder_outputs", "multiply_by", text='"d ** -0.5"',
                          comment="sequence_output * model_dim ** -0.5"))
    top.append(_entry("lm_head", "linear", {"out": "vocab", "bias": False}, comment="the shared table"))
    vars_ = {"vocab": vocab, "d": d, "heads": heads, "d_kv": d_kv, "d_ff": d_ff, "depth": depth,
             "dec_depth": dec_depth, "buckets": buckets, "max_distance": distance, "eps": eps}
    desc = (f"T5ForConditionalGeneration from {_where(file)}: an encoder of {depth} and a decoder of {dec_depth} "
            f"pre-norm layers, width {d}, sharing one token table with each other and with lm_head (as "
            f"transformers 5 always ties it). Each stack computes one relative position bias ({buckets} buckets "
            f"up to {distance}; the encoder's bidirectional, the decoder's causal) that every layer reads. "
            f"Attention has {heads} heads of {d_kv}, no biases, unscaled scores; "
            + (f"a gated {act.split(':')[0]} feed-forward" if gated else f"a {act.split(':')[0]} feed-forward")
            + f" of {d_ff} without biases; RMS norms (eps {eps:g})"
            + ("; the decoder's output scaled by d_model ** -0.5 before lm_head." if scale else
               "; the decoder's output not scaled (tie_word_embeddings false)."))
    inputs = (f"inputs:\n  input_ids: {{tokens: [{enc_t}]}}           # the encoder's tokens\n"
              f"  decoder_input_ids: {{tokens: [{dec_t}]}}   # the decoder's")
    return spec.text(_header(file, "t5", "T5ForConditionalGeneration", how), _spec_name(config, file), desc,
                     inputs, vars_, top)


def _t5_weights(key, value):
    """T5: HF's block.{i}.layer.{j}.X -> the spec's block.{i}.X by sublayer; the relative bias table
    of block 0 -> the stack's relative_attention_bias; `o` -> `out`; shared.weight -> the tied
    embed_tokens (HF's encoder/decoder embed_tokens and lm_head are that same table: skipped)."""
    if key == "shared.weight":
        return [("encoder.embed_tokens.weight", value), ("decoder.embed_tokens.weight", value),
                ("lm_head.weight", value)]
    if key in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"):
        return []  # tied to shared (transformers 5 always ties them)
    m = re.fullmatch(r"(encoder|decoder)\.block\.(\d+)\.layer\.(\d)\.(.+)", key)
    if not m:
        return [(key, value)]
    stack, i, j, rest = m[1], m[2], int(m[3]), m[4]
    if rest.endswith("relative_attention_bias.weight"):
        if i != "0" or j != 0:
            raise SpecError(f"state_dict key '{key}': only block 0's self-attention holds a relative bias table")
        return [(f"{stack}.relative_attention_bias.weight", value)]
    ff = 2 if stack == "decoder" else 1
    if rest.startswith("layer_norm."):
        rest = f"layer_norm_{j + 1}." + rest[len("layer_norm."):]
    elif rest.startswith("DenseReluDense.") and j == ff:
        rest = rest[len("DenseReluDense."):]
    elif rest.startswith(("SelfAttention.", "EncDecAttention.")):
        head, proj, what = rest.split(".")
        rest = f"{head}.{'out' if proj == 'o' else proj}.{what}"
    else:
        raise SpecError(f"state_dict key '{key}' is not a weight of the T5 model the importer writes")
    return [(f"{stack}.block.{i}.{rest}", value)]


def _where(file: Path) -> str:
    return f"{file.parent.name}/{file.name}" if file.name == "config.json" and file.parent.name else file.name


FAMILIES = {"llama": _llama_like, "mistral": _llama_like, "qwen2": _llama_like, "gemma": _llama_like,
            "mixtral": _llama_like, "gpt2": _gpt2, "gpt_neox": _gpt_neox, "bert": _bert, "vit": _vit,
            "t5": _t5, "whisper": _whisper, "clip_vision_model": _clip_vision, "clip_text_model": _clip_text,
            "clip": _clip}


# --- weights ---------------------------------------------------------------------------------------

_ATTN = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "out", "out_proj": "out"}
_BERT_ATTN = {"attention.self.query": "attention.self.q", "attention.self.key": "attention.self.k",
              "attention.self.value": "attention.self.v", "attention.output.dense": "attention.self.out"}
_SKIPPED = ("attn.bias", "attn.masked_bias", "attention.bias", "attention.masked_bias", "rotary_emb.inv_freq",
            "embeddings.position_ids", "embeddings.token_type_ids",
            "layer.1.EncDecAttention.relative_attention_bias.weight")


def convert_state_dict(config, state_dict) -> dict:
    """Hugging Face's state_dict (of the class the import names) under the imported spec's names,
    ready for `archcalc.torch.build(spec).load_state_dict(...)`. `config` is the config.json path
    (or its folder, or its fields as a dict). Renames and transforms only what the module
    docstring lists; any key it does not know raises SpecError."""
    if isinstance(config, dict):
        fields, file = config, Path("<config>")
    else:
        fields, file = read_config(config)
    mt = fields.get("model_type")
    if not isinstance(mt, str) or mt not in _ROOTS:
        raise SpecError(f"{file}: field 'model_type' is {mt!r}; the config importer converts the weights of "
                        f"{', '.join(_ROOTS)}")
    d = fields.get("n_embd") or fields.get("hidden_size")
    out = {}
    for key, value in state_dict.items():
        # non-persistent buffers of older checkpoints: masks and index ranges
        if key in _SKIPPED or key.endswith(tuple("." + k for k in _SKIPPED)):
            continue
        if mt == "gpt2":
            pairs = _gpt2_weights(key, value, d)
        elif mt == "bert":
            for hf, ours in _BERT_ATTN.items():
                key = key.replace("." + hf + ".", "." + ours + ".")
            # BertForMaskedLM: cls.predictions.bias is cls.predictions.decoder.bias (tied): kept once
            pairs = [] if key == "cls.predictions.bias" else [(key, value)]
        elif mt == "t5":
            pairs = _t5_weights(key, value)
        elif mt == "whisper":
            pairs = [(_ATTN_RE.sub(lambda m: f".{m[1]}.{_ATTN[m[2]]}.", key), value)]
        elif mt in ("clip_vision_model", "clip_text_model"):
            key = _ATTN_RE.sub(lambda m: f".{m[1]}.{_ATTN[m[2]]}.", key)
            if key.endswith("embeddings.class_embedding"):  # [d] -> the class_token kind's [1, 1, d]
                key, value = key + ".class_token", value.reshape(1, 1, -1)
            pairs = [(key, value)]
        elif mt == "vit":
            pairs = [_vit_weights(key, value)]
        elif mt == "gpt_neox":  # the names are HF's; transformers < 5 called the output layer embed_out
            pairs = [("lm_head.weight" if key == "embed_out.weight" else key, value)]
        else:
            key = _ATTN_RE.sub(lambda m: f".{m[1]}.{_ATTN[m[2]]}.", key)
            if mt == "gemma" and key.endswith("norm.weight"):
                value = value + 1  # GemmaRMSNorm: x * (1 + weight)
            pairs = [(key, value)]
        for k, v in pairs:
            out[k] = v
    _check_known(mt, out, file)
    return out


def _vit_weights(key, value):
    """ViT: attention's q/k/v/o_proj; cls_token [1, 1, d] is the class_token kind's parameter;
    position_embeddings [1, N + 1, d] is the positional kind's weight [N + 1, d]."""
    key = _ATTN_RE.sub(lambda m: f".{m[1]}.{_ATTN[m[2]]}.", key)
    if key.endswith("embeddings.cls_token"):
        return key + ".class_token", value
    if key.endswith("embeddings.position_embeddings"):
        return key + ".weight", value[0]
    return key, value


_ATTN_RE = re.compile(r"\.(self_attn|attention|encoder_attn)\.(q_proj|k_proj|v_proj|o_proj|out_proj)\.")


def _gpt2_weights(key, value, d):
    """GPT-2's Conv1D ([in, out]) weights transposed; c_attn split into q, k, v (q first)."""
    if key.endswith(("attn.c_attn.weight", "attn.c_attn.bias")):
        stem, what = key.rsplit(".c_attn.", 1)
        parts = [value[..., i * d:(i + 1) * d] for i in range(3)]
        return [(f"{stem}.{p}.{what}", part.t().contiguous() if what == "weight" else part.clone())
                for p, part in zip("qkv", parts)]
    if key.endswith(("attn.c_proj.weight", "attn.c_proj.bias")):
        key = key.replace("attn.c_proj.", "attn.out.")
        return [(key, value.t().contiguous() if key.endswith("weight") else value)]
    if key.endswith(("mlp.c_fc.weight", "mlp.c_proj.weight")):
        return [(key, value.t().contiguous())]
    return [(key, value)]


def _check_known(mt, out, file):
    for key in out:
        if key.split(".")[0] not in _ROOTS[mt]:
            raise SpecError(f"state_dict key '{key}' is not a weight of the {mt} model the importer writes "
                            f"(from {file}); nothing is dropped silently")


_LM = ("model", "lm_head", "embed_tokens", "layers", "norm")  # ...ForCausalLM, and the base ...Model
_ROOTS = {"llama": _LM, "mistral": _LM, "qwen2": _LM, "gemma": _LM, "mixtral": _LM,
          "gpt2": ("transformer", "lm_head", "wte", "wpe", "h", "ln_f"),
          "gpt_neox": ("gpt_neox", "lm_head", "embed_in", "layers", "final_layer_norm"), "bert": ("embeddings", "encoder", "pooler", "bert", "cls"),
          "vit": ("vit", "classifier", "embeddings", "layers", "layernorm", "pooler"), "whisper": ("model", "proj_out"),
          "t5": ("encoder", "decoder", "lm_head"),
          "clip_vision_model": ("vision_model", "visual_projection", "embeddings", "pre_layrnorm", "encoder",
                                "post_layernorm"),
          "clip_text_model": ("embeddings", "encoder", "final_layer_norm")}
