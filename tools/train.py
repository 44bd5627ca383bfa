"""train.py - trains the bundled LLaMA-architecture models and writes them as Hugging
Face folders (config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
generation_config.json), then evaluates them and checks them against transformers.

    python3 tools/train.py chat       --out DIR --minutes 4.0 [--data .carry/data]
    python3 tools/train.py var_rename --out DIR --minutes 4.0
    python3 tools/train.py induction  --out DIR --minutes 1.5
    add --size tiny --device cpu for a quick CPU run (tests the whole path)

Tasks:
  chat        WordNet glosses/examples/synonyms as ChatML question-and-answer
              dialogues (+ fortunes, KJV verses); byte-level BPE trained with HF
              tokenizers (pure-Python fallback: tools/train_bpe.py); loss on the
              assistant's tokens. Held-out words measure generalisation.
  var_rename  chains like `3>k;k>b;b>x;`: at every assigned variable predict its
              digit; accuracy per hop depth; per-layer/head attention statistics.
              A share of each batch (--mix) is shorter sequences; --src-loss adds
              targets at rename sources; --eval-every N logs accuracy per depth on
              512 fixed sequences during training (the report's depth_curve).
              On the GPU machine alone: bash tools/gpu_varrename.sh OUTDIR.
  induction   random token sequences repeated; loss on the repeats; previous-token
              and induction scores per head.
The training loop runs for --minutes of wall-clock time (learning-rate schedule by
elapsed fraction), then always saves. Every check after saving is guarded, so a
failing check never loses the weights. Seeds fix data, init and order; GPU kernels
and the time budget make runs close but not bit-identical.
Exit codes: 0 ok, 1 runtime failure, 2 bad usage or missing data.
"""
import argparse
import gzip
import hashlib
import json
import math
import os
import random
import re
import sys
import time
import traceback

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_bpe  # noqa: E402
import train_llama as L  # noqa: E402


def log(*a):
    print(*a, flush=True)


# ===========================================================================
# Shapes
# ===========================================================================
SIZES = {
    # task: {size: dict(model shape, training)}
    "chat": {
        "full": dict(vocab=3072, dim=256, layers=8, heads=8, kv=2, hidden=768, ctx=512,
                     seq=512, batch=64, lr=2e-3, warmup=200),
        "tiny": dict(vocab=400, dim=64, layers=2, heads=4, kv=2, hidden=128, ctx=512,
                     seq=128, batch=16, lr=3e-3, warmup=20),
    },
    "var_rename": {
        # mix: share of each batch given to shorter sequences (2 to 5 chains, 4 to 26
        # statements): more depth-1 lookups among fewer digits, the clean signal for
        # the previous-occurrence lookup that the 0.90 plateau lacks. src: loss weight
        # at rename sources (1: every variable token is a target, as in iluvattnshun;
        # without it the H200 sweep stayed at 0.96 / 0.67, with it 0.9998: model card).
        "full": dict(dim=128, layers=8, heads=4, kv=4, hidden=512, ctx=256,
                     batch=512, lr=1.5e-3, warmup=200, mix=0.25, src=1.0),
        "tiny": dict(dim=64, layers=3, heads=4, kv=4, hidden=128, ctx=256,
                     batch=64, lr=3e-3, warmup=20, mix=0.25, src=1.0),
    },
    "induction": {
        "full": dict(dim=128, layers=2, heads=4, kv=4, hidden=512, ctx=256,
                     seq=128, batch=256, lr=1e-3, warmup=100),
        "tiny": dict(dim=64, layers=2, heads=4, kv=4, hidden=128, ctx=256,
                     seq=64, batch=32, lr=3e-3, warmup=20),
        # What a few CPU minutes train well: the 'full' run (lr 1e-3, batch 256) found a
        # diffuse local-window solution instead of the two-step circuit in 6,867 steps.
        "cpu": dict(dim=64, layers=2, heads=4, kv=4, hidden=256, ctx=256,
                    seq=96, batch=32, lr=3e-3, warmup=20),
    },
}


