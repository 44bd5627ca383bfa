#!/usr/bin/env python3
"""make_seeds.py - writes the seed corpora of the fuzz targets into
tests/fuzz/corpus/<target>/ from the repository's fixtures (run from the
repository root). The corpora are committed; rerun only to regenerate them."""
import json
import os
import struct
import sys

ROOT = os.getcwd()
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def st_file(tensors, meta=True, pad=True):
    """tensors: list of (name, dtype, shape); zero data."""
    size = {"F32": 4, "F16": 2, "BF16": 2}
    h, off = {}, 0
    if meta:
        h["__metadata__"] = {"format": "pt"}
    for name, dt, shape in tensors:
        n = size[dt]
        for s in shape:
            n *= s
        h[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    text = json.dumps(h, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + bytes(off)


def seeds_safetensors():
    t = "safetensors"
    put(t, "f32", b"\0" + st_file([("w", "F32", [2, 3])]))
    put(t, "mixed", b"\0" + st_file([("a", "F16", [4]), ("b", "BF16", [2, 2]), ("c", "F32", [])]))
    put(t, "empty-tensor", b"\0" + st_file([("e", "F32", [0, 4]), ("f", "F32", [1])], meta=False))
    put(t, "no-tensors", b"\0" + st_file([]))
    put(t, "unpadded", b"\0" + st_file([("w", "BF16", [3])], pad=False))
    put(t, "4d", b"\0" + st_file([("w", "F16", [1, 2, 1, 2])]))
    # tiny-chat's real header with the first tensor's data only
    with open(os.path.join(ROOT, "tests/fixtures/tiny-chat/model.safetensors"), "rb") as f:
        raw = f.read()
    hl = struct.unpack("<Q", raw[:8])[0]
    put(t, "tiny-chat-header", b"\0" + raw[: 8 + hl + 64])
    idx = {"metadata": {"total_size": 32},
           "weight_map": {"x": "a.safetensors", "y": "b.safetensors"}}
    put(t, "index", b"\1" + json.dumps(idx).encode())
    put(t, "index-one-shard", b"\1" + json.dumps({"weight_map": {"x": "a.safetensors"}}).encode())
    put(t, "index-missing", b"\1" + json.dumps({"weight_map": {"z": "a.safetensors"}}).encode())


def seeds_config():
    t = "config"
    with open(os.path.join(ROOT, "tests/fixtures/tiny-chat/config.json")) as f:
        put(t, "tiny-chat", f.read())
    base = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 300,
            "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "bos_token_id": 1,
            "eos_token_id": [2, 3]}
    put(t, "llama3-rope", json.dumps(dict(base, model_type="llama", rope_theta=500000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})))
    put(t, "linear-rope", json.dumps(dict(base, model_type="llama",
        rope_scaling={"type": "linear", "factor": 2.0}, torch_dtype="float16")))
    put(t, "qwen2", json.dumps(dict(base, model_type="qwen2", tie_word_embeddings=True)))
    put(t, "qwen3", json.dumps(dict(base, model_type="qwen3", head_dim=32, torch_dtype="bfloat16")))
    put(t, "mistral", json.dumps(dict(base, model_type="mistral", sliding_window=None)))
    put(t, "rope-parameters", json.dumps(dict(base, model_type="llama",
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0})))
    with open(os.path.join(ROOT, "tests/fixtures/tiny-chat/generation_config.json"), "rb") as f:
        gen = f.read()
    put(t, "tiny-chat-with-generation", json.dumps(dict(base, model_type="llama")).encode() + b"\0" + gen)
    put(t, "generation-eos-list", json.dumps(dict(base, model_type="qwen2")).encode() + b"\0" +
        json.dumps({"bos_token_id": 1, "eos_token_id": [2, 7, 9], "do_sample": True}).encode())


