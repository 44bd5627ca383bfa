"""vr_heads.py - what the var_rename model's heads do, on the CPU, from a saved
folder: accuracy per hop depth, mean attention per layer and head at three
kinds of position, and where each head looks on given prompts.

    /usr/bin/python3 tools/vr_heads.py models/var_rename [--chains 4 --renames 12]
        [--n 2048] [--prompt '3>k;7>m;k>b;m>q;b>x' ...]

Positions, for a statement `s>n;` at p (s at p, `>` at p+1, n at p+2):
  assigned n (renames): the previous token `>`, the source s (two back), the
      position where s was itself assigned (s's previous occurrence), the
      chain's digit, the `;` tokens;
  source s (renames): s's previous occurrence (where s was assigned), the
      token two back, the chain's digit, itself;
  assigned n of a digit statement `d>n;`: the digit (two back).
Layers and heads count from 0, as the TUI labels them.
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as T  # noqa: E402
import train_llama as L  # noqa: E402


def table(att, rows, cols):
    """rows: list of (batch, pos) index arrays; cols: dict name -> key position array
    (or 'semi' for the sum over ';' tokens). Mean attention per layer/head."""
    out = {}
    b, p = rows
    bt, pt = torch.from_numpy(b), torch.from_numpy(p)
    for li, a in enumerate(att):
        for h in range(a.shape[1]):
            r = a[bt, h, pt]
            ar = torch.arange(r.shape[0])
            v = {}
            for name, k in cols.items():
                if isinstance(k, str):
                    v[name] = float((r * SEMI[bt]).sum(-1).mean())
                else:
                    v[name] = float(r[ar, torch.from_numpy(k)].mean())
            out["L%dH%d" % (li, h)] = v
    return out


def show(title, tab, cols, lo=0.3):
    print("\n%s (mean attention; >= %.1f in bold)\n" % (title, lo))
    print("| head | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for hn, v in tab.items():
        cells = [("**%.3f**" if v[c] >= lo else "%.3f") % v[c] for c in cols]
        print("| %s | %s |" % (hn, " | ".join(cells)))


def main():
    global SEMI
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--renames", type=int, default=12)
    ap.add_argument("--n", type=int, default=2048, help="fresh sequences for the accuracy (multiple of 1024)")
    ap.add_argument("--prompt", action="append", default=[])
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    torch.set_num_threads(2)
    m = L.load_folder(a.folder)
    K, R = a.chains, a.renames
    rng = np.random.default_rng(a.seed)
    if a.n:
        T.vr_eval(m, rng, K, R, torch.device("cpu"), a.n)
    ids, tgt, depth, src_pos, root_pos = T.vr_generate(rng, 512, K, R)
    with torch.no_grad():
        _, att = m(torch.from_numpy(ids), need_attn=True)
    SEMI = torch.from_numpy(ids == 1 + T.VR_SYMBOLS.index(";")).float()
    # assigned variables of renames
    b, p = np.nonzero(depth >= 1)
    t1 = table(att, (b, p), {"prev `>`": p - 1, "source s": p - 2, "s assigned": src_pos[b, p],
                             "digit": root_pos[b, p], "`;`": "semi"})
    show("At the assigned variable n of renames `s>n;` (%d positions)" % len(b), t1, list(t1["L0H0"]))
    # rename sources: position p = (assigned position) - 2
    t2 = table(att, (b, p - 2), {"s assigned (prev. occurrence)": src_pos[b, p], "two back": p - 4,
                                 "digit": root_pos[b, p], "itself": p - 2})
    show("At the source s of renames `s>n;` (%d positions)" % len(b), t2, list(t2["L0H0"]))
    b0, p0 = np.nonzero(depth == 0)
    t3 = table(att, (b0, p0), {"digit (two back)": p0 - 2, "prev `>`": p0 - 1, "itself": p0})
    show("At the assigned variable of digit statements `d>n;` (%d positions)" % len(b0), t3, list(t3["L0H0"]))
    for pr in a.prompt:
        x = torch.tensor([[1 + T.VR_SYMBOLS.index(ch) for ch in pr]])
        with torch.no_grad():
            lg, at = m(x, need_attn=True)
        pr_ = torch.softmax(lg[0, -1], -1)
        top = torch.topk(pr_, 3)
        print("\nprompt %s: top candidates %s" % (pr, ", ".join("'%s' %.3f" % (T.VR_SYMBOLS[int(i) - 1], float(v))
                                                               for v, i in zip(top.values, top.indices))))
        last = x.shape[1] - 1
        for li, al in enumerate(at):
            cells = []
            for h in range(al.shape[1]):
                row = al[0, h, last]
                j = int(row.argmax())
                cells.append("H%d %d'%s' %.2f" % (h, j, pr[j], float(row[j])))
            print("  layer %d: %s" % (li, "   ".join(cells)))


if __name__ == "__main__":
    main()