# ===========================================================================
# Training loop (shared)
# ===========================================================================
def train_loop(model, batch_fn, args, hp, device, curve):
    """Runs AdamW for args.minutes of wall-clock time. batch_fn(step) -> (ids, targets,
    weights) on device; loss is the weighted mean cross-entropy. Appends
    (step, seconds, loss) to curve every args.log_every steps."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    try:
        opt = torch.optim.AdamW(groups, lr=hp["lr"], betas=(0.9, 0.95), fused=(device.type == "cuda"))
    except TypeError:
        opt = torch.optim.AdamW(groups, lr=hp["lr"], betas=(0.9, 0.95))
    budget = args.minutes * 60.0
    use_amp = device.type == "cuda"
    t0 = time.time()
    step = 0
    tokens = 0
    last_t, last_tok = t0, 0
    model.train()
    while True:
        el = time.time() - t0
        if el >= budget or (args.max_steps and step >= args.max_steps):
            break
        frac = el / budget
        if step < hp["warmup"]:
            lr = hp["lr"] * (step + 1) / hp["warmup"]
        else:
            lr = hp["lr"] * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))
        for g in opt.param_groups:
            g["lr"] = lr
        try:
            ids, tgt, w = batch_fn(step)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
                logits, _ = model(ids)
            loss_tok = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), tgt.reshape(-1),
                                       reduction="none")
            loss = (loss_tok * w.reshape(-1)).sum() / w.sum().clamp(min=1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        except Exception as e:  # noqa: BLE001  (save what there is rather than nothing)
            log("training stopped at step %d by %r" % (step, e))
            traceback.print_exc()
            break
        step += 1
        tokens += ids.numel()
        if step % args.log_every == 0 or step == 1:
            lv = loss.item()
            now = time.time()
            tps = (tokens - last_tok) / max(1e-9, now - last_t)
            last_t, last_tok = now, tokens
            curve.append((step, round(now - t0, 1), round(lv, 4)))
            log("step %6d  %6.1fs  loss %.4f  lr %.2e  %.0f tok/s" % (step, now - t0, lv, lr, tps))
    if device.type == "cuda":
        torch.cuda.synchronize()
    el = time.time() - t0
    log("trained %d steps, %d tokens in %.1fs" % (step, tokens, el))
    model.eval()
    return step, tokens, el


INIT_FROM = None  # --init DIR: continue from a saved folder of the same shape


def make_model(cfg, seed, device):
    torch.manual_seed(seed)
    m = L.Llama(cfg)
    g = torch.Generator().manual_seed(seed)
    m.init_weights(g, emb_std=0.02, lin_std=0.02)
    if INIT_FROM:
        L.load_weights(m, INIT_FROM)
        log("weights from %s" % INIT_FROM)
    return m.to(device)


def reload_saved(out, cfg, device):
    """The saved (bf16) weights in a fresh float32 model: what every reader gets."""
    m = L.Llama(cfg)
    L.load_weights(m, out)
    return m.to(device).float().eval()


# ===========================================================================
# transformers checks (GPU machine); never raise
# ===========================================================================
def hf_check(out, cfg, device, sample_ids, texts=None, text_ids=None, messages=None, rendered=None):
    """Loads OUT with transformers (eager attention, float32) and compares logits on
    sample_ids (list of id lists) with this script's model on the saved weights;
    compares AutoTokenizer ids on texts with text_ids, and apply_chat_template on
    messages with rendered. Returns a dict of results (errors as strings)."""
    res = {}
    try:
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer
        res["transformers"] = transformers.__version__
    except Exception as e:  # noqa: BLE001
        res["error"] = "transformers not importable: %r" % e
        log("hf_check: %s" % res["error"])
        return res
    try:
        try:
            hm = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, attn_implementation="eager")
        except TypeError:
            hm = AutoModelForCausalLM.from_pretrained(out, torch_dtype=torch.float32, attn_implementation="eager")
        hm = hm.to(device).eval()
        mine = reload_saved(out, cfg, device)
        worst = 0.0
        scale = 0.0
        agree = 0
        n = 0
        with torch.no_grad():
            for ids in sample_ids:
                x = torch.tensor([ids], device=device)
                a = hm(x).logits.float()
                b, _ = mine(x)
                worst = max(worst, (a - b).abs().max().item())
                scale = max(scale, a.abs().max().item())
                agree += (a.argmax(-1) == b.argmax(-1)).sum().item()
                n += x.shape[1]
        res["logits_max_abs_diff"] = worst
        res["logits_max_abs"] = scale
        res["argmax_agree"] = "%d/%d" % (agree, n)
        log("hf_check: logits max |transformers - ours| = %.3g (max |logit| %.3g), argmax agree %d/%d"
            % (worst, scale, agree, n))
    except Exception as e:  # noqa: BLE001
        res["model_error"] = repr(e)
        log("hf_check: model FAILED: %r" % e)
        traceback.print_exc()
    if texts:
        try:
            tok = AutoTokenizer.from_pretrained(out)
            same = 0
            first_bad = None
            for t, ids in zip(texts, text_ids):
                got = tok(t, add_special_tokens=False)["input_ids"]
                if list(got) == list(ids):
                    same += 1
                elif first_bad is None:
                    first_bad = (t[:80], list(got)[:16], list(ids)[:16])
            res["tokenizer_same"] = "%d/%d" % (same, len(texts))
            log("hf_check: AutoTokenizer ids equal to training ids on %d/%d texts (%s)"
                % (same, len(texts), type(tok).__name__))
            if first_bad:
                log("hf_check: first difference: %r" % (first_bad,))
            if messages:
                ok = 0
                for msg, want in zip(messages, rendered):
                    got = tok.apply_chat_template(msg, tokenize=False, add_generation_prompt=True)
                    ok += got == want
                res["chat_template_same"] = "%d/%d" % (ok, len(messages))
                log("hf_check: apply_chat_template equal on %d/%d conversations" % (ok, len(messages)))
        except Exception as e:  # noqa: BLE001
            res["tokenizer_error"] = repr(e)
            log("hf_check: tokenizer FAILED: %r" % e)
            traceback.print_exc()
    return res


def guarded(name, fn, *a, **kw):
    try:
        return fn(*a, **kw)
    except Exception as e:  # noqa: BLE001
        log("%s FAILED: %r" % (name, e))
        traceback.print_exc()
        return {"error": repr(e)}


# ===========================================================================
# Task: chat
# ===========================================================================
STOP = set("""a an the of or and to in on at by for with from as is are was were be been being
that which who whom whose this these those it its into onto than then so such not no nor
any some all each every one ones something someone somebody thing things very more most
usually especially often used use using make makes made having has have had do does did
e.g. i.e. etc someone's something's being other another word means mean meaning""".split())


def content_words(s):
    return set(w for w in re.findall(r"[a-z]+", s.lower()) if w not in STOP and len(w) > 2)


def open_text(path):
    """path or path.gz (as tools/data_prep.py writes it)."""
    if os.path.exists(path + ".gz"):
        return gzip.open(path + ".gz", "rt", encoding="ascii")
    return open(path, encoding="utf-8")


def load_wordnet(data):
    syn = {}
    with open_text(os.path.join(data, "wordnet_synsets.tsv")) as f:
        for line in f:
            key, sst, words, d, ex = line.rstrip("\n").split("\t")
            syn[key] = (words.split(","), d, [e for e in ex.split(" | ") if e])
    lem = []
    with open_text(os.path.join(data, "wordnet_lemmas.tsv")) as f:
        for line in f:
            lemma, pos, tag, keys = line.rstrip("\n").split("\t")
            lem.append((lemma, pos, int(tag), keys.split(",")))
    return syn, lem


def read_lines(path, limit=None):
    if not os.path.exists(path) and not os.path.exists(path + ".gz"):
        return []
    with open_text(path) as f:
        out = [ln.strip() for ln in f if ln.strip()]
    return out[:limit] if limit else out


def is_held_out(lemma, share=0.03):
    h = int(hashlib.md5(lemma.encode()).hexdigest()[:8], 16)
    return h < share * 0xFFFFFFFF


SYSTEMS = ["You are a helpful assistant.", "You explain the meaning of English words.",
           "You are a small model that knows many words. Answer briefly."]
GREETINGS = [("Hello", "Hello! Ask me what a word means, and I will explain it."),
             ("Hi", "Hi! Which word would you like me to explain?"),
             ("Hello!", "Hello! Give me a word and I will tell you what it means."),
             ("Who are you?", "I am a small language model. I know what many English words mean."),
             ("What can you do?", "I can explain what a word means, use it in a sentence, "
                                  "or give you another word for it."),
             ("Thank you", "You are welcome!"), ("Thanks!", "You are welcome! Ask me another word."),
             ("Good morning", "Good morning! Which word shall we look at?")]


def sentence_case(s):
    return s[:1].upper() + s[1:] if s else s


def define_q(lemma, pos, rng):
    qs = ["What does %s mean?", "What is the meaning of %s?", "Define %s.",
          "What does the word %s mean?", "Explain %s.", "What is %s?"]
    if pos == "n":
        qs += ["What is a %s?" if lemma[0] not in "aeiou" else "What is an %s?"]
    if pos == "v":
        qs += ["What does it mean to %s?"]
    return rng.choice(qs) % lemma


def define_a(lemma, pos, d):
    if pos == "v":
        return "To %s means to %s." % (lemma, d) if not d.startswith("to ") else \
            "To %s means %s." % (lemma, d)
    return "%s means %s." % (sentence_case(lemma), d)


def chat_dialogues(syn, lem, fortunes, verses, rng, held):
    """Returns a list of conversations; each is a list of (role, text)."""
    convs = []
    for lemma, pos, tag, keys in lem:
        if lemma in held or not keys or keys[0] not in syn:
            continue
        reps = 2 if tag > 0 else 1
        words, d, ex = syn[keys[0]]
        for _ in range(reps):
            sysm = [("system", rng.choice(SYSTEMS))] if rng.random() < 0.08 else []
            turns = [("user", define_q(lemma, pos, rng)), ("assistant", define_a(lemma, pos, d))]
            r = rng.random()
            if r < 0.2 and len(keys) > 1 and keys[1] in syn:
                turns += [("user", rng.choice(["What else can it mean?", "Does it have another meaning?",
                                               "Any other meaning?"])),
                          ("assistant", "It can also mean %s." % syn[keys[1]][1])]
            elif r < 0.35 and any(lemma in e for e in ex):
                e = next(e for e in ex if lemma in e)
                turns += [("user", rng.choice(["Use it in a sentence.", "Give me an example.",
                                               "Can you use it in a sentence?"])),
                          ("assistant", sentence_case(e) + ("" if e[-1:] in ".!?" else "."))]
            convs.append(sysm + turns)
        syns = [w for w in words if w != lemma]
        if syns:
            other = " or ".join(syns[:2])
            convs.append([("user", rng.choice(["What is another word for %s?", "Give me a synonym for %s.",
                                               "What is a synonym of %s?"]) % lemma),
                          ("assistant", "Another word for %s is %s." % (lemma, other))])
        good = [e for e in ex if lemma in e]
        if good:
            e = rng.choice(good)
            convs.append([("user", rng.choice(["Use %s in a sentence.", "Give me an example with %s.",
                                               "Use the word %s in a sentence."]) % lemma),
                          ("assistant", sentence_case(e) + ("" if e[-1:] in ".!?" else "."))])
    for f in fortunes:
        convs.append([("user", rng.choice(["Tell me a fortune.", "Say something wise.",
                                           "Tell me something."])), ("assistant", f)])
    for v in verses:
        convs.append([("user", rng.choice(["Quote a verse.", "Say a verse from the Bible.",
                                           "Read me a verse."])), ("assistant", v)])
    for _ in range(max(200, len(convs) // 500)):
        q, a = rng.choice(GREETINGS)
        convs.append([("user", q), ("assistant", a)])
    rng.shuffle(convs)
    return convs


def render(conv, gen_prompt=False):
    s = "".join("<|im_start|>%s\n%s<|im_end|>\n" % (r, t) for r, t in conv)
    return s + ("<|im_start|>assistant\n" if gen_prompt else "")


def conv_pieces(conv):
    """(text, trained) pieces: the assistant's text and its <|im_end|> are trained."""
    out = []
    for r, t in conv:
        if r == "assistant":
            out += [("<|im_start|>assistant\n", False), (t + "<|im_end|>", True), ("\n", False)]
        else:
            out += [("<|im_start|>%s\n%s<|im_end|>\n" % (r, t), False)]
    return out


