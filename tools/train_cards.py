"""train_cards.py - drafts each bundled model's card (models/NAME/README.md) from the
JSON report tools/train.py wrote: shape, data recipe, command, loss curve,
evaluation, attention analysis and the transformers check. Prose that needs a
person (what the figures mean, limitations) goes in by hand afterwards.

    /usr/bin/python3 tools/train_cards.py --reports /tmp/gpu_batch/logs --models models
"""
import argparse
import json
import os
import sys

PROMPTS = {
    "chat": "What does teacher mean?",
    "var_rename": "3>k;7>m;k>b;m>q;b>x",
    "induction": "kQ7zPm2Xa9LrkQ7zPm2Xa9Lr",
}


def curve_table(curve, n=12):
    if not curve:
        return "(no loss recorded)\n"
    step = max(1, len(curve) // n)
    pts = curve[::step]
    if pts[-1] != curve[-1]:
        pts.append(curve[-1])
    rows = ["| step | seconds | loss |", "|---:|---:|---:|"]
    rows += ["| %d | %.0f | %.4f |" % (s, t, l) for s, t, l in pts]
    return "\n".join(rows) + "\n"


def shape(r):
    h = r["hyper"]
    return ("LLaMA (`LlamaForCausalLM`): %d layers, hidden %d, %d query heads / %d KV heads "
            "(head_dim %d), SwiGLU %d, RMSNorm eps 1e-5, RoPE theta 10000, context %d, "
            "vocabulary %s, %s parameters, BF16 weights."
            % (h["layers"], h["dim"], h["heads"], h["kv"], h["dim"] // h["heads"], h["hidden"],
               h["ctx"], r.get("vocab", "see tokenizer.json"), format(r.get("parameters", 0), ",")))


def hf_lines(r):
    c = r.get("hf_check", {})
    out = ["transformers %s, `AutoModelForCausalLM` (eager attention, float32) on the saved "
           "folder against train.py's model on the same BF16 weights:" % c.get("transformers", "?")]
    if "logits_max_abs_diff" in c:
        out.append("max |difference| of logits %.3g (largest |logit| %.3g), argmax equal on %s positions."
                   % (c["logits_max_abs_diff"], c["logits_max_abs"], c["argmax_agree"]))
    for k in ("tokenizer_same", "chat_template_same"):
        if k in c:
            out.append("%s: %s." % ({"tokenizer_same": "AutoTokenizer ids equal to the training ids",
                                     "chat_template_same": "apply_chat_template equal to the training text"}[k],
                                    c[k]))
    for k in ("error", "model_error", "tokenizer_error"):
        if k in c:
            out.append("FAILED (%s): %s" % (k, c[k]))
    return " ".join(out)


def train_lines(r):
    t = r.get("train", {})
    return ("%s steps, %s tokens in %s s of training on %s (torch %s); bf16 autocast, AdamW "
            "(0.9, 0.95), weight decay 0.1, peak learning rate %g, warmup %d steps, cosine to 10%% "
            "over the wall-clock budget, gradient clipping 1.0, seed %d."
            % (t.get("steps"), format(t.get("tokens", 0), ","), t.get("seconds"), r.get("device"),
               r.get("torch"), r["hyper"]["lr"], r["hyper"]["warmup"], r.get("seed", 0)))


def card_chat(r):
    d = r.get("data", {})
    eh, et = r.get("eval_held_out", {}), r.get("eval_trained", {})
    s = ["# chat: the default model", "",
         "Suggested prompt: " + PROMPTS["chat"], "",
         "A small chat model that explains English words, trained from scratch on WordNet. ",
         "It is what `make run` opens.", "", "## Shape", "", shape(r), "",
         "Tokenizer: byte-level BPE (%s, %s ids: `<|endoftext|>`=0, `<|im_start|>`=1, "
         "`<|im_end|>`=2, 256 byte symbols, merges), ChatML chat template, eos `<|im_end|>`."
         % ({"hf": "trained with HF tokenizers", "py": "trained with tools/train_bpe.py"}
            .get(r.get("tokenizer"), "?"), r.get("vocab")), "",
         "## Data", "",
         "%s conversations (%s tokens) built by tools/train.py from tools/data_prep.py's files "
         "(Debian wordnet-base, bible-kjv-text, fortunes): for every WordNet lemma entry "
         "(%s), `What does X mean?` (and 5 other phrasings) answered with its most frequent "
         "sense's gloss, `What is another word for X?` with its synonyms, `Use X in a sentence.` "
         "with a WordNet example that contains X; some follow-up turns (another sense, an example), "
         "a few system messages, %s fortunes, %s KJV verses and a few greetings. Loss on the "
         "assistant's tokens only. Held out: %s of the %s everyday words (single words tagged in "
         "WordNet's sense-tagged corpus), none of whose own questions were trained."
         % (format(d.get("conversations", 0), ","), format(d.get("tokens", 0), ","),
            format(d.get("lemma_entries", 0), ","), d.get("fortunes"), d.get("verses"),
            d.get("held_out"), format(d.get("everyday_words", 0), ",")), "",
         "## Training", "", "`%s` (through tools/gpu_train.sh)" % r.get("command"), "",
         train_lines(r), "", curve_table(r.get("train", {}).get("curve")),
         "## Evaluation", "",
         "Greedy answers to `What does X mean?` (48 tokens at most). *overlap*: the answer "
         "shares at least one content word (not a stop word, not X itself) with some WordNet "
         "definition of X; *on topic*: the answer names X; *gloss reproduced*: the answer "
         "contains the first sense's definition verbatim; *chance*: the overlap of the same "
         "answers scored against another word's definitions.", "",
         "| words | n | overlap | chance | on topic | gloss reproduced |", "|---|---:|---:|---:|---:|---:|"]
    for name, e in (("held out (never trained)", eh), ("trained", et)):
        if "n" in e:
            s.append("| %s | %d | %.3f | %.3f | %.3f | %.3f |" % (name, e["n"], e["overlap"],
                                                                e.get("overlap_chance", float("nan")),
                                                                e["on_topic"], e["first_sense_exact"]))
    s += ["", "Samples (held-out words):", ""]
    for x in eh.get("samples", []):
        s.append("- **%s**: %s  \n  (WordNet: %s)" % (x["word"], x["answer"].strip(), x["first_gloss"]))
    s += ["", "Other prompts:", ""]
    for x in r.get("samples", []):
        s.append("- `%s` -> %s" % (x["q"], x["a"].strip().replace("\n", " ")))
    a = r.get("attention_to_word", {})
    if a.get("top"):
        s += ["", "## Attention to the asked word", "",
              "Mean attention that the answer's tokens pay to the asked word's tokens in "
              "`What does X mean?` (64 held-out words; a uniform causal head would give %.3f):"
              % a["uniform"], ""]
        s += ["- L%dH%d: %.3f" % (t["layer"], t["head"], t["mass"]) for t in a["top"]]
    s += ["", "## Check against transformers", "", hf_lines(r), "",
          "## Limits", "",
          "- It knows words, not the world: every answer is shaped like a WordNet gloss, a "
          "WordNet example or a synonym list, and for a word it has not learnt it writes a "
          "plausible-looking definition that can be wrong (check the held-out figures).",
          "- Held-out words were never asked about in training, but they can occur inside other "
          "words' definitions, examples and synonym lists.",
          "- Short conversations: trained on 512-token windows of packed dialogues.",
          "- Fortunes and KJV verses are there for fluency; it quotes them loosely.", ""]
    return "\n".join(s) + "\n"


def card_var_rename(r):
    c = r.get("task_config", {})
    e = r.get("eval", {})
    s = ["# var_rename: following a chain of renames", "",
         "Suggested prompt: " + PROMPTS["var_rename"], "",
         "The task of the iluvattnshun project: `3>k;` puts the digit 3 into variable k, "
         "`k>b;` copies k into b. At every assigned variable (the letter after `>`) the model "
         "predicts the digit it holds; the next-token candidates after a prompt that ends on "
         "a variable show that digit. What the model writes after it is not trained.", "",
         "## Shape", "", shape(r), "",
         "Tokenizer: 39 single-character tokens (`<|endoftext|>`=0, digits 1-10, a-z 11-36, "
         "`>` 37, `;` 38) as a byte-level BPE tokenizer.json without merges; no chat template.", "",
         "## Task configuration", "",
         "%s chains, %s renames: %s statements, %s tokens. Each chain starts with `d>v;` "
         "(random digit, random variable): the first statement, the other starts at random "
         "places in the first half. Each rename extends the shallower of two chains drawn at "
         "random among those started so far, from its newest variable to a letter not used "
         "before in the sequence, so every variable is assigned once (no overwriting) and the "
         "hop depth of a variable is its distance from the digit. Loss only at assigned "
         "variables (%s per sequence)."
         % (c.get("chains"), c.get("renames"), c.get("statements"), c.get("tokens"), c.get("statements")), "",
         "## Training", "", "`%s` (through tools/gpu_train.sh)" % r.get("command"), "",
         train_lines(r), "", curve_table(r.get("train", {}).get("curve")),
         "## Accuracy", ""]
    if "accuracy" in e:
        s += ["Overall %.4f over %s predictions on fresh sequences (argmax of the saved model)."
              % (e["accuracy"], format(e["n"], ",")), "", "| hop depth | accuracy | n |", "|---:|---:|---:|"]
        s += ["| %s | %.4f | %d |" % (k, v["acc"], v["n"]) for k, v in e["by_depth"].items()]
    a = r.get("analysis", {})
    if "heads" in a:
        names = ["prev_token", "source_token", "source_assignment", "root_digit", "semicolons", "self"]
        s += ["", "## What the heads do", "",
              "Mean attention probability at the assigned variable n of renames `s>n;`, to: the "
              "previous token (`>`), the source s (two back), the position where s was itself "
              "assigned (its previous occurrence), the chain's digit, all `;` tokens, itself.", "",
              "| head | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for k, v in a["heads"].items():
            s.append("| %s | %s |" % (k, " | ".join("%.3f" % v[n] for n in names)))
        s += ["", "Example `%s`: at the last variable (position %s) each head's most attended "
              "position: %s." % (a.get("example"), a.get("example_last_position"),
                                 ", ".join("%s->%s" % kv for kv in a.get("example_top_position", {}).items()))]
    s += ["", "## Check against transformers", "", hf_lines(r), "",
          "## Limits", "",
          "- Only the digit at an assigned variable is trained; after it the model's output is "
          "not meaningful. End a prompt on a variable (after `>`) and read the top candidate.",
          "- Prompts outside the trained format (a variable assigned twice, more than 26 "
          "statements, more than %s chains, a variable used before it is assigned) have no "
          "defined answer." % c.get("chains"),
          "- No BOS token: the first token of the prompt is the first token the model sees, as "
          "in training.", ""]
    return "\n".join(s) + "\n"


def card_induction(r):
    c = r.get("task_config", {})
    e = r.get("eval", {})
    s = ["# induction: a previous-token head and an induction head", "",
         "Suggested prompt: " + PROMPTS["induction"], "",
         "A two-layer model trained on random strings of letters and digits that repeat: "
         "it can only predict a token by finding where the current token occurred before and "
         "copying what came next ([A][B] ... [A] -> [B], Olsson et al. 2022).", "",
         "## Shape", "", shape(r), "",
         "Tokenizer: 63 single-character tokens (`<|endoftext|>`=0, a-z, A-Z, 0-9) as a "
         "byte-level BPE tokenizer.json without merges; no chat template.", "",
         "## Task", "",
         "Sequences of %s tokens: a random block of %s-%s symbols (of %s) repeated until the end; "
         "loss on every token after the first block." % (c.get("seq"), c.get("block_len", [0, 0])[0],
                                                         c.get("block_len", [0, 0])[1], c.get("symbols")), "",
         "## Training", "", "`%s` (through tools/gpu_train.sh)" % r.get("command"), "",
         train_lines(r), "", curve_table(r.get("train", {}).get("curve")), "## Scores", ""]
    if "accuracy_on_repeat" in e:
        s += ["On 256 fresh sequences of a 64-token block repeated once: next-token accuracy on the "
              "repeat %.4f. Previous-token score: mean attention from position i to i-1. "
              "Induction score: mean attention from a position i in the repeat to i-63, the "
              "token after the previous occurrence of token i." % e["accuracy_on_repeat"], "",
              "| layer | head | previous-token score | induction score |", "|---:|---:|---:|---:|"]
        for li, pt in enumerate(e["prev_token"].values()):
            ind = list(e["induction"].values())[li]
            s += ["| %d | %d | %.3f | %.3f |" % (li, h, pt[h], ind[h]) for h in range(len(pt))]
    s += ["", "## Check against transformers", "", hf_lines(r), "",
          "## Limits", "",
          "- Its vocabulary is 62 letters and digits: spaces and punctuation are not tokens "
          "(the tokenizer drops them).",
          "- It has learnt nothing but copying: on text that does not repeat its predictions "
          "are uniform guesses.", ""]
    return "\n".join(s) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", required=True)
    ap.add_argument("--models", default="models")
    ap.add_argument("--suffix", default="", help="write README.md<suffix> (e.g. .draft)")
    a = ap.parse_args()
    rc = 0
    for task, fn in (("chat", card_chat), ("var_rename", card_var_rename), ("induction", card_induction)):
        p = os.path.join(a.reports, task + "_report.json")
        if not os.path.exists(p):
            print("train_cards: no %s" % p, file=sys.stderr)
            rc = 1
            continue
        r = json.load(open(p))
        out = os.path.join(a.models, task, "README.md" + a.suffix)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            f.write(fn(r))
        print("wrote %s" % out)
    return rc


if __name__ == "__main__":
    sys.exit(main())
