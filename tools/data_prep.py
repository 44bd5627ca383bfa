"""data_prep.py - turns the Debian corpora (wordnet-base, bible-kjv, fortunes) into
the plain text files tools/train.py reads, so training can run on a machine that
has PyTorch but not these packages.

    /usr/bin/python3 tools/data_prep.py --out .carry/data

Writes (all ASCII, tab-separated where tabular):
  wordnet_synsets.tsv.gz  key  pos  words(,)  definition  examples( | )
  wordnet_lemmas.tsv.gz   lemma  pos  tagged_sense_count  synset keys(,) in sense order
  kjv.txt.gz              one verse per line (from the `bible` program)
  fortunes.txt.gz         short prose fortunes from a few tame files, one per line
  SOURCES              package versions and counts
Exit codes: 0 ok, 1 a corpus could not be read (message on stderr).
"""
import argparse
import gzip
import os
import re
import subprocess
import sys
import unicodedata

WN = "/usr/share/wordnet"
POS = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}
FORTUNE_DIR = "/usr/share/games/fortunes"
FORTUNE_FILES = ["fortunes", "wisdom", "literature", "platitudes", "people", "humorists",
                 "education", "work", "pets", "kids", "food", "science", "love", "tao",
                 "miscellaneous", "computers"]


def write_gz(path, lines):
    """gzip with a fixed mtime, so the same input gives the same bytes."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(("\n".join(lines) + "\n").encode("ascii"))


def ascii_text(s):
    s = unicodedata.normalize("NFKD", s)
    s = s.encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[ \t]+", " ", s).strip()


def clean_word(w):
    w = re.sub(r"\((a|p|ip)\)$", "", w)  # adjective position markers
    return w.replace("_", " ")


def parse_gloss(g):
    """'def1; def2; "ex1"; "ex2"' -> (definition, [examples])."""
    examples = re.findall(r'"([^"]+)"', g)
    d = re.sub(r'"[^"]*"', "", g)
    d = re.sub(r"\s*;\s*(;\s*)*", "; ", d).strip(" ;")
    return d, [e.strip() for e in examples if e.strip()]


def wordnet(out):
    syn_lines = []
    for fname, p in POS.items():
        with open(os.path.join(WN, "data." + fname), encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):
                    continue  # licence header
                head, _, gloss = line.partition(" | ")
                t = head.split()
                off, ss_type, wcnt = t[0], t[2], int(t[3], 16)
                words = [clean_word(t[4 + 2 * i]) for i in range(wcnt)]
                d, ex = parse_gloss(ascii_text(gloss))
                key = p + off
                words = [ascii_text(w) for w in words]
                syn_lines.append("\t".join([key, ss_type, ",".join(words), d, " | ".join(ex)]))
    write_gz(os.path.join(out, "wordnet_synsets.tsv.gz"), syn_lines)
    lem_lines = []
    for fname, p in POS.items():
        with open(os.path.join(WN, "index." + fname), encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                t = line.split()
                lemma, syn_cnt, p_cnt = t[0], int(t[2]), int(t[3])
                tag = int(t[5 + p_cnt])
                offs = t[6 + p_cnt:6 + p_cnt + syn_cnt]
                lem_lines.append("\t".join([ascii_text(clean_word(lemma)), p, str(tag),
                                            ",".join(p + o for o in offs)]))
    write_gz(os.path.join(out, "wordnet_lemmas.tsv.gz"), lem_lines)
    return len(syn_lines), len(lem_lines)


def kjv(out):
    raw = subprocess.run(["bible", "-l100000", "Ge1:1-Re22:21"], check=True,
                         capture_output=True, text=True).stdout
    verses = []
    for line in raw.splitlines():
        m = re.match(r"^(?:\S+\d+:\d+|\s+\d+)\s+(.*)$", line)
        if m:
            verses.append(ascii_text(m.group(1)))
    write_gz(os.path.join(out, "kjv.txt.gz"), verses)
    return len(verses)


def fortunes(out, max_len=240):
    keep = []
    for name in FORTUNE_FILES:
        path = os.path.join(FORTUNE_DIR, name)
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for chunk in f.read().split("\n%\n"):
                # Prose only: no attributions, dialogue scripts or verse layouts.
                lines = [ln.strip() for ln in chunk.strip().splitlines()]
                if not lines or any(ln.startswith(("--", "-- ")) for ln in lines[1:]):
                    lines = [ln for ln in lines if not ln.startswith("--")]
                text = ascii_text(" ".join(lines))
                if 20 <= len(text) <= max_len and ":" not in text[:15] and "\t" not in text:
                    keep.append(text)
    keep = sorted(set(keep))
    write_gz(os.path.join(out, "fortunes.txt.gz"), keep)
    return len(keep)


def version(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=".carry/data")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    try:
        ns, nl = wordnet(a.out)
        nv = kjv(a.out)
        nf = fortunes(a.out)
    except (OSError, subprocess.CalledProcessError) as e:
        print("data_prep: %s" % e, file=sys.stderr)
        return 1
    with open(os.path.join(a.out, "SOURCES"), "w") as f:
        f.write("wordnet-base %s: %d synsets, %d lemma entries\n" % (version("wordnet-base"), ns, nl))
        f.write("bible-kjv-text %s: %d verses\n" % (version("bible-kjv-text"), nv))
        f.write("fortunes %s: %d fortunes (%s)\n" % (version("fortunes"), nf, ",".join(FORTUNE_FILES)))
    print(open(os.path.join(a.out, "SOURCES")).read(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