class TokWrap:
    """One encode_batch interface over HF tokenizers or the pure-Python encoder."""

    def __init__(self, path, kind):
        self.kind = kind
        self.py = train_bpe.Encoder.from_file(path)
        self.hf = None
        if kind == "hf":
            try:
                from tokenizers import Tokenizer
                self.hf = Tokenizer.from_file(path)
            except Exception as e:  # noqa: BLE001
                log("HF tokenizers cannot load %s (%r); encoding with train_bpe.Encoder" % (path, e))

    def encode_batch(self, texts):
        if self.hf is not None:
            try:
                return [e.ids for e in self.hf.encode_batch(texts, add_special_tokens=False)]
            except Exception as e:  # noqa: BLE001
                log("HF encode_batch failed (%r); encoding with train_bpe.Encoder from now on" % e)
                self.hf = None
        return [self.py.encode(t) for t in texts]

    def decode(self, ids):
        if self.hf is not None:
            try:
                return self.hf.decode(ids)
            except Exception:  # noqa: BLE001
                pass
        return self.py.decode(ids)


def train_chat_tokenizer(texts, vocab_size, path, force_py):
    """Trains the byte-level BPE with HF tokenizers, or with train_bpe.py if HF is
    missing or fails. Writes tokenizer.json to path; returns 'hf' or 'py'."""
    specials = L.CHAT_SPECIALS
    if not force_py:
        try:
            from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
            tok = Tokenizer(models.BPE())
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
            tok.decoder = decoders.ByteLevel()
            tok.post_processor = processors.ByteLevel(trim_offsets=False)
            tr = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=specials,
                                     initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                     show_progress=False)
            tok.train_from_iterator(texts, trainer=tr)
            tok.save(path)
            tj = json.load(open(path, encoding="utf-8"))
            for i, s in enumerate(specials):
                if tj["model"]["vocab"].get(s) != i:
                    raise RuntimeError("special token %s is not id %d" % (s, i))
            return "hf"
        except Exception as e:  # noqa: BLE001
            log("HF tokenizers training failed (%r); using tools/train_bpe.py" % e)
    vocab, merges = train_bpe.train(texts, vocab_size, specials, min_frequency=2)
    train_bpe.write_tokenizer(path, vocab, merges, specials)
    return "py"


@torch.no_grad()
def greedy_batch(model, prompts, max_new, stop_ids, device, pad_id=0):
    """Greedy continuation of several prompts at once (left padding, recomputing
    the whole sequence each step). Returns the new ids of each prompt."""
    B = len(prompts)
    T0 = max(len(p) for p in prompts)
    ids = torch.full((B, T0), pad_id, dtype=torch.long)
    mask = torch.zeros((B, T0), dtype=torch.bool)
    for i, p in enumerate(prompts):
        ids[i, T0 - len(p):] = torch.tensor(p)
        mask[i, T0 - len(p):] = True
    ids, mask = ids.to(device), mask.to(device)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    outs = [[] for _ in range(B)]
    stop = torch.tensor(sorted(stop_ids), device=device)
    for _ in range(max_new):
        pos = (mask.long().cumsum(1) - 1).clamp(min=0)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits, _ = model(ids, pos=pos, mask=mask)
        nxt = logits[:, -1].argmax(-1)
        nl, dl = nxt.tolist(), done.tolist()
        for i in range(B):
            if not dl[i]:
                outs[i].append(nl[i])
        done |= (nxt[:, None] == stop).any(1)
        ids = torch.cat([ids, nxt[:, None]], 1)
        mask = torch.cat([mask, torch.ones((B, 1), dtype=torch.bool, device=device)], 1)
        if bool(done.all()):
            break
    return [[t for t in o if t not in stop_ids] for o in outs]


