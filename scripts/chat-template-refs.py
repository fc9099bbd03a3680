#!/usr/bin/env python3
"""Renders the real chat templates in testdata/chat_templates/templates/ over a set of
conversations with transformers' own `apply_chat_template`, and writes what it renders (or
the template's exception) to testdata/chat_templates/cases.json, which Tern's tests match
byte for byte.

Needs transformers (no torch: only the tokenizer is used), tokenizers and jinja2:

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install transformers
    /tmp/venv/bin/python scripts/chat-template-refs.py

transformers renders with jinja2's ImmutableSandboxedEnvironment (trim_blocks,
lstrip_blocks, loopcontrols) and its own raise_exception, strftime_now and tojson; calling
`apply_chat_template` on a tokenizer whose special tokens are the model's BOS and EOS is
exactly what a model's tokenizer does, since the template sees only its special tokens' texts.
"""

import json
import sys
from pathlib import Path

import jinja2
import tokenizers
import transformers
from transformers import PreTrainedTokenizerFast

HERE = Path(__file__).resolve().parent.parent / "testdata" / "chat_templates"

# Each template: its file, the model's BOS and EOS texts (None: the model has none, and the
# template sees the variable undefined), the built-in template of Tern that must render the
# same, and the extra variables (`apply_chat_template` keyword arguments) it is rendered
# with, one render per entry.
TEMPLATES = {
    "smollm2-135m-instruct": {
        "bos": "<|im_start|>", "eos": "<|im_end|>", "builtin": None, "extras": [{}],
    },
    "openhermes-2.5-mistral-7b": {
        "bos": "<s>", "eos": "<|im_end|>", "builtin": "chatml", "extras": [{}],
    },
    "qwen2.5-7b-instruct": {
        "bos": None, "eos": "<|im_end|>", "builtin": None, "extras": [{}],
    },
    "qwen3-0.6b": {
        "bos": None, "eos": "<|im_end|>", "builtin": "qwen3",
        "extras": [{}, {"enable_thinking": True}, {"enable_thinking": False}],
    },
    "meta-llama-3-8b-instruct": {
        "bos": "<|begin_of_text|>", "eos": "<|eot_id|>", "builtin": "llama3", "extras": [{}],
    },
    "llama-3.1-8b-instruct": {
        "bos": "<|begin_of_text|>", "eos": "<|eot_id|>", "builtin": None, "extras": [{}],
    },
    # Today's date unless given: always given, so that the strings stay the same.
    "llama-3.2-3b-instruct": {
        "bos": "<|begin_of_text|>", "eos": "<|eot_id|>", "builtin": None,
        "extras": [{"date_string": "26 Jul 2024"}],
    },
    "llama-2-7b-chat": {
        "bos": "<s>", "eos": "</s>", "builtin": "llama2", "extras": [{}],
    },
    "mistral-7b-instruct-v0.1": {
        "bos": "<s>", "eos": "</s>", "builtin": None, "extras": [{}],
    },
    "mistral-7b-instruct-v0.2": {
        "bos": "<s>", "eos": "</s>", "builtin": "mistral", "extras": [{}],
    },
    "gemma-2-2b-it": {
        "bos": "<bos>", "eos": "<eos>", "builtin": "gemma", "extras": [{}],
    },
}


def m(role, content):
    return {"role": role, "content": content}


SYSTEM = m("system", "You are a helpful assistant.")

CONVERSATIONS = {
    "user": [m("user", "Hello!")],
    "system_user": [SYSTEM, m("user", "What is the capital of France?")],
    "multi_turn": [
        SYSTEM,
        m("user", "What is the capital of France?"),
        m("assistant", "The capital of France is Paris."),
        m("user", "And of Germany?"),
    ],
    "multi_turn_no_system": [
        m("user", "Hi"),
        m("assistant", "Hello! How can I help?"),
        m("user", "Tell me a joke."),
        m("assistant", "Why did the chicken cross the road? To get to the other side."),
        m("user", "Another one."),
    ],
    "finished": [m("user", "Hi"), m("assistant", "Hello! How can I help?")],
    "non_ascii": [
        m("system", "Réponds en français, s'il te plaît."),
        m("user", "Größe? 東京は日本の首都です。🙂 \"quoted\" \\ back"),
        m("assistant", "Ja — 大丈夫。"),
        m("user", "Merci !"),
    ],
    "empty_content": [m("system", ""), m("user", ""), m("assistant", ""), m("user", "Hi")],
    "whitespace": [
        m("user", "  padded question  \n"),
        m("assistant", "   I am an assistant   "),
        m("user", "\tTabs\tand\nnewlines\n"),
    ],
    "thinking": [
        m("user", "What is 2+2?"),
        m("assistant", "<think>\nTwo and two make four.\n</think>\n\n4"),
        m("user", "And 3+3?"),
        m("assistant", "<think>\nThree and three.\n</think>\n\n6"),
    ],
    "roles_out_of_order": [m("user", "Hi"), m("user", "Hi again")],
}

