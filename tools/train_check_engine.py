"""train_check_engine.py - compares attnscope's logits and attention on a model
folder with tools/train_llama.py's PyTorch model on the same (saved) weights, and
attnscope's token ids with tools/train_bpe.py's encoder: two independent readings
of the same folder.

    /usr/bin/python3 tools/train_check_engine.py --attnscope build/attnscope DIR...

Prints one line per folder; exit 0 when every relative logits error is below 1e-4
and every token id list is equal, 1 otherwise, 2 on bad usage.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_bpe  # noqa: E402
import train_llama as L  # noqa: E402

TEXTS = ["What does river mean?", "3>k;7>m;k>b;m>q;b>x", "kQ7zPm2Xa9LrkQ7zPm2Xa9Lr",
         "Hello! It's 12 o'clock, and we're   late.\n"]


def check(exe, d, n_tokens, seed):
    m = L.load_folder(d)
    c = m.c
    r = random.Random(seed)
    ids = [r.randrange(c.vocab_size) for _ in range(n_tokens)]
    with tempfile.TemporaryDirectory() as tmp:
        lp, ap = os.path.join(tmp, "l.npy"), os.path.join(tmp, "a.npy")
        subprocess.run([exe, "logits", "--model", d, "--ids", ",".join(map(str, ids)), "--out", lp,
                        "--attn", ap], check=True, capture_output=True)
        a, at = np.load(lp), np.load(ap)
    with torch.no_grad():
        lg, att = m(torch.tensor([ids]), need_attn=True)
    b = lg[0].numpy()
    bt = torch.stack([x[0] for x in att]).numpy()
    rel = float(np.linalg.norm(a - b) / np.linalg.norm(b))
    enc = train_bpe.Encoder.from_file(os.path.join(d, "tokenizer.json"))
    same = 0
    for t in TEXTS:
        out = subprocess.run([exe, "tokenize", "--model", d, "--", t], check=True,
                             capture_output=True, text=True).stdout
        same += json.loads(out) == enc.encode(t)
    print("%s: %d random ids: logits rel err %.2e, max abs %.2e (max |logit| %.2f), attention max abs "
          "%.2e, argmax equal %d/%d; token ids equal on %d/%d texts"
          % (d, n_tokens, rel, abs(a - b).max(), abs(b).max(), abs(at - bt).max(),
             int((a.argmax(-1) == b.argmax(-1)).sum()), n_tokens, same, len(TEXTS)))
    return rel < 1e-4 and same == len(TEXTS)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attnscope", default="build/attnscope")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    if not os.access(a.attnscope, os.X_OK):
        print("train_check_engine: %s is not an executable (make first)" % a.attnscope, file=sys.stderr)
        return 2
    ok = True
    for d in a.dirs:
        try:
            ok &= check(a.attnscope, d, a.tokens, a.seed)
        except (OSError, subprocess.CalledProcessError, KeyError, ValueError) as e:
            print("%s: FAILED %r" % (d, e))
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
