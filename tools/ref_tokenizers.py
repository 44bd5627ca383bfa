#!/usr/bin/env python3
"""ref_tokenizers.py - expected tokenizer outputs from Hugging Face `tokenizers`
(and, for comparison, `transformers.AutoTokenizer`) for every string of the
corpus and one long generated document, written as plain JSON fixtures that
tests/unit/test_tokenizer.c compares attnscope's tokenizer against.

usage: python3 tools/ref_tokenizers.py --tokenizers .cache/tokenizers \
           --corpus tests/data/tokenizer_corpus.json --out tests/fixtures/tokenizer

Writes OUT/NAME.json for each tokenizer folder NAME (llama2, llama3, qwen3):
  {"name", "tokenizers_version", "transformers_version", "corpus_sha256",
   "items": [{"i", "text", "ids", "ids_special", "decode", "decode_skip",
              "stream"}],          # see below; an item that failed has "error"
   "long": {"ids", "decode_equal", ["decode"]},
   "transformers": {"loaded", "error"?, "diffs": [{"i", "ids", "ids_special"}]},
   "errors": [...]}
  ids          Tokenizer.encode(text, add_special_tokens=False).ids
  ids_special  Tokenizer.encode(text, add_special_tokens=True).ids
  decode       Tokenizer.decode(ids, skip_special_tokens=False)
  decode_skip  Tokenizer.decode(ids_special, skip_special_tokens=True)
  stream       DecodeStream(skip_special_tokens=False).step(tok, id) for each id
               of ids_special: a string, or null where HF returns None
               (absent when DecodeStream is not available)
and OUT/long_document.txt, the long document (about 100 KB, from a fixed seed),
and OUT/variants.json: the same fields (every other corpus string) for
tokenizers made from the real files by swapping in the components the real
files do not use (NFKC/NFD/NFKD, Lowercase, Strip, Replace regex, Digits,
WhitespaceSplit, Split behaviours and invert, Metaspace, Strip decoder,
TemplateProcessing with EOS, added-token lstrip/rstrip/single_word/normalized):
  {"variants": [{"name", "base", "patch", "model_patch", "added_patch",
                 "items": [...], "errors": [...]}]}
The test rebuilds each variant by applying the patches to the base file.
Every item is computed under its own try/except; the last line printed is a
summary. Runs offline (no network needed).
"""
import argparse
import hashlib
import json
import os
import random
import sys
import time
import traceback

NAMES = ("llama2", "llama3", "qwen3")
LONG_SEED = 20240601
LONG_BYTES = 100 * 1024


def reraise_fatal(e):
    """Rust panics inside tokenizers arrive as pyo3's PanicException, a
    BaseException: those are per-item failures; Ctrl-C and exit are not."""
    if isinstance(e, (KeyboardInterrupt, SystemExit)):
        raise e


def log(msg):
    print(f"[ref_tokenizers] {msg}", flush=True)


def make_long_document(corpus, seed=LONG_SEED, target=LONG_BYTES):
    """A deterministic ~100 KB document: prose paragraphs, code, numbers,
    corpus strings (every script and emoji in it), special-token strings, long
    runs of one character and of whitespace (stress for BPE and the regexes)."""
    rnd = random.Random(seed)
    words = ("the of and to in is you that it he was for on are as with his they at be this have from "
             "or one had by word but not what all were we when your can said there use an each which she "
             "do how their if will up other about out many then them these so some her would make like him "
             "into time has look two more write go see number no way could people my than first water been "
             "call who oil its now find long down day did get come made may part attention model token cache "
             "layer head query key value softmax matrix vector").split()
    nonempty = [s for s in corpus if s.strip()]
    parts = []
    size = 0
    k = 0
    while size < target:
        k += 1
        kind = rnd.random()
        if kind < 0.55:
            sent = []
            for _ in range(rnd.randint(3, 12)):
                w = [rnd.choice(words) for _ in range(rnd.randint(4, 18))]
                w[0] = w[0].capitalize()
                if rnd.random() < 0.2:
                    w.insert(rnd.randrange(len(w)), str(rnd.randint(0, 10 ** rnd.randint(1, 12))))
                if rnd.random() < 0.15:
                    w.insert(rnd.randrange(len(w)), rnd.choice(nonempty))
                sent.append(" ".join(w) + rnd.choice([".", ".", ".", "!", "?", ";", ":"]))
            p = " ".join(sent)
        elif kind < 0.75:
            p = "\n".join(rnd.choice(nonempty) for _ in range(rnd.randint(2, 8)))
        elif kind < 0.85:
            p = ("def f%d(x, y):\n    if x > y:\n\treturn x * %d\n    return [i ** 2 for i in range(y)]\n"
                 % (k, rnd.randint(0, 999)))
        elif kind < 0.90:
            p = rnd.choice(["a", "z", "-", "=", "你", "😀", "9", "ab", " ", "\t", "\n"]) * rnd.randint(50, 3000)
        elif kind < 0.95:
            p = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyzéüß") for _ in range(rnd.randint(200, 2500)))
        else:
            p = rnd.choice(["<|im_start|>user\n", "<|im_end|>", "<s>", "</s>", "<|eot_id|>", "<|endoftext|>",
                            "<|begin_of_text|>"]) + rnd.choice(nonempty)
        sep = rnd.choice(["\n\n", "\n", " ", "\r\n", "  \n", "\n\n\n"])
        parts.append(p + sep)
        size += len((p + sep).encode("utf-8"))
    return "".join(parts)