# A tool schema, its keys sorted at every level (Tern's JSON maps are sorted), rendered by
# the templates that print tools (`tojson`, `tojson(indent=4)`).
TOOLS = [{
    "function": {
        "description": "Get the weather <in> a city & \"its\" country",
        "name": "get_weather",
        "parameters": {
            "properties": {"city": {"description": "Città", "type": "string"},
                           "days": {"default": 1.5, "type": "number"}},
            "required": ["city"],
            "type": "object",
        },
    },
    "type": "function",
}]
TOOL_TEMPLATES = ["qwen2.5-7b-instruct", "qwen3-0.6b", "llama-3.1-8b-instruct"]


def tokenizer(bos, eos):
    """A tokenizer whose special tokens are the model's: all a template sees of it."""
    vocab = {"x": 0}
    for t in (bos, eos):
        if t is not None:
            vocab.setdefault(t, len(vocab))
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab))
    special = {}
    if bos is not None:
        special["bos_token"] = bos
    if eos is not None:
        special["eos_token"] = eos
    return PreTrainedTokenizerFast(tokenizer_object=backend, **special)


def render(tok, source, messages, add_generation_prompt, extra):
    kwargs = dict(extra)
    tools = kwargs.pop("tools", None)
    try:
        return {"output": tok.apply_chat_template(
            messages, tools=tools, chat_template=source, tokenize=False,
            add_generation_prompt=add_generation_prompt, **kwargs)}
    except jinja2.exceptions.TemplateError as e:
        return {"error": str(e)}


def dump(out):
    """JSON with one case a line, so that a change reads as a diff of the cases it touches."""
    compact = lambda v: json.dumps(v, ensure_ascii=False)
    lines = ["{"]
    for key, value in out.items():
        if key == "cases":
            body = ",\n".join("  " + compact(c) for c in value)
            lines.append(f'"cases": [\n{body}\n]')
        elif isinstance(value, dict):
            body = ",\n".join(f"  {compact(k)}: {compact(v)}" for k, v in value.items())
            lines.append(f"{compact(key)}: {{\n{body}\n}},")
        else:
            lines.append(f"{compact(key)}: {compact(value)},")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main():
    templates = {}
    cases = []
    for name, spec in TEMPLATES.items():
        source = (HERE / "templates" / f"{name}.jinja").read_text(encoding="utf-8")
        templates[name] = {
            "file": f"templates/{name}.jinja",
            "bos_token": spec["bos"],
            "eos_token": spec["eos"],
            "builtin": spec["builtin"],
        }
        tok = tokenizer(spec["bos"], spec["eos"])
        runs = [(conv, extra) for extra in spec["extras"] for conv in CONVERSATIONS]
        if name in TOOL_TEMPLATES:
            runs.append(("system_user", {"tools": TOOLS}))
            runs.append(("multi_turn", {"tools": TOOLS}))
        for conv, extra in runs:
            for agp in (True, False):
                case = {
                    "template": name,
                    "conversation": conv,
                    "add_generation_prompt": agp,
                    "extra": extra,
                }
                case.update(render(tok, source, CONVERSATIONS[conv], agp, extra))
                cases.append(case)
    out = {
        "made_by": "scripts/chat-template-refs.py",
        "versions": {
            "transformers": transformers.__version__,
            "jinja2": jinja2.__version__,
            "tokenizers": tokenizers.__version__,
        },
        "templates": templates,
        "conversations": CONVERSATIONS,
        "cases": cases,
    }
    path = HERE / "cases.json"
    with open(path, "w", encoding="utf-8") as f:
        f.write(dump(out))
    errors = sum("error" in c for c in cases)
    print(f"{path}: {len(cases)} cases ({errors} raise)", file=sys.stderr)


if __name__ == "__main__":
    main()
