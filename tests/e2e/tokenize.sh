#!/bin/sh
# tokenize.sh BUILD - `attnscope tokenize` on the real tokenizer files: ids equal
# to HF tokenizers' (values from HF tokenizers 0.22 on the same files), exit
# code 2 with one stderr line for a missing folder, a malformed file or no TEXT.
BUILD=${1:-build}
BIN=${ATTNSCOPE_BIN:-$PWD/$BUILD/attnscope}
TOK=${ATTNSCOPE_CACHE:-.cache/tokenizers}
fail() { echo "tokenize.sh: $*"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

out=$("$BIN" tokenize --model "$TOK/llama3" -- "Hello  world <|begin_of_text|>") || fail "llama3 exit $?"
[ "$out" = "[9906, 220, 1917, 220, 128000]" ] || fail "llama3 ids: $out"
out=$("$BIN" tokenize --model "$TOK/llama2" --add-special "Hello world") || fail "llama2 exit $?"
[ "$out" = "[1, 22557, 1526]" ] || fail "llama2 ids: $out"
out=$("$BIN" tokenize --model "$TOK/qwen3" --add-special "<|im_start|>user
Héllo 12345<|im_end|>") || fail "qwen3 exit $?"
[ "$out" = "[151644, 872, 198, 39, 18503, 385, 220, 16, 17, 18, 19, 20, 151645]" ] || fail "qwen3 ids: $out"
out=$("$BIN" tokenize --model "$TOK/qwen3" -- "") || fail "empty text exit $?"
[ "$out" = "[]" ] || fail "empty text: $out"
out=$("$BIN" tokenize --model "$TOK/qwen3" --decode "[9707, 220, 1879, 151645]") || fail "decode exit $?"
[ "$out" = "Hello  world<|im_end|>" ] || fail "decode: $out"

expect2() { # expect2 WHAT ARGS...: exit code 2 and exactly one line on stderr
    what=$1; shift
    "$BIN" tokenize "$@" >/dev/null 2>"$tmp/err"; rc=$?
    [ $rc -eq 2 ] || fail "$what: exit $rc, want 2"
    [ "$(wc -l < "$tmp/err")" -eq 1 ] || fail "$what: stderr is not one line: $(cat "$tmp/err")"
}
expect2 "missing folder" --model "$tmp/none" x
mkdir "$tmp/bad"
printf '{"model": {"type": "BPE", "vocab": {"a": 0' > "$tmp/bad/tokenizer.json"
expect2 "bad JSON" --model "$tmp/bad" x
printf '{"model": {"type": "Unigram", "vocab": []}}' > "$tmp/bad/tokenizer.json"
expect2 "unknown model type" --model "$tmp/bad" x
printf '{"model": {"type": "BPE", "vocab": {"a": 0, "ab": 1}, "merges": ["a b"]}}' > "$tmp/bad/tokenizer.json"
expect2 "merge of an unknown token" --model "$tmp/bad" x
printf '{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[a-"}, "behavior": "Isolated", "invert": false}, "model": {"type": "BPE", "vocab": {}, "merges": []}}' > "$tmp/bad/tokenizer.json"
expect2 "regex PCRE2 rejects" --model "$tmp/bad" x
grep -q "PCRE2 rejects" "$tmp/err" || fail "regex message: $(cat "$tmp/err")"
expect2 "no TEXT" --model "$TOK/qwen3"
expect2 "unknown option" --model "$TOK/qwen3" --frobnicate x
exit 0