META = "\u2581"
BL = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
VARIANTS = [
    {"name": "qwen3-nfkc-lower-digits-prefix", "base": "qwen3",
     "patch": {"normalizer": {"type": "Sequence", "normalizers": [
                   {"type": "NFKC"}, {"type": "Lowercase"}, {"type": "Strip", "strip_left": True, "strip_right": False}]},
               "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                   {"type": "Digits", "individual_digits": True},
                   {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": False},
                   {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}]}},
     "added_patch": {"<|im_end|>": {"lstrip": True, "rstrip": True}, "<|im_start|>": {"single_word": True},
                     "<|endoftext|>": {"normalized": True, "special": False}}},
    {"name": "llama2-metaspace-always", "base": "llama2",
     "patch": {"normalizer": None,
               "pre_tokenizer": {"type": "Metaspace", "replacement": META, "prepend_scheme": "always", "split": True},
               "decoder": {"type": "Sequence", "decoders": [
                   {"type": "Metaspace", "replacement": META, "prepend_scheme": "always", "split": True},
                   {"type": "ByteFallback"}, {"type": "Fuse"}]}}},
    {"name": "llama2-metaspace-first-nosplit-eos", "base": "llama2",
     "patch": {"normalizer": None,
               "pre_tokenizer": {"type": "Metaspace", "replacement": META, "prepend_scheme": "first", "split": False},
               "decoder": {"type": "Sequence", "decoders": [
                   {"type": "Metaspace", "replacement": META, "prepend_scheme": "first", "split": False},
                   {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 2, "stop": 0}]},
               "post_processor": {"type": "TemplateProcessing",
                   "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                              {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                   "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                   "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]},
                                      "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}}}},
    {"name": "llama3-nfd-replace-invert-contiguous", "base": "llama3",
     "patch": {"normalizer": {"type": "Sequence", "normalizers": [
                   {"type": "NFD"}, {"type": "Replace", "pattern": {"Regex": "[0-9]{2}"}, "content": "#"}]},
               "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                   {"type": "Split", "pattern": {"Regex": "\\p{L}+"}, "behavior": "Contiguous", "invert": True},
                   {"type": "Split", "pattern": {"Regex": "\\s"}, "behavior": "MergedWithNext", "invert": False},
                   {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}},
     "model_patch": {"ignore_merges": False}},
    {"name": "llama3-mergedprev-metaspace-bytelevel-regex-bos", "base": "llama3",
     "patch": {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                   {"type": "Split", "pattern": {"Regex": "[,.!?]"}, "behavior": "MergedWithPrevious", "invert": False},
                   {"type": "Metaspace", "replacement": "_", "prepend_scheme": "never", "split": True},
                   {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}]},
               "decoder": {"type": "Sequence", "decoders": [
                   BL, {"type": "Replace", "pattern": {"String": "_"}, "content": " "}]},
               "post_processor": {"type": "Sequence", "processors": [
                   BL, {"type": "TemplateProcessing",
                        "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                                   {"Sequence": {"id": "A", "type_id": 0}}],
                        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                        "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [128000],
                                                                 "tokens": ["<|begin_of_text|>"]}}}]}}},
    {"name": "qwen3-wssplit-digits-removed-nfkd-prepend", "base": "qwen3",
     "patch": {"normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKD"}, {"type": "Prepend", "prepend": "\u0120"}]},
               "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                   {"type": "WhitespaceSplit"}, {"type": "Digits", "individual_digits": False},
                   {"type": "Split", "pattern": {"Regex": "[aeiou]"}, "behavior": "Removed", "invert": True},
                   {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}}},
]


def apply_variant(base, v):
    import copy
    t = copy.deepcopy(base)
    for k, val in v.get("patch", {}).items():
        t[k] = val
    for k, val in v.get("model_patch", {}).items():
        t["model"][k] = val
    for a in t.get("added_tokens", []):
        a.update(v.get("added_patch", {}).get(a["content"], {}))
    return t