def seeds_tokenizer_load():
    t = "tokenizer_load"
    d = os.path.join(ROOT, "tests/fixtures/tiny-chat")
    with open(os.path.join(d, "tokenizer.json"), "rb") as f:
        tj = f.read()
    with open(os.path.join(d, "tokenizer_config.json"), "rb") as f:
        tc = f.read()
    put(t, "tiny-chat", tj)
    put(t, "tiny-chat-with-config", tj + b"\0" + tc)
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "\u2581": 3, "a": 4, "b": 5, "\u2581a": 6, "ab": 7}
    for i in range(256):
        vocab["<0x%02X>" % i] = 8 + i
    sp = {"version": "1.0",
          "added_tokens": [{"id": 0, "content": "<unk>", "special": True, "single_word": False,
                            "lstrip": False, "rstrip": False, "normalized": False},
                           {"id": 1, "content": "<s>", "special": True, "single_word": False,
                            "lstrip": False, "rstrip": False, "normalized": False}],
          "normalizer": {"type": "Sequence", "normalizers": [
              {"type": "Prepend", "prepend": "\u2581"},
              {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
          "pre_tokenizer": None,
          "post_processor": {"type": "TemplateProcessing",
                             "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                        {"Sequence": {"id": "A", "type_id": 0}}],
                             "pair": [{"Sequence": {"id": "A", "type_id": 0}}],
                             "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
          "decoder": {"type": "Sequence", "decoders": [
              {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
              {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ",
                                                          "start": 1, "stop": 0}]},
          "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                    "continuing_subword_prefix": None, "end_of_word_suffix": None,
                    "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                    "vocab": vocab, "merges": ["\u2581 a", "a b"]}}
    put(t, "sentencepiece-bpe", json.dumps(sp, ensure_ascii=False))
    put(t, "sentencepiece-bpe-with-config", json.dumps(sp, ensure_ascii=False).encode() + b"\0" +
        json.dumps({"bos_token": "<s>", "eos_token": {"content": "</s>"}, "add_bos_token": True}).encode())


def seeds_tokenize():
    t = "tokenize"
    with open(os.path.join(ROOT, "tests/data/tokenizer_corpus.json"), encoding="utf-8") as f:
        corpus = json.load(f)
    # every 4th string, for each of the four tokenizers in turn, with and without specials
    for i, s in enumerate(corpus[::4]):
        sel = (i % 4) | ((i // 4) % 2) * 4
        put(t, "c%03d" % i, bytes([sel]) + s.encode("utf-8"))
    put(t, "invalid-utf8", b"\0abc\xff\xfe")
    put(t, "specials", b"\0<|begin_of_text|>hi<|eot_id|><s></s><|im_end|>")
    # a run of U+FFFD: the stream decoder holds every id back while the text ends in it
    put(t, "fffd-run", bytes([3]) + ("\ufffd" * 300 + "x").encode("utf-8"))
    put(t, "fffd-run-sp", bytes([1]) + ("a\ufffd" * 150 + "b").encode("utf-8"))


def seeds_chat():
    t = "chat"
    with open(os.path.join(ROOT, "tests/fixtures/templates/cases.json"), encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    role = {"system": 0, "user": 1, "assistant": 2}
    for ci, c in enumerate(cases):
        body = b"\0".join(bytes([role.get(m["role"], 3)]) + m["content"].encode("utf-8")
                          for m in c["messages"])
        for tpl in range(ci % 3, 13, 3):
            put(t, "%s-%02d" % (c["name"], tpl), bytes([tpl, ci & 3]) + body)


def seeds_slash():
    t = "slash"
    lines = ["/help", "/help temp", "/help /nope", "/cache", "/cache off", "/cache on", "/cache maybe",
             "/temp", "/temp 0.5", "/temp -1", "/temp 1e309", "/temp nan", "/top-k 40", "/top-k -3",
             "/top-p 0.9", "/top-p 1.5", "/top-p 0", "/min-p 0.05", "/repeat-penalty 1.1",
             "/repeat-penalty 0", "/seed 18446744073709551615", "/seed 18446744073709551616",
             "/seed x", "/regen", "/reset", "/system You are terse.", "/system", "/device",
             "/device cuda", "/device tpu", "/step on", "/step", "/layer 1", "/layer 99", "/head avg",
             "/head 3", "/compare", "/quit", "/", "//", "  /temp   0.7  \n", "/unknowncommand",
             "temp 0.5", "top-p 0.95", "seed 7", "min-p 2"]
    for i, l in enumerate(lines):
        put(t, "s%02d" % i, l)


if __name__ == "__main__":
    for fn in (seeds_safetensors, seeds_config, seeds_tokenizer_load, seeds_tokenize,
               seeds_chat, seeds_slash):
        fn()
    total = 0
    for dp, _, fs in os.walk(OUT):
        for f in fs:
            total += os.path.getsize(os.path.join(dp, f))
    print("make_seeds: %d bytes of seeds under %s" % (total, OUT), file=sys.stderr)
