#!/usr/bin/env python3
"""ref_templates.py - expected chat prompts for the template fixtures, rendered by
transformers' apply_chat_template (tokenize=False), for tests/unit/test_chat.c.

    python3 tools/ref_templates.py --out tests/fixtures/templates

Reads every template fixture (tests/fixtures/templates/<name>.json: chat_template,
bos_token, eos_token, optional kwargs_variants) and the conversations in
cases.json, renders each conversation with and without the generation prompt,
and writes <out>/expected/<name>.json (so --out elsewhere gives a folder
whose expected/ is copied into tests/fixtures/templates/). No network is needed: the tokenizer that
carries the template is built in memory (the rendering does not depend on the
vocabulary). Where the real tokenizer folder of a fixture exists
(.cache/tokenizers/<name>/), the same prompts are also rendered through
AutoTokenizer.from_pretrained on it and compared.

A template that raises (raise_exception: e.g. Gemma with a system message) is an
expected outcome and is recorded as such; any other failure is recorded per item
and the run goes on. Ends with a summary; exit status 0 when every fixture
produced a file, 1 otherwise.

--jinja renders with plain jinja2 set up the way transformers sets it up, for
local development where transformers is absent; such files are marked
"renderer": "jinja2-local" and the tests refuse them as a reference.
"""
import argparse
import glob
import json
import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------- renderers

class TransformersRenderer:
    """apply_chat_template on an in-memory tokenizer holding the template."""

    def __init__(self):
        import transformers  # noqa: F401
        self.transformers = transformers
        self.version = transformers.__version__
        self.name = "transformers %s apply_chat_template(tokenize=False)" % self.version

    def _make_tokenizer(self, fx):
        from tokenizers import Tokenizer
        from tokenizers.models import WordLevel
        vocab = {"<unk>": 0}
        for t in (fx.get("bos_token"), fx.get("eos_token")):
            if t and t not in vocab:
                vocab[t] = len(vocab)
        backend = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
        kw = dict(tokenizer_object=backend, unk_token="<unk>")
        if fx.get("bos_token") is not None:
            kw["bos_token"] = fx["bos_token"]
        if fx.get("eos_token") is not None:
            kw["eos_token"] = fx["eos_token"]
        errors = []
        for cls_name in ("PreTrainedTokenizerFast", "TokenizersBackend"):
            cls = getattr(self.transformers, cls_name, None)
            if cls is None:
                continue
            try:
                tok = cls(**kw)
                tok.chat_template = fx["chat_template"]
                return tok
            except Exception as e:  # try the next class
                errors.append("%s: %s" % (cls_name, e))
        raise RuntimeError("could not build an in-memory tokenizer: " + "; ".join(errors))

    def tokenizer_for(self, fx):
        """A tokenizer carrying the template, or, if none can be built here,
        the fixture itself for transformers' own render_jinja_template."""
        try:
            return self._make_tokenizer(fx)
        except Exception as e:
            log("  note: %s; falling back to render_jinja_template" % e)
            from transformers.utils.chat_template_utils import render_jinja_template  # noqa: F401
            return fx

    @staticmethod
    def _render_jinja(fx, messages, gen, kwargs):
        from transformers.utils.chat_template_utils import render_jinja_template
        extra = dict(kwargs)
        for k in ("bos_token", "eos_token"):
            if fx.get(k) is not None:
                extra[k] = fx[k]
        out = render_jinja_template(conversations=[messages], chat_template=fx["chat_template"],
                                    add_generation_prompt=gen, **extra)
        if isinstance(out, tuple):
            out = out[0]
        if isinstance(out, list):
            out = out[0]
        return out

    @staticmethod
    def render_with(tok, messages, gen, kwargs, chat_template=None):
        if isinstance(tok, dict):      # no tokenizer object: transformers' renderer itself
            out = TransformersRenderer._render_jinja(tok, messages, gen, kwargs)
        else:
            extra = dict(kwargs)
            if chat_template is not None:
                extra["chat_template"] = chat_template
            out = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen, **extra)
            if not isinstance(out, str) and not (isinstance(out, list) and len(out) == 1
                                                 and isinstance(out[0], str)):
                out = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen,
                                              return_dict=False, **extra)
        if isinstance(out, list) and len(out) == 1 and isinstance(out[0], str):
            out = out[0]
        if not isinstance(out, str):
            raise RuntimeError("the renderer returned %s, not a string" % type(out).__name__)
        return out


class JinjaRenderer:
    """Plain jinja2 configured as transformers configures it (local checks only)."""

    def __init__(self):
        import jinja2
        from jinja2.sandbox import ImmutableSandboxedEnvironment
        self.jinja2 = jinja2
        self.version = jinja2.__version__
        self.name = "jinja2-local %s" % self.version
        self.env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                 extensions=["jinja2.ext.loopcontrols"])

        def raise_exception(msg):
            raise jinja2.exceptions.TemplateError(msg)

        def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
            return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                              separators=separators, sort_keys=sort_keys)

        def strftime_now(fmt):
            import datetime
            return datetime.datetime.now().strftime(fmt)

        self.env.filters["tojson"] = tojson
        self.env.globals["raise_exception"] = raise_exception
        self.env.globals["strftime_now"] = strftime_now

    def tokenizer_for(self, fx):
        return fx

    def render_with(self, fx, messages, gen, kwargs, chat_template=None):
        t = self.env.from_string(chat_template or fx["chat_template"])
        ctx = dict(messages=messages, add_generation_prompt=gen)
        if fx.get("bos_token") is not None:
            ctx["bos_token"] = fx["bos_token"]
        if fx.get("eos_token") is not None:
            ctx["eos_token"] = fx["eos_token"]
        ctx.update(kwargs)
        return t.render(**ctx)


