"""hf_tok_speed.py TOKENIZER_JSON TEXT_FILE - HF tokenizers' encode throughput
(single thread, as attnscope's tokenizer is measured) for docs/performance.md."""
import gzip
import os
import sys
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
from tokenizers import Tokenizer  # noqa: E402

tok = Tokenizer.from_file(sys.argv[1])
opener = gzip.open if sys.argv[2].endswith(".gz") else open
text = opener(sys.argv[2], "rt", encoding="utf-8").read()
nbytes = len(text.encode("utf-8"))
best = None
for _ in range(3):
    t0 = time.perf_counter()
    ids = tok.encode(text, add_special_tokens=False).ids
    dt = time.perf_counter() - t0
    best = dt if best is None else min(best, dt)
print(f"hf_tok_speed: {nbytes} bytes, {len(ids)} ids, best of 3: {best:.3f} s = {nbytes / best / 1e6:.2f} MB/s")
