"""train_bpe.py - a small pure-Python byte-level BPE (GPT-2 style) trainer, encoder
and tokenizer.json writer, used where HF tokenizers is missing.

The tokenizer.json it writes has the structure HF tokenizers writes for a BPE model
with a ByteLevel pre-tokenizer (add_prefix_space false, GPT-2 regex), a ByteLevel
post-processor and a ByteLevel decoder, so HF tokenizers, transformers and
attnscope load it the same way. The regex below is the GPT-2 split rewritten for
Python's `re` (\\p{L} as [^\\W\\d_], \\p{N} as \\d): identical on ASCII text,
which is all the bundled training data contains.
"""
import heapq
import json
import re
from collections import Counter

# GPT-2's split: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
_SPLIT = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")


def bytes_to_unicode():
    """GPT-2's reversible map from the 256 byte values to printable characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) \
        + list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


BYTE_ENC = bytes_to_unicode()
BYTE_DEC = {v: k for k, v in BYTE_ENC.items()}


def pretokenize(text):
    """Splits plain text (no special tokens) into byte-level pre-tokens."""
    return ["".join(BYTE_ENC[b] for b in piece.encode("utf-8")) for piece in _SPLIT.findall(text)]


def train(texts, vocab_size, specials, min_frequency=2):
    """Learns merges from an iterable of texts. Returns (vocab dict token->id, merges
    list of (a, b)). Ids: the special tokens first, then the 256 byte symbols in
    byte order, then one token per merge. Ties between equally frequent pairs go
    to the lexicographically smallest pair, so runs are reproducible."""
    counts = Counter()
    for t in texts:
        counts.update(pretokenize(t))
    words = [list(w) for w in counts]
    freq = [counts[w] for w in counts]
    vocab = {}
    for s in specials:
        vocab[s] = len(vocab)
    for b in range(256):
        vocab[BYTE_ENC[b]] = len(vocab)
    pair_count = Counter()
    where = {}
    for i, w in enumerate(words):
        for p in zip(w, w[1:]):
            pair_count[p] += freq[i]
            where.setdefault(p, set()).add(i)
    # Max-heap on (count, then smallest pair): entries go stale and are skipped.
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merges = []
    while len(vocab) < vocab_size and heap:
        negc, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -negc:
            continue
        if -negc < min_frequency:
            break
        a, b = pair
        new = a + b
        merges.append(pair)
        if new not in vocab:
            vocab[new] = len(vocab)
        changed = set()
        for i in list(where.get(pair, ())):
            w = words[i]
            f = freq[i]
            for p in zip(w, w[1:]):
                pair_count[p] -= f
                changed.add(p)
                s = where.get(p)
                if s is not None:
                    s.discard(i)
            out = []
            j = 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    out.append(new)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            words[i] = out
            for p in zip(out, out[1:]):
                pair_count[p] += f
                changed.add(p)
                where.setdefault(p, set()).add(i)
        for p in changed:
            c = pair_count.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, p))
            else:
                pair_count.pop(p, None)
                where.pop(p, None)
    return vocab, merges


def tokenizer_json(vocab, merges, specials):
    """The tokenizer.json object (HF tokenizers' layout) for a byte-level BPE.
    merges may be empty (a fixed vocabulary of single symbols)."""
    added = [{"id": vocab[s], "content": s, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True} for s in specials]
    bl = {"add_prefix_space": False, "trim_offsets": False, "use_regex": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": dict({"type": "ByteLevel"}, **bl),
        "post_processor": dict({"type": "ByteLevel"}, **bl),
        "decoder": dict({"type": "ByteLevel"}, **bl),
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None,
            "continuing_subword_prefix": None, "end_of_word_suffix": None,
            "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": vocab, "merges": [[a, b] for a, b in merges],
        },
    }


def write_tokenizer(path, vocab, merges, specials):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(tokenizer_json(vocab, merges, specials), f, ensure_ascii=False, indent=1)
        f.write("\n")


class Encoder:
    """Encodes text the way HF tokenizers does for a tokenizer.json written above:
    special tokens split out first, then pre-tokens, then merges by rank.
    Pre-tokens whose symbols are missing from the vocabulary are dropped symbol
    by symbol (HF BPE with no unk token does the same)."""

    def __init__(self, tj):
        m = tj["model"]
        self.vocab = m["vocab"]
        self.inv = {v: k for k, v in self.vocab.items()}
        mm = [tuple(x.split(" ")) if isinstance(x, str) else tuple(x) for x in m["merges"]]
        self.rank = {p: i for i, p in enumerate(mm)}
        self.specials = sorted((a["content"] for a in tj["added_tokens"]), key=len, reverse=True)
        self.cache = {}
        self._sp = re.compile("(" + "|".join(re.escape(s) for s in self.specials) + ")") \
            if self.specials else None

    @classmethod
    def from_file(cls, path):
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f))

    def _bpe(self, word):
        ids = self.cache.get(word)
        if ids is not None:
            return ids
        syms = list(word)
        while len(syms) > 1:
            best = None
            for i, p in enumerate(zip(syms, syms[1:])):
                r = self.rank.get(p)
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            a, b = syms[best[1]], syms[best[1] + 1]
            out = []
            j = 0
            while j < len(syms):
                if j + 1 < len(syms) and syms[j] == a and syms[j + 1] == b:
                    out.append(a + b)
                    j += 2
                else:
                    out.append(syms[j])
                    j += 1
            syms = out
        ids = [self.vocab[s] for s in syms if s in self.vocab]
        self.cache[word] = ids
        return ids

    def encode(self, text):
        parts = self._sp.split(text) if self._sp else [text]
        ids = []
        for part in parts:
            if not part:
                continue
            if part in self.specials:
                ids.append(self.vocab[part])
                continue
            for w in pretokenize(part):
                ids.extend(self._bpe(w))
        return ids

    def decode(self, ids):
        out = bytearray()
        for i in ids:
            t = self.inv[i]
            if t in self.specials:
                out += t.encode("utf-8")
            else:
                out += bytes(BYTE_DEC[c] for c in t)
        return out.decode("utf-8", errors="replace")
