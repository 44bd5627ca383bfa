#!/usr/bin/env python3
"""bench_hf.py - the shapes of `attnscope bench --synthetic NAME --dtype bf16`
through HF transformers on the same GPU: a random-weight LlamaForCausalLM
(bf16, attention "eager", no torch.compile), a P-token prefill and N greedy
decode steps with the KV cache, after one warm-up of each. One line per model
starting with "hf"; a failure is printed and the next model still runs.

    python3 tools/bench_hf.py [--prompt-len 512] [--gen 32] [--models tinyllama-1.1b,llama-3.2-1b]
                              [--compile]

--compile: a static KV cache (transformers' StaticCache) and a greedy loop
written here, each decode step through the forward pass compiled by
torch.compile (mode "reduce-overhead": CUDA graphs); generate() with a
compiled forward failed inside transformers ("CUDAGraphs output overwritten").
--graph: the same loop, each decode step one CUDA graph captured by hand around
the eager forward. Both: the prefill runs eagerly; timed after a warm-up pass.
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


def static_cache(torch, m, max_len):
    """transformers' StaticCache for one sequence of max_len positions (its
    constructor's signature has changed across versions)."""
    from transformers import StaticCache
    tries = [dict(config=m.config, max_cache_len=max_len),
             dict(config=m.config, max_batch_size=1, max_cache_len=max_len, device="cuda", dtype=torch.bfloat16),
             dict(config=m.config, batch_size=1, max_cache_len=max_len, device="cuda", dtype=torch.bfloat16)]
    err = None
    for kw in tries:
        try:
            return StaticCache(**kw)
        except Exception as e:  # noqa: BLE001  (another signature)
            err = e
    raise RuntimeError("StaticCache failed: %r" % err)


def run_static(torch, m, P, N, vocab, how):
    """A static KV cache and a hand-written greedy loop (not generate()): the
    prefill runs eagerly; each decode step is either the forward pass compiled
    by torch.compile (how="compile": mode "reduce-overhead", i.e. CUDA graphs)
    or one CUDA graph captured by hand around the eager forward (how="graph").
    Timed after a warm-up pass (which compiles or captures)."""
    g = torch.Generator(device="cpu").manual_seed(1)
    ids = torch.randint(0, vocab, (1, P), generator=g).to("cuda")
    cache = static_cache(torch, m, P + N + 8)
    tok = torch.zeros((1, 1), dtype=torch.long, device="cuda")
    cpos = torch.zeros((1,), dtype=torch.long, device="cuda")
    if how == "compile":
        fwd = torch.compile(m.forward, mode="reduce-overhead", fullgraph=True)

        def step():
            torch.compiler.cudagraph_mark_step_begin()
            return fwd(input_ids=tok, past_key_values=cache, cache_position=cpos, use_cache=True).logits[:, -1]
    else:
        graph, out = None, None

        def step():
            nonlocal graph, out
            if graph is None:   # warm up on a side stream, then capture
                s = torch.cuda.Stream()
                s.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(s):
                    for _ in range(2):
                        m(input_ids=tok, past_key_values=cache, cache_position=cpos, use_cache=True)
                torch.cuda.current_stream().wait_stream(s)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    out = m(input_ids=tok, past_key_values=cache, cache_position=cpos, use_cache=True).logits[:, -1]
            graph.replay()
            return out

    def once():
        cache.reset()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        o = m(input_ids=ids, past_key_values=cache, cache_position=torch.arange(P, device="cuda"), use_cache=True)
        tok.copy_(o.logits[:, -1].argmax(-1, keepdim=True))
        torch.cuda.synchronize()
        t1 = time.perf_counter()
        for i in range(N):
            cpos.fill_(P + i)
            tok.copy_(step().argmax(-1, keepdim=True))
        torch.cuda.synchronize()
        return t1 - t0, time.perf_counter() - t1
    with torch.inference_mode():
        once()                  # warm-up: compile or capture
        return once()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompt-len", type=int, default=512)
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("--models", default="tinyllama-1.1b,llama-3.2-1b")
    ap.add_argument("--attn", default="eager")
    ap.add_argument("--compile", action="store_true", help="static cache, decode step through torch.compile")
    ap.add_argument("--graph", action="store_true", help="static cache, decode step as a hand-captured CUDA graph")
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
            how = "compile" if a.compile else "graph" if a.graph else None
            if how:
                pre, dec = run_static(torch, m, a.prompt_len, a.gen, SHAPES[name]["vocab_size"], how)
                used += "+static+" + how
            else:
                pre, dec = run(torch, m, a.prompt_len, a.gen, SHAPES[name]["vocab_size"])
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