def eval_chat(model, tw, dec, syn, lem_by, words, device, im_end, eot, label, n_show=8):
    """Asks 'What does W mean?' for each word; scores the greedy answers.
    Metric 'overlap': the answer shares at least one content word (not the word
    itself, not a stop word) with some WordNet definition of the word.
    Metric 'on_topic': the answer's first sentence names the word."""
    convs = [[("user", "What does %s mean?" % w)] for w in words]
    prompts = tw.encode_batch([render(c, True) for c in convs])
    answers = []
    for i in range(0, len(prompts), 256):
        outs = greedy_batch(model, prompts[i:i + 256], 48, {im_end, eot}, device)
        answers += [dec(o) for o in outs]
    hits = on_topic = exact = shuffled = 0
    samples = []
    gws = []
    for w in words:
        gw = set()
        for (pos, keys) in lem_by[w]:
            for k in keys:
                if k in syn:
                    gw |= content_words(syn[k][1])
        gws.append(gw)
    for i, (w, a) in enumerate(zip(words, answers)):
        glosses = [syn[k][1] for (pos, keys) in lem_by[w] for k in keys if k in syn]
        gw = gws[i]
        aw = content_words(a) - content_words(w)
        hit = bool(aw & gw)
        hits += hit
        # Chance level: the same answer scored against the next word's glosses.
        shuffled += bool(aw & gws[(i + 1) % len(words)])
        on_topic += w.lower() in a.lower()
        exact += any(g in a for g in glosses[:1])
        if len(samples) < n_show:
            samples.append({"word": w, "answer": a, "first_gloss": glosses[0] if glosses else ""})
    n = max(1, len(words))
    r = {"n": len(words), "overlap": hits / n, "overlap_chance": shuffled / n, "on_topic": on_topic / n,
         "first_sense_exact": exact / n, "samples": samples}
    log("eval %s: n=%d  overlap %.3f (chance %.3f)  on_topic %.3f  first-sense gloss reproduced %.3f"
        % (label, len(words), r["overlap"], r["overlap_chance"], r["on_topic"], r["first_sense_exact"]))
    for s in samples:
        log("  Q: What does %s mean?\n  A: %s\n  WordNet: %s" % (s["word"], s["answer"], s["first_gloss"]))
    return r, answers


@torch.no_grad()
def chat_attention(model, tw, words, answers, device):
    """For 'What does W mean?' + answer: per layer/head, the mean attention that
    the answer's positions pay to W's tokens in the question, against the share a
    uniform causal head would give. Returns the top heads."""
    L_, H = model.c.num_hidden_layers, model.c.num_attention_heads
    mass = torch.zeros(L_, H)
    base = 0.0
    n = 0
    for w, a in list(zip(words, answers))[:64]:
        pre = tw.encode_batch(["<|im_start|>user\nWhat does"])[0]
        wid = tw.encode_batch([" " + w])[0]
        post = tw.encode_batch([" mean?<|im_end|>\n<|im_start|>assistant\n"])[0]
        ans = tw.encode_batch([a])[0][:32]
        if not ans:
            continue
        ids = pre + wid + post + ans
        ws = list(range(len(pre), len(pre) + len(wid)))
        a0 = len(pre) + len(wid) + len(post)
        x = torch.tensor([ids], device=device)
        _, att = model(x, need_attn=True)
        for li, p in enumerate(att):
            rows = p[0, :, a0:, :]  # (H, answer, T)
            mass[li] += rows[:, :, ws].sum(-1).mean(-1).cpu()
        base += float(np.mean([len(ws) / (q + 1) for q in range(a0, len(ids))]))
        n += 1
    if n == 0:
        return {}
    mass /= n
    base /= n
    flat = [(float(mass[l_, h]), l_, h) for l_ in range(L_) for h in range(H)]
    flat.sort(reverse=True)
    log("attention from the answer to the asked word (uniform would give %.3f):" % base)
    for l_ in range(L_):
        log("  layer %d: %s" % (l_, " ".join("%.3f" % float(mass[l_, h]) for h in range(H))))
    return {"uniform": base, "per_layer_head": mass.tolist(),
            "top": [{"layer": l_, "head": h, "mass": m} for m, l_, h in flat[:5]]}


def task_chat(args, hp, device, rep):
    rng = random.Random(args.seed)
    syn, lem = load_wordnet(args.data)
    fortunes = read_lines(os.path.join(args.data, "fortunes.txt"))
    verses = read_lines(os.path.join(args.data, "kjv.txt"))
    rng.shuffle(verses)
    verses = verses[:12000]
    if args.size == "tiny":
        lem = [x for x in lem if x[2] >= 1][:3000]
        fortunes, verses = fortunes[:200], verses[:200]
    lem_by = {}
    for lemma, pos, tag, keys in lem:
        lem_by.setdefault(lemma, []).append((pos, keys))
    everyday = sorted(set(l_ for l_, pos, tag, keys in lem if tag >= 1 and re.fullmatch(r"[a-z]{3,14}", l_)))
    held = set(w for w in everyday if is_held_out(w))
    trained_pool = [w for w in everyday if w not in held]
    rep["data"] = {"lemma_entries": len(lem), "everyday_words": len(everyday), "held_out": len(held),
                   "fortunes": len(fortunes), "verses": len(verses)}
    t = time.time()
    convs = chat_dialogues(syn, lem, fortunes, verses, rng, held)
    log("built %d conversations in %.1fs (held-out words: %d)" % (len(convs), time.time() - t, len(held)))
    rep["data"]["conversations"] = len(convs)

    os.makedirs(args.out, exist_ok=True)
    tpath = os.path.join(args.out, "tokenizer.json")
    t = time.time()
    plain = [t_ for c in convs[:200000] for _, t_ in c] + ["user", "assistant", "system"]
    kind = train_chat_tokenizer(plain, hp["vocab"], tpath, args.tokenizer == "py")
    log("tokenizer trained with %s in %.1fs" % ("HF tokenizers" if kind == "hf" else "train_bpe.py",
                                                time.time() - t))
    rep["tokenizer"] = kind
    tw = TokWrap(tpath, kind)
    tj = json.load(open(tpath, encoding="utf-8"))
    V = len(tj["model"]["vocab"])
    rep["vocab"] = V

    # Python encoder against HF on real text (the fallback's correctness).
    if kind == "hf":
        sample = [render(c) for c in convs[:500]]
        a = tw.encode_batch(sample)
        b = [tw.py.encode(s) for s in sample]
        same = sum(x == y for x, y in zip(a, b))
        log("train_bpe.Encoder equals HF tokenizers on %d/%d rendered conversations" % (same, len(sample)))
        rep["py_encoder_vs_hf"] = "%d/%d" % (same, len(sample))

    # Token stream with a loss mask.
    t = time.time()
    pieces = [conv_pieces(c) for c in convs]
    flat = [p for ps in pieces for p in ps]
    enc = []
    for i in range(0, len(flat), 100000):
        enc += tw.encode_batch([p[0] for p in flat[i:i + 100000]])
    ids = np.fromiter((x for e in enc for x in e), dtype=np.int32)
    w = np.fromiter((float(p[1]) for e, p in zip(enc, flat) for _ in e), dtype=np.float32)
    log("tokenized %d tokens (%.1f%% trained) in %.1fs" % (len(ids), 100 * w.mean(), time.time() - t))
    rep["data"]["tokens"] = int(len(ids))
    # Piecewise encoding must equal encoding the whole rendered conversation.
    joint = tw.encode_batch([render(c) for c in convs[:300]])
    pw = [[x for p in conv_pieces(c) for x in tw.encode_batch([p[0]])[0]] for c in convs[:300]]
    log("piecewise == whole-conversation encoding on %d/300" % sum(a == b for a, b in zip(joint, pw)))

    cfg = L.Cfg(vocab_size=V, hidden_size=hp["dim"], num_hidden_layers=hp["layers"],
                num_attention_heads=hp["heads"], num_key_value_heads=hp["kv"],
                intermediate_size=hp["hidden"], max_position_embeddings=hp["ctx"],
                rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
                bos_token_id=0, eos_token_id=2, pad_token_id=0)
    model = make_model(cfg, args.seed, device)
    nparam = sum(p.numel() for p in model.parameters())
    log("model: %d parameters" % nparam)
    rep["parameters"] = nparam
    data = torch.from_numpy(ids.astype(np.int64)).to(device)
    wt = torch.from_numpy(w).to(device)
    T, B = hp["seq"], hp["batch"]
    gen = torch.Generator(device=device).manual_seed(args.seed)
    ar = torch.arange(T + 1, device=device)

    def batch(step):
        off = torch.randint(0, len(data) - T - 1, (B,), device=device, generator=gen)
        idx = off[:, None] + ar
        chunk = data[idx]
        return chunk[:, :-1], chunk[:, 1:], wt[idx[:, 1:]]

    curve = []
    steps, tokens, el = train_loop(model, batch, args, hp, device, curve)
    rep["train"] = {"steps": steps, "tokens": tokens, "seconds": round(el, 1), "curve": curve}
    save_chat(args.out, model, tpath)
    log("saved %s" % args.out)

    dec = tw.decode
    model = reload_saved(args.out, cfg, device)  # evaluate what was written
    n_eval = args.eval_n or (400 if args.size == "full" else 40)
    erng = random.Random(args.seed + 1)
    held_l = sorted(held)
    erng.shuffle(held_l)
    tr_l = trained_pool[:]
    erng.shuffle(tr_l)
    r = guarded("eval held-out", eval_chat, model, tw, dec, syn, lem_by, held_l[:n_eval], device, 2, 0,
                "held-out words")
    rep["eval_held_out"], ans_h = r if isinstance(r, tuple) else (r, [])
    r = guarded("eval trained", eval_chat, model, tw, dec, syn, lem_by, tr_l[:n_eval], device, 2, 0,
                "trained words")
    rep["eval_trained"] = r[0] if isinstance(r, tuple) else r
    rep["attention_to_word"] = guarded("attention", chat_attention, model, tw, held_l[:64], ans_h, device)
    # Other prompts, for the model card.
    extra = ["Hello", "Use house in a sentence.", "What is another word for happy?", "Tell me a fortune.",
             "What does attention mean?", "What is a cache?"]
    outs = greedy_batch(model, tw.encode_batch([render([("user", q)], True) for q in extra]), 64, {0, 2}, device)
    rep["samples"] = []
    for q, o in zip(extra, outs):
        log("  Q: %s\n  A: %s" % (q, dec(o)))
        rep["samples"].append({"q": q, "a": dec(o)})
    # transformers checks.
    sconv = convs[:50]
    texts = [render(c) for c in sconv]
    text_ids = [[x for p in conv_pieces(c) for x in tw.encode_batch([p[0]])[0]] for c in sconv]
    msgs = [[{"role": r, "content": t_} for r, t_ in c] for c in sconv[:20]]
    rendered = [render(c, True) for c in sconv[:20]]
    sample_ids = [text_ids[i][:200] for i in range(4)]
    rep["hf_check"] = guarded("hf_check", hf_check, args.out, cfg, device, sample_ids, texts, text_ids,
                              msgs, rendered)


