#!/usr/bin/env python3
"""flash_tc_emu.py - k_flash_tc (engine/cuda/kernels.cuh) emulated lane by lane
on the CPU: the same tile layout in shared memory (row strides KS, VS), the
same fragment indices, mma.sync m16n8k16 per PTX's fragment layouts, f16
rounding of q, k, v and p, the causal mask and the online softmax; compared
with exact attention in double. It checks the kernel's index arithmetic for
head sizes and positions that no GPU run has covered yet; it must be kept in
step with the kernel by hand. The GPU runs of test_cuda check the layouts
themselves (head_dim 16 and 32 against transformers).
    python3 tools/flash_tc_emu.py     (a few seconds; exits 1 if any error > 1e-2)
"""
import math, random, struct, sys

def h(x):  # round to f16
    try:
        return struct.unpack('e', struct.pack('e', x))[0]
    except OverflowError:
        return math.inf if x > 0 else -math.inf

def mma(c, a, b0, b1):
    # c: [32][4] per lane, a: [32][4] regs each a pair (lo, hi), b0/b1: [32] pairs
    A = [[0.0] * 16 for _ in range(16)]
    B = [[0.0] * 8 for _ in range(16)]
    for l in range(32):
        g, t = l >> 2, l & 3
        A[g][2*t], A[g][2*t+1] = a[l][0]
        A[g+8][2*t], A[g+8][2*t+1] = a[l][1]
        A[g][2*t+8], A[g][2*t+9] = a[l][2]
        A[g+8][2*t+8], A[g+8][2*t+9] = a[l][3]
        B[2*t][g], B[2*t+1][g] = b0[l]
        B[2*t+8][g], B[2*t+9][g] = b1[l]
    for l in range(32):
        g, t = l >> 2, l & 3
        for (i, r, col) in ((0, g, 2*t), (1, g, 2*t+1), (2, g+8, 2*t), (3, g+8, 2*t+1)):
            c[l][i] += sum(A[r][k] * B[k][col] for k in range(16))

