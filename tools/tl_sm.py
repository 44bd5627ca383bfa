#!/usr/bin/env python3
"""tl_sm.py - per-multiprocessor view of a raw decode timeline
(ATTNSCOPE_CUDA_TIMELINE_RAW=FILE): for each kernel kind, each block's end
after the kernel's first release, averaged per multiprocessor; whether the
same multiprocessors are slow in every kernel (correlation of the per-SM
means over the even and the odd kernels of that kind).
    python3 tools/tl_sm.py FILE [KIND ...]"""
import sys
from collections import defaultdict


def corr(a, b):
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    sab = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    saa = sum((x - ma) ** 2 for x in a)
    sbb = sum((y - mb) ** 2 for y in b)
    return sab / (saa * sbb) ** 0.5 if saa > 0 and sbb > 0 else float("nan")


def q(v, f):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * f))]


if len(sys.argv) < 2:
    sys.exit("usage: python3 tools/tl_sm.py FILE [KIND ...]")
try:
    rows = [l.split() for l in open(sys.argv[1])]
except OSError as e:
    sys.exit(f"tl_sm.py: {sys.argv[1]}: {e.strerror}")
for i, r in enumerate(rows):
    if len(r) != 7 or not all(x.isdigit() for x in r[:1] + r[2:]):
        sys.exit(f"tl_sm.py: {sys.argv[1]}:{i + 1}: not a raw timeline line (kernel kind block sm start wait end)")
kinds = sys.argv[2:] or sorted({r[1] for r in rows})
for kind in kinds:
    ks = defaultdict(list)
    for k, kd, b, sm, st, wt, en in rows:
        if kd == kind:
            ks[int(k)].append((int(sm), int(wt), int(en)))
    if not ks:
        continue
    per = []   # per kernel: {sm: [end after first release, us]}
    for k in sorted(ks):
        bl = ks[k]
        t0 = min(w for _, w, _ in bl)
        d = defaultdict(list)
        for sm, wt, en in bl:
            d[sm].append((en - t0) / 1e3)
        per.append(d)
    sms = sorted(set().union(*[set(d) for d in per]))

    def sm_mean(ds, sm):   # mean block end of sm over the kernels ds where it ran blocks
        v = [x for d in ds for x in d.get(sm, [])]
        return sum(v) / len(v) if v else None

    allm = [sm_mean(per, sm) for sm in sms]
    nb = sum(len(v) for d in per for v in d.values()) / len(per)
    line = (f"{kind}: {len(per)} kernels, {nb:.0f} blocks on {len(sms)} SMs; per-SM mean end (us) "
            f"min {min(allm):.2f} p10 {q(allm, .1):.2f} p50 {q(allm, .5):.2f} p90 {q(allm, .9):.2f} max {max(allm):.2f}")
    pairs = [(sm_mean(per[0::2], sm), sm_mean(per[1::2], sm)) for sm in sms]
    pairs = [(e, o) for e, o in pairs if e is not None and o is not None]
    if len(pairs) > 1:
        line += f"; even vs odd kernels r = {corr([e for e, _ in pairs], [o for _, o in pairs]):.2f}"
    print(line)
    order = sorted(range(len(sms)), key=lambda i: allm[i])
    print("  slowest SMs:", " ".join(f"{sms[i]}:{allm[i]:.1f}" for i in order[-12:]))
    print("  fastest SMs:", " ".join(f"{sms[i]}:{allm[i]:.1f}" for i in order[:12]))
    # block end spread within one SM (two blocks of the same kernel)
    spread = [max(v) - min(v) for d in per for v in d.values() if len(v) > 1]
    if spread:
        print(f"  same-SM blocks' end difference: p50 {q(spread, .5):.2f} p90 {q(spread, .9):.2f} us")