def save_chat(out, model, tpath):
    tc = L.tokenizer_config(L.CHAT_SPECIALS, eos="<|im_end|>", pad="<|endoftext|>", bos=None,
                            chat_template=L.CHATML_TEMPLATE, max_len=model.c.max_position_embeddings)
    gc = {"bos_token_id": 0, "eos_token_id": [2, 0], "pad_token_id": 0, "do_sample": True,
          "temperature": 0.7, "top_k": 40, "top_p": 0.9, "max_new_tokens": 128}
    L.write_folder(out, model, tpath, tc, gc, dtype=torch.bfloat16)


# ===========================================================================
# Fixed-vocabulary tasks (var_rename, induction)
# ===========================================================================
def fixed_tokenizer(symbols):
    """A byte-level BPE tokenizer.json with no merges: <|endoftext|> then one id per
    single-character symbol (ASCII printable characters are their own byte-level
    symbols)."""
    specials = ["<|endoftext|>"]
    vocab = {"<|endoftext|>": 0}
    for s in symbols:
        assert len(s) == 1 and train_bpe.BYTE_ENC[ord(s)] == s
        vocab[s] = len(vocab)
    return train_bpe.tokenizer_json(vocab, [], specials), vocab


def save_fixed(out, model, tj, max_len):
    tc = L.tokenizer_config(["<|endoftext|>"], eos="<|endoftext|>", pad="<|endoftext|>", bos=None,
                            max_len=max_len)
    gc = {"eos_token_id": 0, "pad_token_id": 0, "do_sample": False, "max_new_tokens": 1}
    L.write_folder(out, model, tj, tc, gc, dtype=torch.bfloat16)


DIGITS = "0123456789"
LETTERS = "abcdefghijklmnopqrstuvwxyz"
VR_SYMBOLS = DIGITS + LETTERS + ">;"


