"""train_llama.py - a LLaMA decoder in plain PyTorch whose parameters carry Hugging
Face's names and meaning, and the writer of a standard HF model folder
(config.json, model.safetensors, tokenizer files, generation_config.json).

The math follows transformers' modeling_llama.py: RMSNorm in float32 then scaled by
the weight, RoPE with rotate_half (dimension i paired with i + head_dim/2,
inv_freq_i = theta^(-2i/head_dim)), grouped-query attention where query head h
reads KV head h // (n_heads / n_kv_heads), SwiGLU MLP down(silu(gate(x)) * up(x)),
optional tied embeddings (then no lm_head.weight is written).
"""
import json
import math
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CHAT_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


class Cfg:
    """Model shape; field names are config.json's."""

    def __init__(self, vocab_size, hidden_size, num_hidden_layers, num_attention_heads,
                 num_key_value_heads, intermediate_size, max_position_embeddings=512,
                 rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
                 head_dim=None, bos_token_id=None, eos_token_id=None, pad_token_id=None):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.intermediate_size = intermediate_size
        self.max_position_embeddings = max_position_embeddings
        self.rope_theta = float(rope_theta)
        self.rms_norm_eps = rms_norm_eps
        self.tie_word_embeddings = tie_word_embeddings
        self.head_dim = head_dim or hidden_size // num_attention_heads
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id

    def config_json(self):
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "hidden_size": self.hidden_size,
            "initializer_range": 0.02,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings,
            "mlp_bias": False,
            "num_attention_heads": self.num_attention_heads,
            "num_hidden_layers": self.num_hidden_layers,
            "num_key_value_heads": self.num_key_value_heads,
            "pretraining_tp": 1,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_parameters": {"rope_type": "default", "rope_theta": self.rope_theta},
            "tie_word_embeddings": self.tie_word_embeddings,
            "torch_dtype": "bfloat16",
            "dtype": "bfloat16",
            "use_cache": True,
            "vocab_size": self.vocab_size,
        }


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dt = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dt)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope_cos_sin(pos, head_dim, theta, device):
    """pos: (B, T) integer positions -> cos, sin (B, 1, T, head_dim), float32."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    f = pos.float()[..., None] * inv
    emb = torch.cat((f, f), dim=-1)
    return emb.cos()[:, None], emb.sin()[:, None]


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.nh, self.nkv, self.hd = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        self.q_proj = nn.Linear(c.hidden_size, self.nh * self.hd, bias=False)
        self.k_proj = nn.Linear(c.hidden_size, self.nkv * self.hd, bias=False)
        self.v_proj = nn.Linear(c.hidden_size, self.nkv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.nh * self.hd, c.hidden_size, bias=False)

    def forward(self, x, cos, sin, mask, need_attn):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = (q * cos + rotate_half(q) * sin).to(v.dtype)
        k = (k * cos + rotate_half(k) * sin).to(v.dtype)
        rep = self.nh // self.nkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        probs = None
        if not need_attn and mask is None and hasattr(F, "scaled_dot_product_attention"):
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            s = (q @ k.transpose(-1, -2)).float() / math.sqrt(self.hd)
            causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            s = s.masked_fill(~causal, float("-inf"))
            if mask is not None:  # (B, T) True where the key is real
                s = s.masked_fill(~mask[:, None, None, :], float("-inf"))
            p = torch.softmax(s, dim=-1)
            p = torch.nan_to_num(p)
            probs = p if need_attn else None
            o = p.to(v.dtype) @ v
        o = o.transpose(1, 2).reshape(B, T, self.nh * self.hd)
        return self.o_proj(o), probs


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.mlp = MLP(c)

    def forward(self, x, cos, sin, mask, need_attn):
        a, p = self.self_attn(self.input_layernorm(x), cos, sin, mask, need_attn)
        x = x + a
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, p


class Body(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList([Layer(c) for _ in range(c.num_hidden_layers)])
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)


class Llama(nn.Module):
    """forward(ids, pos=None, mask=None, need_attn=False) -> (logits float32 (B,T,V),
    list of per-layer attention probabilities (B, heads, T, T) or None)."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Body(c)
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        if c.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def init_weights(self, gen, emb_std=0.02, lin_std=0.02, norm_jitter=0.0):
        """Seeded initialisation; output projections scaled down by depth (GPT-2)."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("layernorm.weight") or name == "model.norm.weight":
                    p.copy_(1.0 + norm_jitter * torch.randn(p.shape, generator=gen))
                elif name == "model.embed_tokens.weight":
                    p.copy_(emb_std * torch.randn(p.shape, generator=gen))
                else:
                    std = lin_std
                    if name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
                        std = lin_std / math.sqrt(2 * self.c.num_hidden_layers)
                    p.copy_(std * torch.randn(p.shape, generator=gen))

    def forward(self, ids, pos=None, mask=None, need_attn=False):
        B, T = ids.shape
        if pos is None:
            pos = torch.arange(T, device=ids.device)[None].expand(B, T)
        cos, sin = rope_cos_sin(pos, self.c.head_dim, self.c.rope_theta, ids.device)
        x = self.model.embed_tokens(ids)
        attns = [] if need_attn else None
        for layer in self.model.layers:
            x, p = layer(x, cos, sin, mask, need_attn)
            if need_attn:
                attns.append(p)
        x = self.model.norm(x)
        return self.lm_head(x).float(), attns


# ---------------------------------------------------------------------------
# safetensors, written by hand:
#   [u64 little-endian N][N bytes JSON header, space padded to 8][raw data]
#   header: {"__metadata__": {...}, name: {"dtype", "shape", "data_offsets": [b, e]}}
# ---------------------------------------------------------------------------
_ST_DTYPE = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32"}


def save_safetensors(path, tensors, dtype=torch.bfloat16):
    """tensors: dict name -> tensor. Writes them in name order as dtype."""
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu", dtype).contiguous()
        if dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            raw = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": _ST_DTYPE[dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    """Reads a file written by save_safetensors (BF16/F16/F32) into float32 tensors."""
    import numpy as np
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, en = e["data_offsets"]
        raw = data[base + b: base + en]
        if e["dtype"] == "BF16":
            a = np.frombuffer(raw, dtype="<i2").copy()
            t = torch.from_numpy(a).view(torch.bfloat16).float()
        elif e["dtype"] == "F16":
            t = torch.from_numpy(np.frombuffer(raw, dtype="<f2").copy()).float()
        else:
            t = torch.from_numpy(np.frombuffer(raw, dtype="<f4").copy())
        out[name] = t.reshape(e["shape"])
    return out


CFG_KEYS = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
            "intermediate_size", "max_position_embeddings", "rope_theta", "rms_norm_eps",
            "tie_word_embeddings", "head_dim"]


def load_weights(model, folder):
    """A saved folder's model.safetensors into model (tied: lm_head is the embedding)."""
    sd = load_safetensors(os.path.join(folder, "model.safetensors"))
    if model.c.tie_word_embeddings:
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    model.load_state_dict(sd)