def kernel(q, K, V, T, pos0, HD, BQ=64):
    BK = 32 if HD > 64 else 64
    KS, VS, NT, DT = HD + 8, HD + 4, BK // 8, HD // 8
    scale = 1.0 / math.sqrt(HD)
    out = [[None] * HD for _ in range(T)]
    for bx in range((T + BQ - 1) // BQ):
        last_row = min(T, (bx + 1) * BQ) - 1
        n_keys = pos0 + last_row + 1
        for warp in range(BQ // 16):
            st = []
            for l in range(32):
                gid, tig = l >> 2, l & 3
                r0 = bx * BQ + warp * 16 + gid
                r1 = r0 + 8
                qa, qb = q[min(r0, T - 1)], q[min(r1, T - 1)]
                qf = []
                for ks in range(HD // 16):
                    c = ks * 16 + tig * 2
                    qf.append(((h(qa[c]), h(qa[c+1])), (h(qb[c]), h(qb[c+1])), (h(qa[c+8]), h(qa[c+9])), (h(qb[c+8]), h(qb[c+9]))))
                st.append(dict(r0=r0, r1=r1, pa=pos0 + r0, pb=pos0 + r1, qf=qf, o=[[0.0]*4 for _ in range(DT)],
                               ma=-math.inf, mb=-math.inf, la=0.0, lb=0.0))
            j0 = 0
            while j0 < n_keys:
                ks_ = [0.0] * (BK * KS)
                vs_ = [0.0] * (BK * VS)
                for e in range(BK * HD // 4):
                    j, d = e // (HD // 4), (e % (HD // 4)) * 4
                    if j0 + j < n_keys:
                        for x in range(4):
                            ks_[j * KS + d + x] = K[j0 + j][d + x]
                            vs_[j * VS + d + x] = V[j0 + j][d + x]
                s = [[[0.0]*4 for _ in range(NT)] for _ in range(32)]
                for n in range(NT):
                    for kk in range(HD // 16):
                        a = [st[l]['qf'][kk] for l in range(32)]
                        b0, b1 = [], []
                        for l in range(32):
                            gid, tig = l >> 2, l & 3
                            kp = (n * 8 + gid) * KS + kk * 16 + tig * 2
                            b0.append((h(ks_[kp]), h(ks_[kp+1])))
                            b1.append((h(ks_[kp+8]), h(ks_[kp+9])))
                        cc = [s[l][n] for l in range(32)]
                        mma(cc, a, b0, b1)
                xa = [-math.inf]*32; xb = [-math.inf]*32
                for l in range(32):
                    tig = l & 3
                    for n in range(NT):
                        for e in range(2):
                            key = j0 + n * 8 + tig * 2 + e
                            s[l][n][e] = s[l][n][e] * scale if key <= st[l]['pa'] else -math.inf
                            s[l][n][2+e] = s[l][n][2+e] * scale if key <= st[l]['pb'] else -math.inf
                            xa[l] = max(xa[l], s[l][n][e]); xb[l] = max(xb[l], s[l][n][2+e])
                # the quad reductions (shuffles xor 1 and 2)
                xa2 = [max(xa[(l & ~3):(l & ~3) + 4]) for l in range(32)]
                xb2 = [max(xb[(l & ~3):(l & ~3) + 4]) for l in range(32)]
                pf = []
                for l in range(32):
                    S_ = st[l]
                    na, nb = max(S_['ma'], xa2[l]), max(S_['mb'], xb2[l])
                    ca = 0.0 if S_['ma'] == -math.inf else math.exp(S_['ma'] - na)
                    cb = 0.0 if S_['mb'] == -math.inf else math.exp(S_['mb'] - nb)
                    S_['ma'], S_['mb'] = na, nb
                    regs = [[None]*4 for _ in range(BK // 16)]
                    sa = sb = 0.0
                    for n in range(NT):
                        p = [0.0 if s[l][n][i] == -math.inf else math.exp(s[l][n][i] - (na if i < 2 else nb)) for i in range(4)]
                        sa += p[0] + p[1]; sb += p[2] + p[3]
                        regs[n // 2][(n % 2) * 2] = (h(p[0]), h(p[1]))
                        regs[n // 2][(n % 2) * 2 + 1] = (h(p[2]), h(p[3]))
                    S_['la'] = S_['la'] * ca + sa; S_['lb'] = S_['lb'] * cb + sb
                    S_['ca'], S_['cb'] = ca, cb
                    pf.append(regs)
                for dn in range(DT):
                    for l in range(32):
                        o = st[l]['o'][dn]
                        o[0] *= st[l]['ca']; o[1] *= st[l]['ca']; o[2] *= st[l]['cb']; o[3] *= st[l]['cb']
                    for kk in range(BK // 16):
                        a = [pf[l][kk] for l in range(32)]
                        b0, b1 = [], []
                        for l in range(32):
                            gid, tig = l >> 2, l & 3
                            vp = (kk * 16 + tig * 2) * VS + dn * 8 + gid
                            b0.append((h(vs_[vp]), h(vs_[vp + VS])))
                            b1.append((h(vs_[vp + 8 * VS]), h(vs_[vp + 9 * VS])))
                        cc = [st[l]['o'][dn] for l in range(32)]
                        mma(cc, a, b0, b1)
                j0 += BK
            la = [st[l]['la'] for l in range(32)]; lb = [st[l]['lb'] for l in range(32)]
            for l in range(32):
                tig = l & 3
                LA = sum(la[(l & ~3):(l & ~3) + 4]); LB = sum(lb[(l & ~3):(l & ~3) + 4])
                for dn in range(DT):
                    d = dn * 8 + tig * 2
                    if st[l]['r0'] < T:
                        out[st[l]['r0']][d] = st[l]['o'][dn][0] / LA; out[st[l]['r0']][d+1] = st[l]['o'][dn][1] / LA
                    if st[l]['r1'] < T:
                        out[st[l]['r1']][d] = st[l]['o'][dn][2] / LB; out[st[l]['r1']][d+1] = st[l]['o'][dn][3] / LB
    return out

def exact(q, K, V, T, pos0, HD):
    out = []
    for i in range(T):
        n = pos0 + i + 1
        sc = [sum(q[i][d] * K[j][d] for d in range(HD)) / math.sqrt(HD) for j in range(n)]
        m = max(sc); p = [math.exp(x - m) for x in sc]; L = sum(p)
        out.append([sum(p[j] * V[j][d] for j in range(n)) / L for d in range(HD)])
    return out

random.seed(1)
worst = 0.0
for HD, T, pos0 in [(16, 70, 0), (32, 70, 0), (64, 70, 0), (64, 40, 100), (128, 50, 30)]:
    n = pos0 + T
    q = [[random.gauss(0, 1) for _ in range(HD)] for _ in range(T)]
    K = [[random.gauss(0, 1) for _ in range(HD)] for _ in range(n)]
    V = [[random.gauss(0, 1) for _ in range(HD)] for _ in range(n)]
    a = kernel(q, K, V, T, pos0, HD); b = exact(q, K, V, T, pos0, HD)
    num = sum((a[i][d] - b[i][d]) ** 2 for i in range(T) for d in range(HD))
    den = sum(b[i][d] ** 2 for i in range(T) for d in range(HD))
    err = math.sqrt(num / den)
    worst = max(worst, err)
    print("head_dim %3d, %3d rows after %3d cached: rel L2 %.3g" % (HD, T, pos0, err), flush=True)
sys.exit(0 if worst <= 1e-2 else 1)