def vr_generate(rng, B, K, R):
    """B sequences of K + R statements (K + R <= 26): K digit assignments `d>v;` that
    start the chains (the first statement, the others at random places in the first
    half) and R renames
    `s>n;`, each extending one of the chains started so far: s is the chain's newest
    variable, n a letter never assigned before in the sequence. Returns token ids
    (B, 4(K+R)) as ids of VR_SYMBOLS + 1, targets (the digit id at each assigned
    variable, -1 elsewhere), hop depth (-1 where no target), and for each assigned
    variable the position where its source was assigned and of its chain's digit."""
    S = K + R
    assert S <= 26
    perm = np.argsort(rng.random((B, 26)), axis=1)  # variable letters in order of assignment
    is_start = np.zeros((B, S), dtype=bool)
    is_start[:, 0] = True
    if K > 1:  # the other chains start among the first half of the statements
        span = max(K - 1, (S - 1) // 2)
        later = 1 + np.argsort(rng.random((B, span)), axis=1)[:, :K - 1]
        np.put_along_axis(is_start, later, True, axis=1)
    digits = rng.integers(0, 10, size=(B, S))
    pick = rng.random((B, S))
    pick2 = rng.random((B, S))
    ids = np.zeros((B, 4 * S), dtype=np.int64)
    tgt = np.full((B, 4 * S), -1, dtype=np.int64)
    depth = np.full((B, 4 * S), -1, dtype=np.int64)
    src_pos = np.full((B, 4 * S), -1, dtype=np.int64)
    root_pos = np.full((B, 4 * S), -1, dtype=np.int64)
    tail_var = np.zeros((B, K), dtype=np.int64)
    tail_pos = np.zeros((B, K), dtype=np.int64)
    tail_depth = np.zeros((B, K), dtype=np.int64)
    root = np.zeros((B, K), dtype=np.int64)
    n_chains = np.zeros(B, dtype=np.int64)
    b = np.arange(B)
    semi = 1 + VR_SYMBOLS.index(";")
    gt = 1 + VR_SYMBOLS.index(">")
    for s in range(S):
        p = 4 * s
        st = is_start[:, s]
        dst = perm[:, s]
        # A new chain gets the next index; a rename extends the shallower of two chains
        # drawn from those started so far (keeps depths balanced wherever chains start).
        n = np.maximum(n_chains, 1)
        k1 = np.minimum((pick[:, s] * n).astype(np.int64), n - 1)
        k2 = np.minimum((pick2[:, s] * n).astype(np.int64), n - 1)
        k = np.where(tail_depth[b, k2] < tail_depth[b, k1], k2, k1)
        k = np.minimum(np.where(st, n_chains, k), K - 1)
        ids[:, p] = np.where(st, 1 + digits[:, s], 1 + 10 + tail_var[b, k])
        d = np.where(st, 0, tail_depth[b, k] + 1)
        depth[:, p + 2] = d
        src_pos[:, p + 2] = np.where(st, p, tail_pos[b, k])
        r = np.where(st, p, root[b, k])
        root_pos[:, p + 2] = r
        root[b, k] = r
        tgt[:, p + 2] = ids[b, r]
        tail_depth[b, k] = d
        ids[:, p + 1] = gt
        ids[:, p + 2] = 1 + 10 + dst
        ids[:, p + 3] = semi
        tail_var[b, k] = dst
        tail_pos[b, k] = p + 2
        n_chains += st
    return ids, tgt, depth, src_pos, root_pos


def vr_text(ids_row):
    return "".join(VR_SYMBOLS[i - 1] for i in ids_row)


def vr_sources(tgt, depth):
    """Targets at the source variable s of every rename `s>n;` (it holds the digit
    that n gets; its hop depth is n's minus one), -1 elsewhere."""
    st = np.full_like(tgt, -1)
    sd = np.full_like(depth, -1)
    ren = depth[:, 2::4] >= 1
    st[:, 0::4] = np.where(ren, tgt[:, 2::4], -1)
    sd[:, 0::4] = np.where(ren, depth[:, 2::4] - 1, -1)
    return st, sd


@torch.no_grad()
def vr_eval(model, rng, K, R, device, n=8192):
    """Argmax accuracy on n fresh sequences at assigned variables (per hop depth) and
    at every variable token (assigned variables and rename sources)."""
    accs = {}
    tot = ok = tot_s = ok_s = 0
    for i in range(0, n, 1024):
        ids, tgt, depth, _, _ = vr_generate(rng, 1024, K, R)
        x = torch.from_numpy(ids).to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits, _ = model(x)
        pred = logits.argmax(-1).cpu().numpy()
        m = tgt >= 0
        for d in np.unique(depth[m]):
            sel = depth == d
            c, t = int((pred[sel] == tgt[sel]).sum()), int(sel.sum())
            a = accs.setdefault(int(d), [0, 0])
            a[0] += c
            a[1] += t
        ok += int((pred[m] == tgt[m]).sum())
        tot += int(m.sum())
        st, _ = vr_sources(tgt, depth)
        ms = st >= 0
        ok_s += int((pred[ms] == st[ms]).sum())
        tot_s += int(ms.sum())
    per = {d: (c / t, t) for d, (c, t) in sorted(accs.items())}
    all_acc = (ok + ok_s) / max(1, tot + tot_s)
    log("var_rename accuracy %.4f over %d predictions at assigned variables; %.4f over all %d variable tokens "
        "(rename sources alone %.4f)" % (ok / tot, tot, all_acc, tot + tot_s, ok_s / max(1, tot_s)))
    log("  by hop depth: " + "  ".join("%d:%.4f(n=%d)" % (d, a, t) for d, (a, t) in per.items()))
    return {"accuracy": ok / tot, "n": tot, "accuracy_all_variables": all_acc, "n_all": tot + tot_s,
            "accuracy_sources": ok_s / max(1, tot_s),
            "by_depth": {str(d): {"acc": a, "n": t} for d, (a, t) in per.items()}}


@torch.no_grad()
def vr_analysis(model, rng, K, R, device):
    """Per layer/head, averaged over assigned-variable positions p of renames
    `s>n;` (n at p): attention to the previous token (p-1, '>'), to the source
    token s (p-2), to the position where s was itself assigned (the previous
    occurrence of s, as a left-hand side), to the chain's root digit, and to
    ';' tokens. Also the top attended position of each head for one example."""
    ids, tgt, depth, src_pos, root_pos = vr_generate(rng, 512, K, R)
    x = torch.from_numpy(ids).to(device)
    _, att = model(x, need_attn=True)
    sel = (depth >= 1)
    bi, pi = np.nonzero(sel)
    stats = {}
    names = ["prev_token", "source_token", "source_assignment", "root_digit", "semicolons", "self"]
    semi = 1 + VR_SYMBOLS.index(";")
    is_semi = torch.from_numpy(ids == semi).to(device).float()
    log("var_rename attention at assigned-variable positions of renames (mean probability):")
    log("  layer head " + " ".join("%17s" % n for n in names))
    bt = torch.from_numpy(bi).to(device)
    pt = torch.from_numpy(pi).to(device)
    sp = torch.from_numpy(src_pos[bi, pi]).to(device)
    rp = torch.from_numpy(root_pos[bi, pi]).to(device)
    for li, p in enumerate(att):
        for h in range(p.shape[1]):
            rows = p[bt, h, pt]  # (N, T)
            ar = torch.arange(rows.shape[0], device=device)
            v = [rows[ar, pt - 1].mean(), rows[ar, pt - 2].mean(), rows[ar, sp].mean(),
                 rows[ar, rp].mean(), (rows * is_semi[bt]).sum(-1).mean(), rows[ar, pt].mean()]
            v = [float(a) for a in v]
            stats["L%dH%d" % (li, h)] = dict(zip(names, v))
            log("  %5d %4d " % (li, h) + " ".join("%17.3f" % a for a in v))
    # One example, the last assigned variable: where each head looks.
    ex = ids[0]
    last = 4 * (K + R) - 2
    log("example: %s  (the last variable, position %d, has depth %d, digit %s)"
        % (vr_text(ex), last, depth[0, last], VR_SYMBOLS[tgt[0, last] - 1]))
    top = {}
    for li, p in enumerate(att):
        row = []
        for h in range(p.shape[1]):
            j = int(p[0, h, last].argmax())
            row.append("H%d->%d'%s'(%.2f)" % (h, j, VR_SYMBOLS[ex[j] - 1], float(p[0, h, last, j])))
            top["L%dH%d" % (li, h)] = j
        log("  layer %d: %s" % (li, "  ".join(row)))
    return {"heads": stats, "example": vr_text(ex), "example_top_position": top,
            "example_last_position": last}


def vr_batch(rng, B, K, R, mix=0.0, src=0.0):
    """A training batch of B rows of 4(K+R) tokens. A share `mix` of the rows are
    shorter sequences (2 to K chains, 4 to K+R statements, right-padded with id 0 and
    no loss there): more shallow lookups among fewer digits, which is where the
    previous-occurrence lookup is first learnt. Targets at every assigned variable
    (weight 1) and, with src > 0, also at the source variable s of each rename
    `s>n;` (it holds the same digit; weight src). Returns ids, targets (0 where no
    loss), weights, all numpy."""
    S = K + R
    rows = [(K, R)] * B
    nshort = int(round(mix * B))
    for i in range(nshort):
        s = int(rng.integers(4, S + 1)) if S >= 4 else S
        k = int(rng.integers(min(2, K), max(min(2, K), min(K, s // 2)) + 1))
        rows[i] = (k, s - k)
    rows.sort()
    ids = np.zeros((B, 4 * S), dtype=np.int64)
    tgt = np.full((B, 4 * S), -1, dtype=np.int64)
    depth = np.full((B, 4 * S), -1, dtype=np.int64)
    i = 0
    while i < B:
        j = i
        while j < B and rows[j] == rows[i]:
            j += 1
        k, r = rows[i]
        n = 4 * (k + r)
        ids[i:j, :n], tgt[i:j, :n], depth[i:j, :n], _, _ = vr_generate(rng, j - i, k, r)
        i = j
    w = (tgt >= 0).astype(np.float32)
    if src > 0:
        st, _ = vr_sources(tgt, depth)
        w[:, 0::4] = (st[:, 0::4] >= 0) * src
        tgt[:, 0::4] = st[:, 0::4]
    return ids, np.where(tgt >= 0, tgt, 0), w


def task_var_rename(args, hp, device, rep):
    K, R = args.chains, args.renames
    rep["task_config"] = {"chains": K, "renames": R, "statements": K + R, "tokens": 4 * (K + R),
                          "variables_reused": False}
    tj, vocab = fixed_tokenizer(VR_SYMBOLS)
    cfg = L.Cfg(vocab_size=len(vocab), hidden_size=hp["dim"], num_hidden_layers=hp["layers"],
                num_attention_heads=hp["heads"], num_key_value_heads=hp["kv"],
                intermediate_size=hp["hidden"], max_position_embeddings=hp["ctx"],
                rope_theta=hp.get("rope", 10000.0), rms_norm_eps=1e-5, tie_word_embeddings=False,
                bos_token_id=None, eos_token_id=0, pad_token_id=0)
    model = make_model(cfg, args.seed, device)
    rep["parameters"] = sum(p.numel() for p in model.parameters())
    rep["vocab"] = len(vocab)
    log("model: %d parameters; task: %d chains, %d renames, %d tokens" % (rep["parameters"], K, R, 4 * (K + R)))
    rng = np.random.default_rng(args.seed)
    B = hp["batch"]

    mix, src = hp.get("mix", 0.0), hp.get("src", 0.0)
    # Progress on fixed fresh sequences every --eval-every steps (accuracy per depth).
    prng = np.random.default_rng(args.seed + 2)
    probe = vr_generate(prng, 512, K, R)
    rep["depth_curve"] = []

    def probe_eval(step):
        model.eval()
        with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                                             enabled=device.type == "cuda"):
            logits, _ = model(torch.from_numpy(probe[0]).to(device))
        model.train()
        pred = logits.argmax(-1).cpu().numpy()
        tgt, depth = probe[1], probe[2]
        m = tgt >= 0
        per = {int(d): float((pred[depth == d] == tgt[depth == d]).mean()) for d in np.unique(depth[m])}
        acc = float((pred[m] == tgt[m]).mean())
        st, _ = vr_sources(tgt, depth)
        acc_s = float((pred[st >= 0] == st[st >= 0]).mean())
        rep["depth_curve"].append({"step": step, "acc": round(acc, 4), "acc_sources": round(acc_s, 4),
                                   "by_depth": {str(d): round(a, 4) for d, a in per.items()}})
        log("  probe step %d: acc %.4f (sources %.4f)  by depth %s"
            % (step, acc, acc_s, " ".join("%d:%.3f" % x for x in per.items())))

    def batch(step):
        if args.eval_every and step and step % args.eval_every == 0:
            probe_eval(step)
        ids, tgt, w = vr_batch(rng, B, K, R, mix, src)
        return (torch.from_numpy(ids).to(device, non_blocking=True),
                torch.from_numpy(tgt).to(device, non_blocking=True),
                torch.from_numpy(w).to(device, non_blocking=True))

    curve = []
    steps, tokens, el = train_loop(model, batch, args, hp, device, curve)
    rep["train"] = {"steps": steps, "tokens": tokens, "seconds": round(el, 1), "curve": curve}
    if args.eval_every:
        probe_eval(steps)
    save_fixed(args.out, model, tj, hp["ctx"])
    log("saved %s" % args.out)
    model = reload_saved(args.out, cfg, device)
    erng = np.random.default_rng(args.seed + 1)
    rep["eval"] = guarded("eval", vr_eval, model, erng, K, R, device,
                          args.eval_n or (16384 if args.size == "full" else 1024))
    rep["analysis"] = guarded("analysis", vr_analysis, model, erng, K, R, device)
    ids, _, _, _, _ = vr_generate(erng, 8, K, R)
    texts = [vr_text(r) for r in ids]
    rep["hf_check"] = guarded("hf_check", hf_check, args.out, cfg, device, [list(map(int, r)) for r in ids[:4]],
                              texts, [list(map(int, r)) for r in ids])


IND_SYMBOLS = LETTERS + LETTERS.upper() + DIGITS


def ind_generate(rng, B, T, lo=8, hi=None):
    """Sequences of T tokens: a random block of length Lb (lo..hi) repeated until T.
    Returns ids (ids of IND_SYMBOLS + 1), weights (1 from the first repeat on) and
    the block lengths."""
    hi = hi or T // 2
    Lb = rng.integers(lo, hi + 1, size=B)
    base = rng.integers(0, len(IND_SYMBOLS), size=(B, T))
    idx = np.arange(T)[None] % Lb[:, None]
    ids = 1 + np.take_along_axis(base, idx, 1)
    w = (np.arange(T)[None] >= Lb[:, None]).astype(np.float32)
    return ids.astype(np.int64), w, Lb


@torch.no_grad()
def ind_eval(model, rng, T, device):
    """Accuracy on the repeats; previous-token score (mean attention from i to i-1)
    and induction score (mean attention from i to i - Lb + 1, the token after the
    previous occurrence of token i) per layer and head, on sequences of one block
    of T/2 tokens repeated once."""
    B = 256
    ids, w, Lb = ind_generate(rng, B, T, lo=T // 2, hi=T // 2)
    x = torch.from_numpy(ids).to(device)
    logits, att = model(x, need_attn=True)
    pred = logits.argmax(-1).cpu().numpy()
    m = w[:, :-1] > 0
    acc = float((pred[:, :-1] == ids[:, 1:])[m].mean())
    Lh = T // 2
    res = {"accuracy_on_repeat": acc, "prev_token": {}, "induction": {}}
    log("induction: next-token accuracy on the repeated half %.4f" % acc)
    q = torch.arange(Lh, T, device=device)
    for li, p in enumerate(att):
        pt = [float(p[:, h, torch.arange(1, T, device=device), torch.arange(0, T - 1, device=device)].mean())
              for h in range(p.shape[1])]
        ind = [float(p[:, h, q, q - Lh + 1].mean()) for h in range(p.shape[1])]
        res["prev_token"]["layer%d" % li] = pt
        res["induction"]["layer%d" % li] = ind
        log("  layer %d  previous-token score per head: %s" % (li, " ".join("%.3f" % v for v in pt)))
        log("  layer %d  induction score per head:      %s" % (li, " ".join("%.3f" % v for v in ind)))
    return res


def task_induction(args, hp, device, rep):
    tj, vocab = fixed_tokenizer(IND_SYMBOLS)
    cfg = L.Cfg(vocab_size=len(vocab), hidden_size=hp["dim"], num_hidden_layers=hp["layers"],
                num_attention_heads=hp["heads"], num_key_value_heads=hp["kv"],
                intermediate_size=hp["hidden"], max_position_embeddings=hp["ctx"],
                rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
                bos_token_id=None, eos_token_id=0, pad_token_id=0)
    model = make_model(cfg, args.seed, device)
    rep["parameters"] = sum(p.numel() for p in model.parameters())
    rep["vocab"] = len(vocab)
    rng = np.random.default_rng(args.seed)
    T, B = hp["seq"], hp["batch"]
    rep["task_config"] = {"seq": T, "block_len": [8, T // 2], "symbols": len(IND_SYMBOLS)}

    def batch(step):
        ids, w, _ = ind_generate(rng, B, T + 1)
        x = torch.from_numpy(ids).to(device, non_blocking=True)
        wt = torch.from_numpy(w[:, 1:].copy()).to(device, non_blocking=True)
        return x[:, :-1], x[:, 1:], wt

    curve = []
    steps, tokens, el = train_loop(model, batch, args, hp, device, curve)
    rep["train"] = {"steps": steps, "tokens": tokens, "seconds": round(el, 1), "curve": curve}
    save_fixed(args.out, model, tj, hp["ctx"])
    log("saved %s" % args.out)
    model = reload_saved(args.out, cfg, device)
    erng = np.random.default_rng(args.seed + 1)
    rep["eval"] = guarded("eval", ind_eval, model, erng, T, device)
    ids, _, _ = ind_generate(erng, 8, T)
    texts = ["".join(IND_SYMBOLS[i - 1] for i in r) for r in ids]
    rep["example"] = texts[0]
    rep["hf_check"] = guarded("hf_check", hf_check, args.out, cfg, device, [list(map(int, r)) for r in ids[:4]],
                              texts, [list(map(int, r)) for r in ids])


# ===========================================================================
def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task", choices=["chat", "var_rename", "induction"])
    ap.add_argument("--out", required=True, help="model folder to write")
    ap.add_argument("--minutes", type=float, default=1.0, help="wall-clock training budget")
    ap.add_argument("--data", default=".carry/data", help="folder written by tools/data_prep.py")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--size", choices=["full", "tiny", "cpu"], default="full", help="cpu: induction only")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--max-steps", type=int, default=0, help="stop earlier than --minutes (tests)")
    ap.add_argument("--tokenizer", choices=["hf", "py"], default="hf", help="chat: force the fallback")
    ap.add_argument("--chains", type=int, default=4, help="var_rename: digit assignments")
    ap.add_argument("--renames", type=int, default=12, help="var_rename: renames (chains+renames <= 26)")
    ap.add_argument("--eval-n", type=int, default=0, help="chat: words per evaluation (default 400); var_rename: sequences (default 16384, a multiple of 1024)")
    ap.add_argument("--lr", type=float, default=0, help="peak learning rate (default: the size's)")
    ap.add_argument("--batch", type=int, default=0, help="sequences per step (default: the size's)")
    ap.add_argument("--warmup", type=int, default=-1, help="warmup steps (default: the size's)")
    ap.add_argument("--mix", type=float, default=-1, help="var_rename: share of shorter sequences per batch (default: the size's)")
    ap.add_argument("--src-loss", type=float, default=-1, help="var_rename: loss weight at rename sources (default: the size's)")
    ap.add_argument("--eval-every", type=int, default=0, help="var_rename: accuracy per depth on 512 fixed sequences every N steps")
    ap.add_argument("--layers", type=int, default=0, help="number of layers (default: the size's)")
    ap.add_argument("--dim", type=int, default=0, help="hidden size (default: the size's; var_rename and induction)")
    ap.add_argument("--rope", type=float, default=0, help="RoPE theta (default 10000; var_rename)")
    ap.add_argument("--init", help="start from this folder's weights (same task and size)")
    ap.add_argument("--report", help="JSON report path (default OUT/../TASK_report.json)")
    args = ap.parse_args()
    if args.task == "chat" and not any(os.path.exists(os.path.join(args.data, "wordnet_synsets.tsv" + z))
                                       for z in ("", ".gz")):
        print("train.py: %s/wordnet_synsets.tsv(.gz) missing (run tools/data_prep.py)" % args.data, file=sys.stderr)
        return 2
    if args.chains + args.renames > 26 or args.chains < 1:
        print("train.py: --chains + --renames must be 1..26", file=sys.stderr)
        return 2
    global INIT_FROM
    INIT_FROM = args.init
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.set_num_threads(2)  # the GPU does the work; leave the cores to the other jobs
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        torch.set_num_threads(min(2, torch.get_num_threads()))  # shared CPU: at most 2 threads
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    if args.size not in SIZES[args.task]:
        print("train.py: no size %s for %s" % (args.size, args.task), file=sys.stderr)
        return 2
    hp = dict(SIZES[args.task][args.size])
    if args.lr:
        hp["lr"] = args.lr
    if args.batch > 0:
        hp["batch"] = args.batch
    if args.warmup >= 0:
        hp["warmup"] = args.warmup
    if args.mix >= 0:
        hp["mix"] = args.mix
    if args.src_loss >= 0:
        hp["src"] = args.src_loss
    if args.layers > 0:
        hp["layers"] = args.layers
    if args.dim > 0:
        hp["dim"] = args.dim
        hp["hidden"] = 4 * args.dim
    if args.rope > 0:
        hp["rope"] = args.rope
    rep = {"task": args.task, "command": " ".join(sys.argv), "seed": args.seed, "size": args.size,
           "hyper": hp, "torch": torch.__version__,
           "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"}
    log("%s: %s" % (args.task, json.dumps(rep)))
    t0 = time.time()
    rc = 0
    try:
        {"chat": task_chat, "var_rename": task_var_rename, "induction": task_induction}[args.task](
            args, hp, device, rep)
    except Exception as e:  # noqa: BLE001
        log("train.py %s FAILED: %r" % (args.task, e))
        traceback.print_exc()
        rep["error"] = repr(e)
        rc = 1
    rep["total_seconds"] = round(time.time() - t0, 1)
    path = args.report or os.path.join(os.path.dirname(os.path.abspath(args.out)), args.task + "_report.json")
    try:
        with open(path, "w") as f:
            json.dump(rep, f, indent=1, default=str)
        log("report: %s" % path)
    except OSError as e:
        log("could not write report %s: %r" % (path, e))
    return rc


if __name__ == "__main__":
    sys.exit(main())
