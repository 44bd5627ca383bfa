#!/usr/bin/env python3
"""make_fixtures.py - transformers reference fixtures for the engine's reference test.

Two modes (run where PyTorch and transformers are installed; no GPU needed: the
models are tiny and the reference runs on the CPU in float32, without TF32):

  python3 tools/make_fixtures.py --out DIR [--only NAME,...]
      Builds several small random LLaMA-family models (the SPECS table below),
      saves each as a Hugging Face folder DIR/NAME/ (config.json,
      generation_config.json, model.safetensors or an index + shards) and, from
      that folder loaded back in float32 with eager attention, writes
      DIR/NAME/ref.json     {"ids": [...], "greedy": [...], ...}
      DIR/NAME/logits.npy   float32 [T, vocab]
      DIR/NAME/attn.npy     float32 [layers, heads, T, T]

  python3 tools/make_fixtures.py --from MODEL_DIR --name NAME --out DIR
          [--repo-dir models/x] [--ids 1,2,3] [--prompt TEXT]
      References for an existing (trained) folder: only the three files above,
      no weights copied. ref.json's "model_dir" says where the test finds the
      model, relative to the repository root (default models/<basename>).

  python3 tools/make_fixtures.py --self-test
      Checks the parts that need only torch and numpy (spec -> config dict,
      weight re-initialisation and perturbation, .npy writing, greedy margins).

One model failing never stops the others; the run ends with a summary and exits
1 if any model failed.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback

import numpy as np
import torch

N_GREEDY = 8
SEQ_LEN = 12
COMMON = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, vocab_size=256,
              max_position_embeddings=256, rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2)

# name, model_type, stored dtype, and what each model covers. Dimensions not
# given come from COMMON. head_dim is always explicit (qwen3's default is 128).
SPECS = [
    dict(name="llama_f32_mha", model_type="llama", dtype="float32",
         num_attention_heads=4, num_key_value_heads=4, head_dim=16, tie_word_embeddings=False),
    dict(name="llama_f16_gqa2_tied", model_type="llama", dtype="float16",
         num_attention_heads=4, num_key_value_heads=2, head_dim=16, tie_word_embeddings=True),
    dict(name="llama_bf16_gqa4_sharded", model_type="llama", dtype="bfloat16", shard="60KB",
         num_attention_heads=8, num_key_value_heads=2, head_dim=8, tie_word_embeddings=False,
         num_hidden_layers=3),
    dict(name="llama_bf16_mqa_headdim32", model_type="llama", dtype="bfloat16",
         num_attention_heads=4, num_key_value_heads=1, head_dim=32, tie_word_embeddings=False),
    dict(name="llama_bf16_rope_llama3", model_type="llama", dtype="bfloat16",
         num_attention_heads=4, num_key_value_heads=2, head_dim=16, tie_word_embeddings=True,
         rope=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0, low_freq_factor=1.0,
                   high_freq_factor=4.0, original_max_position_embeddings=64),
         eos_token_id=[2, 3]),
    dict(name="llama_f16_rope_linear", model_type="llama", dtype="float16",
         num_attention_heads=4, num_key_value_heads=2, head_dim=16, tie_word_embeddings=True,
         rope=dict(rope_type="linear", rope_theta=10000.0, factor=4.0)),
    dict(name="mistral_bf16_gqa2", model_type="mistral", dtype="bfloat16",
         num_attention_heads=4, num_key_value_heads=2, head_dim=16, tie_word_embeddings=False,
         sliding_window=None),
    dict(name="qwen2_bf16_bias", model_type="qwen2", dtype="bfloat16",
         num_attention_heads=4, num_key_value_heads=2, head_dim=16, tie_word_embeddings=True,
         rope=dict(rope_type="default", rope_theta=1000000.0)),
    dict(name="qwen2_f16_bias_sharded", model_type="qwen2", dtype="float16", shard="60KB",
         num_attention_heads=4, num_key_value_heads=1, head_dim=16, tie_word_embeddings=False),
    dict(name="qwen3_bf16_qknorm", model_type="qwen3", dtype="bfloat16",
         num_attention_heads=4, num_key_value_heads=2, head_dim=32, tie_word_embeddings=True,
         rope=dict(rope_type="default", rope_theta=1000000.0)),
]

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def log(msg):
    print(f"[make_fixtures {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- pure torch

def config_kwargs(spec):
    """The keyword arguments for the transformers config class of spec, with
    rope given in the transformers 5 form (rope_parameters)."""
    kw = dict(COMMON)
    for k, v in spec.items():
        if k in ("name", "model_type", "dtype", "shard", "rope"):
            continue
        kw[k] = v
    rope = dict(spec.get("rope") or dict(rope_type="default", rope_theta=10000.0))
    kw["rope_parameters"] = rope
    if spec["model_type"] == "qwen2":
        # Qwen2Config has no head_dim field: the model uses hidden / heads, and
        # config.json goes without it (the engine's default path).
        assert kw.pop("head_dim") == kw["hidden_size"] // kw["num_attention_heads"]
        kw["use_sliding_window"] = False
    if spec["model_type"] == "qwen3":
        kw["use_sliding_window"] = False
        kw["attention_bias"] = False
    return kw


def legacy_kwargs(kw):
    """The same arguments in the transformers 4 form (rope_theta + rope_scaling)."""
    kw = dict(kw)
    rope = dict(kw.pop("rope_parameters"))
    kw["rope_theta"] = rope.pop("rope_theta", 10000.0)
    if rope.get("rope_type", "default") != "default":
        kw["rope_scaling"] = rope
    return kw


@torch.no_grad()
def reinit_and_perturb(model, seed):
    """Replaces the library's init with one that gives well separated logits
    (weights ~ N(0, 1/in_features), embeddings ~ N(0, 1)) and moves every norm
    weight and bias away from its init value (1 and 0), so that a norm or bias
    the engine forgets or takes from the wrong tensor changes the logits."""
    g = torch.Generator().manual_seed(seed)
    counts = dict(norm=0, bias=0, linear=0, embed=0)
    for name, p in model.named_parameters():
        shape = tuple(p.shape)
        if name.endswith("norm.weight") or "layernorm" in name:
            v = 1.0 + 0.5 * (torch.rand(shape, generator=g) - 0.5) * 2.0   # [0.5, 1.5]
            counts["norm"] += 1
        elif name.endswith(".bias"):
            v = 0.5 * torch.randn(shape, generator=g)
            counts["bias"] += 1
        elif "embed_tokens" in name:
            v = torch.randn(shape, generator=g)
            counts["embed"] += 1
        elif p.dim() == 2:
            v = torch.randn(shape, generator=g) / float(shape[1]) ** 0.5
            counts["linear"] += 1
        else:
            raise ValueError(f"unexpected parameter {name} {shape}")
        p.copy_(v.to(p.dtype))
    return counts


def write_npy(path, arr):
    arr = np.ascontiguousarray(np.asarray(arr, dtype="<f4"))
    np.save(path, arr, allow_pickle=False)
    back = np.load(path, allow_pickle=False)
    if back.shape != arr.shape or back.dtype != np.dtype("<f4"):
        raise RuntimeError(f"{path}: wrote {arr.shape}, read back {back.shape} {back.dtype}")


def greedy_margins(step_logits):
    """For each greedy step's logits row, top1 - top2 relative to max |row|."""
    out = []
    for row in step_logits:
        top = torch.topk(row, 2).values
        out.append(float((top[0] - top[1]) / row.abs().max()))
    return out