def is_template_raise(e):
    """True when the template itself raised (raise_exception), an expected outcome."""
    names = [c.__name__ for c in type(e).__mro__]
    return "TemplateError" in names and "TemplateSyntaxError" not in names


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "templates"),
                    help="folder that receives expected/<name>.json")
    ap.add_argument("--fixtures", default=os.path.join(ROOT, "tests", "fixtures", "templates"),
                    help="folder with the template fixtures and cases.json "
                         "(default: the repository's tests/fixtures/templates, whatever --out is)")
    ap.add_argument("--cache", default=os.path.join(ROOT, ".cache", "tokenizers"),
                    help="real tokenizer folders for the cross-check (optional)")
    ap.add_argument("--jinja", action="store_true",
                    help="render with local jinja2 instead of transformers (development only)")
    args = ap.parse_args()
    fixdir = args.fixtures
    outdir = os.path.join(args.out, "expected")
    os.makedirs(outdir, exist_ok=True)

    try:
        renderer = JinjaRenderer() if args.jinja else TransformersRenderer()
    except Exception as e:
        log("FATAL: cannot set up the renderer: %s: %s" % (type(e).__name__, e))
        return 1
    log("renderer: " + renderer.name)

    try:
        with open(os.path.join(fixdir, "cases.json"), encoding="utf-8") as f:
            cases = json.load(f)["cases"]
    except Exception as e:
        log("FATAL: cannot read %s/cases.json: %s" % (fixdir, e))
        return 1

    fixtures = sorted(p for p in glob.glob(os.path.join(fixdir, "*.json"))
                      if os.path.basename(p) != "cases.json")
    summary = []
    for path in fixtures:
        name = os.path.basename(path)[:-5]
        try:
            with open(path, encoding="utf-8") as f:
                fx = json.load(f)
            tok = renderer.tokenizer_for(fx)
        except Exception as e:
            log("[%s] FAILED to load: %s: %s" % (name, type(e).__name__, e))
            summary.append((name, 0, 0, 0, "load failed"))
            continue

        real = None
        real_dir = os.path.join(args.cache, name)
        if not args.jinja and os.path.isfile(os.path.join(real_dir, "tokenizer_config.json")):
            try:
                from transformers import AutoTokenizer
                real = AutoTokenizer.from_pretrained(real_dir)
                if real.chat_template != fx["chat_template"]:
                    log("[%s] note: the real tokenizer's template differs from the fixture's" % name)
                    real = None
            except Exception as e:
                log("[%s] note: no cross-check with %s: %s" % (name, real_dir, e))
                real = None

        results = []
        n_ok = n_raise = n_fail = 0
        crosscheck = {"same": 0, "differs": 0}
        for kwargs in fx.get("kwargs_variants", [{}]):
            for case in cases:
                for gen in (False, True):
                    item = {"case": case["name"], "add_generation_prompt": gen, "kwargs": kwargs}
                    try:
                        text = renderer.render_with(tok, case["messages"], gen, kwargs)
                        item["ok"] = True
                        item["text"] = text
                        n_ok += 1
                        if real is not None:
                            try:
                                other = TransformersRenderer.render_with(real, case["messages"], gen, kwargs)
                                crosscheck["same" if other == text else "differs"] += 1
                            except Exception:
                                crosscheck["differs"] += 1
                    except Exception as e:
                        item["ok"] = False
                        item["error"] = "%s: %s" % (type(e).__name__, e)
                        item["template_raised"] = bool(is_template_raise(e))
                        if item["template_raised"]:
                            n_raise += 1
                        else:
                            n_fail += 1
                            log("[%s] %s gen=%s %s: %s" % (name, case["name"], gen, kwargs, item["error"]))
                            log(traceback.format_exc(limit=3))
                    results.append(item)
        how = renderer.name
        if isinstance(tok, dict) and not args.jinja:
            how = how.replace("apply_chat_template(tokenize=False)", "render_jinja_template")
        doc = {"fixture": name, "renderer": how, "source": fx.get("source"),
               "results": results}
        if real is not None:
            doc["crosscheck_real_tokenizer"] = crosscheck
        try:
            with open(os.path.join(outdir, name + ".json"), "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1, ensure_ascii=False)
                f.write("\n")
            status = "written"
        except Exception as e:
            status = "write failed: %s" % e
        cc = (" crosscheck same=%d differs=%d" % (crosscheck["same"], crosscheck["differs"])
              if real is not None else "")
        log("[%s] ok=%d raised=%d failed=%d %s%s" % (name, n_ok, n_raise, n_fail, status, cc))
        summary.append((name, n_ok, n_raise, n_fail, status))

    log("\nsummary (%s):" % renderer.name)
    bad = 0
    for name, ok, rz, fl, st in summary:
        log("  %-12s ok=%-3d template-raised=%-3d failed=%-3d %s" % (name, ok, rz, fl, st))
        if st != "written" or fl:
            bad += 1
    log("%d fixtures, %d with problems" % (len(summary), bad))
    return 0 if summary and all(s[4] == "written" for s in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
