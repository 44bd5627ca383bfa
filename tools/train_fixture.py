"""train_fixture.py - writes tests/fixtures/tiny-chat: an untrained, seeded tiny
LLaMA folder (GQA 4 query / 2 KV heads, byte-level BPE, ChatML template) for tests
that need a real model folder but not a trained one.

    /usr/bin/python3 tools/train_fixture.py --out tests/fixtures/tiny-chat

The same seed gives the same bytes. Weights are drawn wider than a training init
(embeddings std 0.5, linear std 1/sqrt(fan_in), norm weights 1 +- 0.1) so the
logits spread over several units and greedy choices are not near-ties.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_bpe  # noqa: E402
import train_llama as L  # noqa: E402

TEXT = """\
What does cat mean? A cat is a small domesticated carnivorous mammal with soft fur.
Use house in a sentence. They bought a small house near the river last summer.
What is another word for happy? Another word for happy is glad, or cheerful.
The quick brown fox jumps over the lazy dog. It's 12 o'clock, and we're late!
Attention lets every token look back at the tokens before it; the cache keeps
their keys and values so that each new token costs one row, not a whole matrix.
In the beginning was the word, and the word was short, and the answer was near.
A fortune: you will meet a tall model with many heads, and some of them will copy.
"""


def build(out, seed=1234, vocab_size=352):
    specials = L.CHAT_SPECIALS
    vocab, merges = train_bpe.train(TEXT.splitlines() * 3, vocab_size, specials, min_frequency=2)
    tj = train_bpe.tokenizer_json(vocab, merges, specials)
    c = L.Cfg(vocab_size=len(vocab), hidden_size=64, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
              max_position_embeddings=512, rope_theta=10000.0, rms_norm_eps=1e-5,
              tie_word_embeddings=True, bos_token_id=0, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(seed)
    m = L.Llama(c)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("layernorm.weight") or name == "model.norm.weight":
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif name == "model.embed_tokens.weight":
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
    tc = L.tokenizer_config(specials, eos="<|im_end|>", pad="<|endoftext|>",
                            bos=None, chat_template=L.CHATML_TEMPLATE, max_len=512)
    gc = {"bos_token_id": 0, "eos_token_id": [2, 0], "pad_token_id": 0,
          "do_sample": False, "max_new_tokens": 64}
    L.write_folder(out, m, tj, tc, gc, dtype=torch.bfloat16)
    return m, tj


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    build(a.out, a.seed)
    total = sum(os.path.getsize(os.path.join(a.out, f)) for f in os.listdir(a.out))
    print("wrote %s (%d bytes)" % (a.out, total))


if __name__ == "__main__":
    main()