def run_variants(tdir_root, corpus, out_dir):
    """Fixtures for VARIANTS; each variant in its own try/except."""
    import tempfile
    import tokenizers
    from tokenizers import Tokenizer
    try:
        from tokenizers.decoders import DecodeStream
    except Exception:
        DecodeStream = None
    res = {"tokenizers_version": tokenizers.__version__, "variants": []}
    bases = {}
    for v in VARIANTS:
        ent = {k: v.get(k, {}) for k in ("name", "base", "patch", "model_patch", "added_patch")}
        ent["items"], ent["errors"] = [], []
        try:
            if v["base"] not in bases:
                with open(os.path.join(tdir_root, v["base"], "tokenizer.json"), encoding="utf-8") as f:
                    bases[v["base"]] = json.load(f)
            with tempfile.TemporaryDirectory() as td:
                path = os.path.join(td, "tokenizer.json")
                with open(path, "w", encoding="utf-8") as f:
                    json.dump(apply_variant(bases[v["base"]], v), f, ensure_ascii=False)
                tok = Tokenizer.from_file(path)
            for i, text in enumerate(corpus):
                if i % 2:
                    continue
                item = {"i": i, "text": text}
                try:
                    ids = tok.encode(text, add_special_tokens=False).ids
                    ids_sp = tok.encode(text, add_special_tokens=True).ids
                    item.update(ids=ids, ids_special=ids_sp, decode=tok.decode(ids, skip_special_tokens=False),
                                decode_skip=tok.decode(ids_sp, skip_special_tokens=True))
                    if DecodeStream is not None:
                        try:
                            item["stream"] = stream_steps(DecodeStream, tok, ids_sp)
                        except BaseException as e:
                            reraise_fatal(e)
                            item["stream_error"] = f"{type(e).__name__}: {e}"
                except BaseException as e:
                    reraise_fatal(e)
                    item["error"] = f"{type(e).__name__}: {e}"
                    ent["errors"].append(f"item {i}: {item['error']}")
                ent["items"].append(item)
            log(f"variant {v['name']}: {len(ent['items'])} strings, {len(ent['errors'])} failed")
        except BaseException as e:
            reraise_fatal(e)
            ent["errors"].append(f"variant: {type(e).__name__}: {e}")
            log(f"variant {v['name']} FAILED: {type(e).__name__}: {e}")
        res["variants"].append(ent)
    out = os.path.join(out_dir, "variants.json")
    with open(out + ".tmp", "w", encoding="utf-8") as f:
        json.dump(res, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    os.replace(out + ".tmp", out)
    log(f"variants: wrote {out} ({os.path.getsize(out)} bytes)")
    return sum(1 for v in res["variants"] if any(e.startswith("variant:") for e in v["errors"]))


def stream_steps(DecodeStream, tok, ids):
    ds = DecodeStream(skip_special_tokens=False)
    out = []
    for i in ids:
        r = ds.step(tok, i)
        out.append(r)
    return out


def run_one(name, tdir, corpus, long_doc, out_dir, args):
    import tokenizers
    from tokenizers import Tokenizer
    try:
        from tokenizers.decoders import DecodeStream
    except Exception:  # older tokenizers
        DecodeStream = None
    res = {"name": name, "tokenizers_version": tokenizers.__version__, "transformers_version": None,
           "corpus_sha256": hashlib.sha256(json.dumps(corpus, ensure_ascii=False).encode("utf-8")).hexdigest(),
           "items": [], "errors": []}
    path = os.path.join(tdir, "tokenizer.json")
    tok = Tokenizer.from_file(path)
    n_err = 0
    n_stream_err = 0
    for i, text in enumerate(corpus):
        item = {"i": i, "text": text}
        try:
            ids = tok.encode(text, add_special_tokens=False).ids
            ids_sp = tok.encode(text, add_special_tokens=True).ids
            item["ids"] = ids
            item["ids_special"] = ids_sp
            item["decode"] = tok.decode(ids, skip_special_tokens=False)
            item["decode_skip"] = tok.decode(ids_sp, skip_special_tokens=True)
        except BaseException as e:  # keep going: one failure must not lose the rest
            reraise_fatal(e)
            item["error"] = f"{type(e).__name__}: {e}"
            res["errors"].append(f"item {i}: {item['error']}")
            n_err += 1
        if DecodeStream is not None and "ids_special" in item:
            try:
                item["stream"] = stream_steps(DecodeStream, tok, item["ids_special"])
            except BaseException as e:
                reraise_fatal(e)
                item["stream_error"] = f"{type(e).__name__}: {e}"
                n_stream_err += 1
        res["items"].append(item)
    log(f"{name}: {len(corpus)} strings, {n_err} failed, stream "
        f"{'unavailable' if DecodeStream is None else f'{n_stream_err} failed'}")

    # the long document: ids for every tokenizer (no special tokens), decode checked
    try:
        t0 = time.perf_counter()
        ids = tok.encode(long_doc, add_special_tokens=False).ids
        dt = time.perf_counter() - t0
        dec = tok.decode(ids, skip_special_tokens=False)
        res["long"] = {"ids": ids, "decode_equal": dec == long_doc}
        if dec != long_doc:
            res["long"]["decode"] = dec
        log(f"{name}: long document {len(long_doc.encode('utf-8'))} bytes -> {len(ids)} ids "
            f"in {dt * 1000:.1f} ms, decode_equal={dec == long_doc}")
    except BaseException as e:
        reraise_fatal(e)
        res["errors"].append(f"long: {type(e).__name__}: {e}")
        log(f"{name}: long document FAILED: {e}")

    # transformers' AutoTokenizer on the same folder, recorded where it differs
    tf = {"loaded": False, "diffs": []}
    if not args.no_transformers:
        try:
            import transformers
            from transformers import AutoTokenizer
            res["transformers_version"] = transformers.__version__
            at = AutoTokenizer.from_pretrained(tdir, local_files_only=True)
            tf["loaded"] = True
            tf["class"] = type(at).__name__
            for item in res["items"]:
                if "ids" not in item:
                    continue
                try:
                    a = at(item["text"], add_special_tokens=False)["input_ids"]
                    b = at(item["text"], add_special_tokens=True)["input_ids"]
                    if a != item["ids"] or b != item["ids_special"]:
                        tf["diffs"].append({"i": item["i"], "ids": a, "ids_special": b})
                except BaseException as e:
                    reraise_fatal(e)
                    tf["diffs"].append({"i": item["i"], "error": f"{type(e).__name__}: {e}"})
            log(f"{name}: transformers {transformers.__version__} {tf['class']}: "
                f"{len(tf['diffs'])} strings differ from tokenizers")
        except BaseException as e:
            reraise_fatal(e)
            tf["error"] = f"{type(e).__name__}: {e}"
            log(f"{name}: transformers unavailable or failed: {tf['error']}")
    res["transformers"] = tf

    out = os.path.join(out_dir, f"{name}.json")
    with open(out + ".tmp", "w", encoding="utf-8") as f:
        json.dump(res, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    os.replace(out + ".tmp", out)
    log(f"{name}: wrote {out} ({os.path.getsize(out)} bytes)")
    return n_err


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizers", default=".cache/tokenizers", help="folder with llama2/ llama3/ qwen3/")
    ap.add_argument("--corpus", default="tests/data/tokenizer_corpus.json")
    ap.add_argument("--out", default="tests/fixtures/tokenizer")
    ap.add_argument("--names", default=",".join(NAMES))
    ap.add_argument("--no-transformers", action="store_true")
    ap.add_argument("--no-variants", action="store_true")
    args = ap.parse_args()

    with open(args.corpus, encoding="utf-8") as f:
        corpus = json.load(f)
    assert isinstance(corpus, list) and all(isinstance(s, str) for s in corpus), "corpus: a JSON list of strings"
    os.makedirs(args.out, exist_ok=True)
    long_doc = make_long_document(corpus)
    with open(os.path.join(args.out, "long_document.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(long_doc)
    log(f"corpus {len(corpus)} strings; long document {len(long_doc.encode('utf-8'))} bytes (seed {LONG_SEED})")
    try:
        import tokenizers
        log(f"tokenizers {tokenizers.__version__}")
    except BaseException as e:
        reraise_fatal(e)
        log(f"FATAL: cannot import tokenizers: {e}")
        print("SUMMARY ref_tokenizers: FAILED (no tokenizers module)")
        return 1

    done, failed = [], []
    for name in args.names.split(","):
        tdir = os.path.join(args.tokenizers, name)
        try:
            n_err = run_one(name, tdir, corpus, long_doc, args.out, args)
            done.append(f"{name}({n_err} item errors)" if n_err else name)
        except BaseException as e:
            reraise_fatal(e)
            traceback.print_exc()
            failed.append(f"{name}: {type(e).__name__}: {e}")
    if not args.no_variants:
        try:
            n_bad = run_variants(args.tokenizers, corpus, args.out)
            done.append(f"variants({n_bad} failed)" if n_bad else "variants")
        except BaseException as e:
            reraise_fatal(e)
            traceback.print_exc()
            failed.append(f"variants: {type(e).__name__}: {e}")
    total = sum(os.path.getsize(os.path.join(args.out, p)) for p in os.listdir(args.out))
    print(f"SUMMARY ref_tokenizers: ok [{', '.join(done)}] failed [{'; '.join(failed)}] "
          f"fixtures {total} bytes in {args.out}", flush=True)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
