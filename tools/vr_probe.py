"""vr_probe.py - small, step-scheduled var_rename training runs on the CPU, to compare
training recipes (shorter sequences mixed in, loss at rename sources, learning rate,
shape) by accuracy per hop depth on 512 fixed fresh sequences every --eval-every
steps. Same generator and batches as tools/train.py var_rename; no files written.

    /usr/bin/python3 tools/vr_probe.py --name base --K 2 --R 4 --layers 3 --heads 2 --steps 400
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as T, train_llama as L
ap = argparse.ArgumentParser()
ap.add_argument("--name"); ap.add_argument("--K", type=int, default=3); ap.add_argument("--R", type=int, default=9)
ap.add_argument("--layers", type=int, default=4); ap.add_argument("--dim", type=int, default=64)
ap.add_argument("--heads", type=int, default=4); ap.add_argument("--hidden", type=int, default=256)
ap.add_argument("--lr", type=float, default=3e-3); ap.add_argument("--warmup", type=int, default=30)
ap.add_argument("--batch", type=int, default=32); ap.add_argument("--steps", type=int, default=300)
ap.add_argument("--src", type=float, default=0.0); ap.add_argument("--mix", type=float, default=0.0)
ap.add_argument("--rope", type=float, default=10000.0); ap.add_argument("--wd", type=float, default=0.1)
ap.add_argument("--eval-every", type=int, default=50); ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--aux", type=float, default=0.0, help="weight of an auxiliary loss: a linear read-out of layer --aux-layer's output predicts the token two back (training only)")
ap.add_argument("--aux-layer", type=int, default=0)
ap.add_argument("--tie", action="store_true", help="tie the embedding and the output matrix")
ap.add_argument("--deep", type=float, default=0.0, help="weight of the same loss read from every earlier layer's output through the final norm and lm_head (training only)")
ap.add_argument("--emb-shared", type=float, default=0.0, help="add one shared random vector of this std to every embedding row at init")
a = ap.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(a.seed)
K, R = a.K, a.R; S = K + R
cfg = L.Cfg(vocab_size=39, hidden_size=a.dim, num_hidden_layers=a.layers, num_attention_heads=a.heads,
            num_key_value_heads=a.heads, intermediate_size=a.hidden, max_position_embeddings=256,
            rope_theta=a.rope, tie_word_embeddings=a.tie)
m = L.Llama(cfg); m.init_weights(torch.Generator().manual_seed(a.seed))
if a.emb_shared > 0:  # a component common to all tokens: position-only attention from the start
    with torch.no_grad():
        m.model.embed_tokens.weight += a.emb_shared * torch.randn(1, a.dim, generator=torch.Generator().manual_seed(a.seed + 7))
aux_head = torch.nn.Linear(a.dim, 39)
aux_out = {}
deep_out = []
if a.deep > 0:
    for li in range(a.layers - 1):
        m.model.layers[li].register_forward_hook(lambda mod, inp, out: deep_out.append(out[0]))
if a.aux > 0:
    m.model.layers[a.aux_layer].register_forward_hook(lambda mod, inp, out: aux_out.__setitem__("x", out[0]))
    m.add_module("aux_head", aux_head)
decay = [p for n, p in m.named_parameters() if p.dim() >= 2]; nod = [p for n, p in m.named_parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": nod, "weight_decay": 0}], lr=a.lr, betas=(0.9, 0.95))
rng = np.random.default_rng(a.seed)

def gen(B):
    return T.vr_batch(rng, B, K, R, a.mix, a.src)

erng = np.random.default_rng(999)
EV = T.vr_generate(erng, 512, K, R)
def evaluate():
    m.eval()
    with torch.no_grad():
        lg, _ = m(torch.from_numpy(EV[0]))
    m.train()
    pred = lg.argmax(-1).numpy(); tgt, depth = EV[1], EV[2]; msk = tgt >= 0
    per = {int(d): float((pred[depth == d] == tgt[depth == d]).mean()) for d in np.unique(depth[msk])}
    return float((pred[msk] == tgt[msk]).mean()), per

t0 = time.time(); hist = []
for step in range(1, a.steps + 1):
    lr = a.lr * min(1.0, step / a.warmup) if step <= a.warmup else a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - a.warmup) / (a.steps - a.warmup))))
    for g in opt.param_groups: g["lr"] = lr
    ids, tgt, w = gen(a.batch)
    deep_out.clear()
    lg, _ = m(torch.from_numpy(ids))
    lt = F.cross_entropy(lg.reshape(-1, 39), torch.from_numpy(tgt).reshape(-1), reduction="none")
    wt = torch.from_numpy(w).reshape(-1); loss = (lt * wt).sum() / wt.sum()
    for xo in deep_out:
        dl = F.cross_entropy(m.lm_head(m.model.norm(xo)).reshape(-1, 39), torch.from_numpy(tgt).reshape(-1), reduction="none")
        loss = loss + a.deep * (dl * wt).sum() / wt.sum() / len(deep_out)
    if a.aux > 0:
        x2 = torch.from_numpy(ids)
        al = F.cross_entropy(aux_head(aux_out["x"][:, 2:]).reshape(-1, 39), x2[:, :-2].reshape(-1))
        loss = loss + a.aux * al
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step()
    if step % a.eval_every == 0 or step == a.steps:
        acc, per = evaluate()
        hist.append((step, round(time.time() - t0), round(loss.item(), 3), round(acc, 4)))
        print("%s step %d %ds loss %.3f acc %.4f  %s" % (a.name, step, time.time() - t0, loss.item(), acc,
              " ".join("%d:%.2f" % (d, v) for d, v in per.items() if d <= 8)), flush=True)