def load_folder(folder, device="cpu"):
    """A saved folder (config.json, model.safetensors) as a float32 model in eval mode."""
    with open(os.path.join(folder, "config.json")) as f:
        cj = json.load(f)
    m = Llama(Cfg(**{k: cj[k] for k in CFG_KEYS if k in cj}))
    load_weights(m, folder)
    return m.to(device).float().eval()


def state_tensors(model):
    """The HF tensor names and tensors to save (lm_head.weight left out when tied)."""
    sd = model.state_dict()
    if model.c.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    return sd


def write_folder(out, model, tokenizer_obj, tok_config, gen_config, dtype=torch.bfloat16):
    """Writes a Hugging Face model folder. tokenizer_obj is the tokenizer.json object
    (or a path to copy), tok_config the tokenizer_config.json object."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        cj = model.c.config_json()
        if dtype == torch.float32:
            cj["torch_dtype"] = cj["dtype"] = "float32"
        json.dump(cj, f, indent=2)
        f.write("\n")
    save_safetensors(os.path.join(out, "model.safetensors"), state_tensors(model), dtype)
    tpath = os.path.join(out, "tokenizer.json")
    if isinstance(tokenizer_obj, str):
        if os.path.abspath(tokenizer_obj) == os.path.abspath(tpath):
            pass  # already in place
        else:
            with open(tokenizer_obj, encoding="utf-8") as src, open(tpath, "w", encoding="utf-8") as dst:
                dst.write(src.read())
    else:
        with open(tpath, "w", encoding="utf-8") as f:
            json.dump(tokenizer_obj, f, ensure_ascii=False, indent=1)
            f.write("\n")
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(tok_config, f, indent=2, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump(gen_config, f, indent=2)
        f.write("\n")


def tokenizer_config(specials, eos, pad, bos=None, chat_template=None, max_len=512):
    """tokenizer_config.json for a tokenizer.json-only (fast) tokenizer."""
    tc = {
        "add_bos_token": False,
        "add_eos_token": False,
        "added_tokens_decoder": {
            str(i): {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                     "single_word": False, "special": True} for i, s in enumerate(specials)
        },
        "bos_token": bos,
        "eos_token": eos,
        "pad_token": pad,
        "unk_token": None,
        "clean_up_tokenization_spaces": False,
        "model_max_length": max_len,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    if chat_template:
        tc["chat_template"] = chat_template
    return tc