def rope_inv_freq(cfg, hd):
    """inv_freq for head size hd from a config.json dict (rope_parameters, or
    rope_theta + rope_scaling), with linear and llama3 scaling."""
    rp = cfg.get("rope_parameters") or {}
    sc = rp if rp else (cfg.get("rope_scaling") or {})
    theta = float(rp.get("rope_theta", cfg.get("rope_theta", 10000.0)))
    inv = 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    kind = sc.get("rope_type", sc.get("type", "default"))
    if kind == "linear":
        inv = inv / sc["factor"]
    elif kind == "llama3":
        f, lo, hi = sc["factor"], sc["low_freq_factor"], sc["high_freq_factor"]
        L = sc["original_max_position_embeddings"]
        wl = 2 * torch.pi / inv
        smooth = (L / wl - lo) / (hi - lo)
        mid = (1 - smooth) * inv / f + smooth * inv
        inv = torch.where(wl > L / lo, inv / f, torch.where(wl < L / hi, inv, mid))
    elif kind != "default":
        raise ValueError(f"rope type {kind}")
    return inv.float()


@torch.no_grad()
def plain_forward(W, cfg, ids):
    """A second, independent forward pass in plain torch from the weights by HF
    name (float32) and the config.json dict, as the engine reads them: logits
    [T, vocab] and attention [layers, heads, T, T]. A diagnostic: if it and
    transformers disagree, the fixture (or transformers' reading of the
    config) deserves a look before the engine is blamed."""
    T, d = len(ids), cfg["hidden_size"]
    H = cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads") or H
    hd = cfg.get("head_dim") or (128 if cfg["model_type"] == "qwen3" else d // H)
    eps = cfg.get("rms_norm_eps", 1e-6)

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    def rot(x):
        h = x.shape[-1] // 2
        return torch.cat((-x[..., h:], x[..., :h]), -1)

    fr = torch.outer(torch.arange(T, dtype=torch.float32), rope_inv_freq(cfg, hd))
    cos, sin = torch.cat((fr, fr), -1).cos(), torch.cat((fr, fr), -1).sin()
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    atts = []
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms(x, W[p + "input_layernorm.weight"])
        q, k, v = (h @ W[p + f"self_attn.{n}_proj.weight"].T for n in "qkv")
        if p + "self_attn.q_proj.bias" in W:
            q, k, v = (t + W[p + f"self_attn.{n}_proj.bias"] for t, n in zip((q, k, v), "qkv"))
        q = q.view(T, H, hd).transpose(0, 1)
        k = k.view(T, KV, hd).transpose(0, 1)
        v = v.view(T, KV, hd).transpose(0, 1)
        if p + "self_attn.q_norm.weight" in W:
            q, k = rms(q, W[p + "self_attn.q_norm.weight"]), rms(k, W[p + "self_attn.k_norm.weight"])
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        k, v = k.repeat_interleave(H // KV, 0), v.repeat_interleave(H // KV, 0)
        sc = (q @ k.transpose(1, 2)) / hd ** 0.5
        a = torch.softmax(sc.masked_fill(torch.ones(T, T).triu(1).bool(), float("-inf")), -1)
        atts.append(a)
        x = x + (a @ v).transpose(0, 1).reshape(T, H * hd) @ W[p + "self_attn.o_proj.weight"].T
        h = rms(x, W[p + "post_attention_layernorm.weight"])
        g, u = h @ W[p + "mlp.gate_proj.weight"].T, h @ W[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(g) * u) @ W[p + "mlp.down_proj.weight"].T
    x = rms(x, W["model.norm.weight"])
    head = W.get("lm_head.weight")
    if cfg.get("tie_word_embeddings") or head is None:
        head = W["model.embed_tokens.weight"]
    return x @ head.T, torch.stack(atts)


def second_opinion(model, folder, ids, logits, attn):
    """max |plain - transformers| / max |transformers| for the logits, and the
    max abs attention difference; None (logged) if the plain pass fails."""
    try:
        with open(os.path.join(folder, "config.json")) as f:
            cfg = json.load(f)
        W = {k: v.float() for k, v in model.state_dict().items()}
        pl, pa = plain_forward(W, cfg, ids)
        return dict(logits_rel=float((pl - logits).abs().max() / logits.abs().max()),
                    attn_abs=float((pa - attn).abs().max()))
    except Exception as e:
        log(f"  second opinion failed: {type(e).__name__}: {e}")
        return None


# ---------------------------------------------------------- with transformers

def make_config(spec):
    from transformers import AutoConfig
    kw = config_kwargs(spec)
    try:
        cfg = AutoConfig.for_model(spec["model_type"], **kw)
        rp = getattr(cfg, "rope_parameters", None)
        want = kw["rope_parameters"]
        if not isinstance(rp, dict) or rp.get("rope_type", "default") != want["rope_type"] or \
                abs(float(rp.get("rope_theta", 0)) - want["rope_theta"]) > 1e-3 * want["rope_theta"]:
            raise TypeError(f"rope_parameters not honoured: {rp}")
    except (TypeError, ValueError, AttributeError) as e:
        log(f"  {spec['name']}: transformers 5 config form failed ({e}); trying rope_scaling")
        cfg = AutoConfig.for_model(spec["model_type"], **legacy_kwargs(kw))
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    if hd != spec["head_dim"]:
        raise RuntimeError(f"head_dim {hd} != {spec['head_dim']}")
    return cfg


def build_model(spec, cfg):
    from transformers import AutoModelForCausalLM
    try:
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    except TypeError:
        model = AutoModelForCausalLM.from_config(cfg)
    return model.float().eval()


def save_folder(model, spec, folder):
    dt = DTYPES[spec["dtype"]]
    model = model.to(dt)
    kwargs = {}
    if spec.get("shard"):
        kwargs["max_shard_size"] = spec["shard"]
    model.save_pretrained(folder, **kwargs)
    files = sorted(os.listdir(folder))
    if spec.get("shard") and "model.safetensors.index.json" not in files:
        raise RuntimeError(f"asked for shards, got {files}")
    if not spec.get("shard") and "model.safetensors" not in files:
        raise RuntimeError(f"no model.safetensors in {files}")
    desc = describe_folder(folder)
    if desc["dtypes"] != [ST_DTYPES[spec["dtype"]]]:
        raise RuntimeError(f"stored dtypes {desc['dtypes']}, wanted {ST_DTYPES[spec['dtype']]}")
    if desc["lm_head"] == bool(spec["tie_word_embeddings"]):
        log(f"  {spec['name']}: note: tie_word_embeddings={spec['tie_word_embeddings']} "
            f"but lm_head.weight stored: {desc['lm_head']}")
    return files


ST_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}


def describe_folder(folder):
    """Reads the safetensors headers of folder (plain Python): tensor count,
    stored dtypes, and whether lm_head.weight is stored."""
    names, dtypes = [], set()
    for f in sorted(os.listdir(folder)):
        if not f.endswith(".safetensors"):
            continue
        with open(os.path.join(folder, f), "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(n))
        for k, v in header.items():
            if k != "__metadata__":
                names.append(k)
                dtypes.add(v["dtype"])
    return dict(tensors=len(names), dtypes=sorted(dtypes), lm_head="lm_head.weight" in names)


def load_fp32(folder):
    from transformers import AutoModelForCausalLM
    try:
        m = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    except TypeError:
        m = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, attn_implementation="eager")
    return m.float().eval()


@torch.no_grad()
def reference(model, ids):
    """Logits [T, vocab], attentions [layers, heads, T, T] and N_GREEDY greedy ids
    (argmax, the whole sequence re-run each step: no cache involved)."""
    x = torch.tensor([ids], dtype=torch.long)
    out = model(input_ids=x, output_attentions=True, use_cache=False)
    if not getattr(out, "attentions", None):
        model.config.output_attentions = True   # older/newer ways of asking
        out = model(input_ids=x, use_cache=False)
    if not getattr(out, "attentions", None):
        raise RuntimeError("the model returned no attentions (eager attention not in use?)")
    logits = out.logits[0].float()
    attn = torch.stack([a[0].float() for a in out.attentions])
    seq = list(ids)
    steps = []
    for _ in range(N_GREEDY):
        o = model(input_ids=torch.tensor([seq], dtype=torch.long), use_cache=False)
        row = o.logits[0, -1].float()
        steps.append(row)
        seq.append(int(torch.argmax(row)))
    return logits, attn, seq[len(ids):], greedy_margins(steps)


def write_refs(outdir, ids, logits, attn, greedy, margins, extra):
    write_npy(os.path.join(outdir, "logits.npy"), logits.numpy())
    write_npy(os.path.join(outdir, "attn.npy"), attn.numpy())
    ref = dict(ids=[int(i) for i in ids], greedy=[int(i) for i in greedy],
               min_greedy_margin=min(margins), logits_shape=list(logits.shape),
               attn_shape=list(attn.shape))
    ref.update(extra)
    with open(os.path.join(outdir, "ref.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")


def versions():
    import transformers
    return dict(torch=torch.__version__, transformers=transformers.__version__)


def make_one(spec, out_root, seed):
    name = spec["name"]
    final = os.path.join(out_root, name)
    tmp = tempfile.mkdtemp(prefix=name + ".", dir=out_root)
    try:
        cfg = make_config(spec)
        ids_rng = np.random.default_rng(seed)
        ids = [int(i) for i in ids_rng.integers(3, COMMON["vocab_size"], SEQ_LEN)]
        # Reseed until every greedy step has a clear winner, so the engine's
        # float32 rounding cannot flip an argmax.
        for attempt in range(6):
            model = build_model(spec, cfg)
            counts = reinit_and_perturb(model, seed + 1000 * attempt)
            for f in os.listdir(tmp):
                os.remove(os.path.join(tmp, f))
            files = save_folder(model, spec, tmp)
            ref_model = load_fp32(tmp)
            logits, attn, greedy, margins = reference(ref_model, ids)
            if min(margins) >= 2e-3:
                break
            log(f"  {name}: greedy margin {min(margins):.2e} too small, reseeding")
        else:
            raise RuntimeError(f"no seed gave greedy margins >= 2e-3 (last {min(margins):.2e})")
        check = second_opinion(ref_model, tmp, ids, logits, attn)
        if check and (check["logits_rel"] > 1e-4 or check["attn_abs"] > 1e-5):
            log(f"  {name}: WARNING: transformers and the plain torch pass disagree: {check}")
        exp_l, exp_h = spec.get("num_hidden_layers", COMMON["num_hidden_layers"]), spec["num_attention_heads"]
        if tuple(attn.shape) != (exp_l, exp_h, len(ids), len(ids)):
            raise RuntimeError(f"attention shape {tuple(attn.shape)}")
        write_refs(tmp, ids, logits, attn, greedy, margins,
                   dict(name=name, model_dir=None, spec=spec, seed=seed, files=files,
                        stored=describe_folder(tmp), perturbed=counts, second_opinion=check,
                        **versions()))
        if os.path.exists(final):
            shutil.rmtree(final)
        os.rename(tmp, final)
        size = sum(os.path.getsize(os.path.join(final, f)) for f in os.listdir(final))
        log(f"  {name}: ok, {len(files)} files, {size / 1024:.0f} KiB, greedy {greedy}, "
            f"min margin {min(margins):.3f}, perturbed {counts}, plain torch vs transformers {check}")
        return size
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def make_from(args):
    src = args.from_dir
    outdir = os.path.join(args.out, args.name)
    os.makedirs(outdir, exist_ok=True)
    model = load_fp32(src)
    vocab = int(model.config.vocab_size)
    how = None
    if args.ids:
        ids = [int(t) for t in args.ids.split(",")]
        how = "--ids"
    else:
        ids = None
        try:
            from transformers import AutoTokenizer
            tok = AutoTokenizer.from_pretrained(src)
            ids = list(tok(args.prompt, add_special_tokens=False)["input_ids"])
            how = f"tokenized {args.prompt!r}"
        except Exception as e:   # no tokenizer in the folder: fall back to fixed ids
            log(f"  {args.name}: no tokenizer ({type(e).__name__}: {e}); using seeded random ids")
        if not ids:
            ids = [int(i) for i in np.random.default_rng(7).integers(0, vocab, SEQ_LEN)]
            how = "seeded random"
    if any(i < 0 or i >= vocab for i in ids):
        raise ValueError(f"ids outside the vocabulary (size {vocab}): {ids}")
    logits, attn, greedy, margins = reference(model, ids)
    check = second_opinion(model, src, ids, logits, attn)
    log(f"{args.name}: plain torch vs transformers {check}")
    repo_dir = args.repo_dir or os.path.join("models", os.path.basename(os.path.normpath(src)))
    write_refs(outdir, ids, logits, attn, greedy, margins,
               dict(name=args.name, model_dir=repo_dir, ids_from=how, second_opinion=check, **versions()))
    log(f"{args.name}: ok, T={len(ids)}, greedy {greedy}, min margin {min(margins):.3f} "
        f"(small margins: greedy comparison may be fragile)" if min(margins) < 2e-3 else
        f"{args.name}: ok, T={len(ids)}, greedy {greedy}, min margin {min(margins):.3f}")


def self_test():
    """The parts that run without transformers."""
    # config dicts: both rope forms
    for s in SPECS:
        kw = config_kwargs(s)
        assert kw.get("head_dim", kw["hidden_size"] // kw["num_attention_heads"]) == s["head_dim"], s["name"]
        assert kw["num_attention_heads"] % kw["num_key_value_heads"] == 0, s["name"]
        assert kw["hidden_size"] % kw["num_attention_heads"] == 0, s["name"]
        lg = legacy_kwargs(kw)
        assert "rope_parameters" not in lg and "rope_theta" in lg
    assert legacy_kwargs(config_kwargs(SPECS[4]))["rope_scaling"]["rope_type"] == "llama3"
    # re-init and perturbation over a module tree with HF parameter names
    nn = torch.nn

    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj = nn.Linear(8, 8, bias=True)
            self.q_norm = nn.Module()
            self.q_norm.weight = nn.Parameter(torch.ones(4))

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.self_attn = Attn()
            self.input_layernorm = nn.Module()
            self.input_layernorm.weight = nn.Parameter(torch.ones(8))

    class Inner(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(16, 8)
            self.layers = nn.ModuleList([Layer()])
            self.norm = nn.Module()
            self.norm.weight = nn.Parameter(torch.ones(8))

    class Fake(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = Inner()
            self.lm_head = nn.Linear(8, 16, bias=False)
            self.lm_head.weight = self.model.embed_tokens.weight   # tied

    m = Fake()
    counts = reinit_and_perturb(m, 5)
    assert counts == dict(norm=3, bias=1, linear=1, embed=1), counts
    for name, p in m.named_parameters():
        if "norm" in name:
            assert (p - 1).abs().max() > 0.05 and p.min() >= 0.5 and p.max() <= 1.5, name
        if name.endswith("bias"):
            assert p.abs().max() > 0.05, name
    assert m.lm_head.weight.data_ptr() == m.model.embed_tokens.weight.data_ptr()
    # npy round trip
    d = tempfile.mkdtemp()
    try:
        a = np.arange(24, dtype=np.float64).reshape(2, 3, 4) / 7
        write_npy(os.path.join(d, "a.npy"), a)
        with open(os.path.join(d, "a.npy"), "rb") as f:
            head = f.read(128)
        assert head[:6] == b"\x93NUMPY" and b"'<f4'" in head and b"(2, 3, 4)" in head, head
        assert np.allclose(np.load(os.path.join(d, "a.npy")), a.astype(np.float32))
    finally:
        shutil.rmtree(d)
    assert abs(greedy_margins([torch.tensor([1.0, 3.0, 2.0])])[0] - 1 / 3) < 1e-6
    # a forward pass over re-initialised weights gives well separated logits
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(256, 64, generator=g)
    h = torch.randn(12, 64, generator=g)
    h = h / h.pow(2).mean(-1, keepdim=True).sqrt()
    lg = h @ emb.T
    assert lg.std() > 4, float(lg.std())
    # the plain forward: rows are causal distributions; GQA equals MHA with
    # each KV head repeated; llama3 scaling keeps high and divides low frequencies
    cfg = dict(model_type="qwen3", hidden_size=16, num_attention_heads=4, num_key_value_heads=2,
               head_dim=8, num_hidden_layers=1, rms_norm_eps=1e-6, vocab_size=20,
               rope_parameters=dict(rope_type="default", rope_theta=10000.0))
    g = torch.Generator().manual_seed(1)
    shapes = {"model.embed_tokens.weight": (20, 16), "model.norm.weight": (16,),
              "model.layers.0.input_layernorm.weight": (16,), "model.layers.0.post_attention_layernorm.weight": (16,),
              "model.layers.0.self_attn.q_proj.weight": (32, 16), "model.layers.0.self_attn.k_proj.weight": (16, 16),
              "model.layers.0.self_attn.v_proj.weight": (16, 16), "model.layers.0.self_attn.o_proj.weight": (16, 32),
              "model.layers.0.self_attn.q_norm.weight": (8,), "model.layers.0.self_attn.k_norm.weight": (8,),
              "model.layers.0.mlp.gate_proj.weight": (24, 16), "model.layers.0.mlp.up_proj.weight": (24, 16),
              "model.layers.0.mlp.down_proj.weight": (16, 24)}
    W = {k: torch.randn(v, generator=g) for k, v in shapes.items()}
    lg, at = plain_forward(W, dict(cfg, tie_word_embeddings=True), [3, 5, 7, 9])
    assert lg.shape == (4, 20) and at.shape == (1, 4, 4, 4)
    assert torch.allclose(at.sum(-1), torch.ones(1, 4, 4)) and float(at.triu(1).abs().max()) == 0.0
    W2 = dict(W)
    for n in "kv":
        W2[f"model.layers.0.self_attn.{n}_proj.weight"] = \
            W[f"model.layers.0.self_attn.{n}_proj.weight"].view(2, 8, 16).repeat_interleave(2, 0).reshape(32, 16)
    lg2, _ = plain_forward(W2, dict(cfg, num_key_value_heads=4, tie_word_embeddings=True), [3, 5, 7, 9])
    assert torch.allclose(lg, lg2, atol=1e-5), float((lg - lg2).abs().max())
    base = rope_inv_freq(dict(rope_theta=500000.0), 16)
    l3 = rope_inv_freq(dict(rope_theta=500000.0, rope_scaling=dict(
        rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
        original_max_position_embeddings=64)), 16)
    wl = 2 * torch.pi / base
    assert torch.equal(l3[wl < 16], base[wl < 16])
    assert torch.allclose(l3[wl > 64], base[wl > 64] / 8)
    assert bool(((wl < 16) | (wl > 64)).any() and (~((wl < 16) | (wl > 64))).any())
    lin = rope_inv_freq(dict(rope_parameters=dict(rope_type="linear", rope_theta=10000.0, factor=4.0)), 16)
    assert torch.allclose(lin, rope_inv_freq(dict(), 16) / 4)
    print("make_fixtures self-test: ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="output folder (one subfolder per fixture)")
    ap.add_argument("--only", help="comma-separated fixture names")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--from", dest="from_dir", help="an existing HF folder: references only")
    ap.add_argument("--name", help="fixture name for --from")
    ap.add_argument("--repo-dir", help="--from: the model's folder relative to the repository root")
    ap.add_argument("--ids", help="--from: comma-separated token ids")
    ap.add_argument("--prompt", default="Once upon a time, the little cat sat on the mat and",
                    help="--from: text tokenized with the folder's tokenizer when --ids is not given")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return 0
    if not args.out:
        ap.error("--out is required")
    torch.set_num_threads(max(1, args.threads))
    torch.backends.cuda.matmul.allow_tf32 = False
    os.makedirs(args.out, exist_ok=True)
    try:
        log(f"torch {torch.__version__}, transformers {versions()['transformers']}")
    except Exception as e:
        log(f"transformers is not importable: {e}")
        return 1
    if args.from_dir:
        if not args.name:
            ap.error("--from needs --name")
        try:
            make_from(args)
            return 0
        except Exception:
            log(f"{args.name}: FAILED\n{traceback.format_exc()}")
            return 1
    specs = SPECS
    if args.only:
        want = set(args.only.split(","))
        specs = [s for s in SPECS if s["name"] in want]
        if len(specs) != len(want):
            ap.error(f"unknown names in --only: {sorted(want - {s['name'] for s in SPECS})}")
    ok, failed, total = [], [], 0
    for i, spec in enumerate(specs):
        log(f"{spec['name']} ({i + 1}/{len(specs)})")
        try:
            total += make_one(spec, args.out, args.seed + 17 * i)
            ok.append(spec["name"])
        except Exception:
            failed.append(spec["name"])
            log(f"  {spec['name']}: FAILED\n{traceback.format_exc()}")
    log(f"summary: {len(ok)} ok, {len(failed)} failed, {total / 1024:.0f} KiB in all")
    for n in ok:
        log(f"  ok      {n}")
    for n in failed:
        log(f"  FAILED  {n}")
    if total > 3 * 1024 * 1024:
        log("warning: fixtures exceed 3 MiB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
