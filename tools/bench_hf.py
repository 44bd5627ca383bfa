#!/usr/bin/env python3
"""bench_hf.py - the shapes of `attnscope bench --synthetic NAME --dtype bf16`
through HF transformers on the same GPU: a random-weight LlamaForCausalLM
(bf16, attention "eager", no torch.compile), a P-token prefill and N greedy
decode steps with the KV cache, after one warm-up of each. One line per model
starting with "hf"; a failure is printed and the next model still runs.

    python3 tools/bench_hf.py [--prompt-len 512] [--gen 32] [--models tinyllama-1.1b,llama-3.2-1b]
                              [--compile]

--compile: generate() with a static KV cache and the forward pass compiled by
torch.compile (mode "reduce-overhead": CUDA graphs), the fast path
transformers documents; prefill = a 1-token generate, decode = the extra time
of N more tokens, after two warm-up calls (the first compiles).
"""
import argparse
import sys
import time
import traceback

# The same shapes as engine/model_synth.c's entries.
SHAPES = {
    "tinyllama-1.1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                           num_attention_heads=32, num_key_value_heads=4, head_dim=64,
                           vocab_size=32000, rope_theta=10000.0, rms_norm_eps=1e-5,
                           max_position_embeddings=2048, tie_word_embeddings=False),
    "llama-3.2-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                         num_attention_heads=32, num_key_value_heads=8, head_dim=64,
                         vocab_size=128256, rope_theta=500000.0, rms_norm_eps=1e-5,
                         max_position_embeddings=131072, tie_word_embeddings=True),
}


def build(torch, name, attn):
    from transformers import LlamaConfig, AutoModelForCausalLM
    cfg = LlamaConfig(**SHAPES[name])
    tries = [dict(attn_implementation=attn, dtype=torch.bfloat16),
             dict(attn_implementation=attn, torch_dtype=torch.bfloat16),
             dict(attn_implementation=attn), dict()]
    err = None
    with torch.device("cuda"):
        for kw in tries:
            try:
                m = AutoModelForCausalLM.from_config(cfg, **kw)
                break
            except Exception as e:  # an older or newer signature: try the next
                err = e
        else:
            raise RuntimeError("from_config failed: %r" % err)
    m = m.to(device="cuda", dtype=torch.bfloat16).eval()
    used = getattr(m.config, "_attn_implementation", "?")
    return m, used


def run(torch, m, P, N, vocab):
    g = torch.Generator(device="cpu").manual_seed(1)
    ids = torch.randint(0, vocab, (1, P), generator=g).to("cuda")
    with torch.inference_mode():
        def once():
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = m(input_ids=ids, use_cache=True)
            torch.cuda.synchronize()
            t1 = time.perf_counter()
            past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
            for _ in range(N):
                out = m(input_ids=nxt, past_key_values=past, use_cache=True)
                past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
            torch.cuda.synchronize()
            return t1 - t0, time.perf_counter() - t1
        once()                  # warm-up
        return once()


def run_compiled(torch, m, P, N, vocab):
    g = torch.Generator(device="cpu").manual_seed(1)
    ids = torch.randint(0, vocab, (1, P), generator=g).to("cuda")
    m.generation_config.cache_implementation = "static"
    m.forward = torch.compile(m.forward, mode="reduce-overhead", fullgraph=True)
    kw = dict(do_sample=False, pad_token_id=0, eos_token_id=None)

    def gen(n):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        m.generate(ids, max_new_tokens=n, min_new_tokens=n, **kw)
        torch.cuda.synchronize()
        return time.perf_counter() - t0
    with torch.inference_mode():
        gen(N + 1)
        gen(N + 1)              # warm-up: compile, capture
        one, full = gen(1), gen(N + 1)
    return one, (full - one)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompt-len", type=int, default=512)
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("--models", default="tinyllama-1.1b,llama-3.2-1b")
    ap.add_argument("--attn", default="eager")
    ap.add_argument("--compile", action="store_true")
    a = ap.parse_args()
    try:
        import torch
        import transformers
        print("torch %s, transformers %s, %s" % (torch.__version__, transformers.__version__,
                                                torch.cuda.get_device_name(0)), flush=True)
    except Exception as e:
        print("hf: cannot start: %r" % e)
        return 1
    bad = 0
    for name in a.models.split(","):
        try:
            t0 = time.perf_counter()
            m, used = build(torch, name, a.attn)
            wbytes = sum(p.numel() * p.element_size() for p in m.parameters())
            fn = run_compiled if a.compile else run
            pre, dec = fn(torch, m, a.prompt_len, a.gen, SHAPES[name]["vocab_size"])
            if a.compile:
                used += "+static+compile"
            print("hf %s bf16 attn=%s: prefill %d %.1f tok/s (%.1f ms), decode %d %.1f tok/s (%.2f ms/tok); "
                  "params %.0f MB; setup %.1f s" % (name, used, a.prompt_len, a.prompt_len / pre, pre * 1e3,
                                                    a.gen, a.gen / dec, dec * 1e3 / a.gen, wbytes / 1e6,
                                                    time.perf_counter() - t0), flush=True)
            del m
            torch.cuda.empty_cache()
        except Exception:
            bad += 1
            print("hf %s: FAILED" % name, flush=True)
            traceback.print_exc()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
