"""One entry per model when importing: the first-party provider's, others on request.

LiteLLM's map prices the same model once per provider that sells it: ``claude-haiku-5-5``
(Anthropic's own API), ``bedrock_mantle/anthropic.claude-haiku-5-5``, ``azure_ai/...``,
``vertex_ai/...``. A team that adds "claude-haiku-5-5" wants one row, at the maker's price.
:func:`pick_entries` groups the source keys a pattern matched by model (:func:`model_name`)
and keeps, per model, the entry of the provider that makes it (:data:`MAKERS`); without one,
the entry with a bare key, then the shortest key. ``providers`` asks for other providers
instead (``["azure"]``), or every entry (``["all"]``).
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

__all__ = ["MAKERS", "first_party_provider", "model_name", "pick_entries"]

#: Model-name prefix -> the provider names (LiteLLM's, OpenRouter's) of the company that makes
#: the model and sells it first-hand.
MAKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("claude", ("anthropic",)),
    ("gpt-", ("openai",)), ("o1", ("openai",)), ("o3", ("openai",)), ("o4", ("openai",)),
    ("codex", ("openai",)), ("chatgpt", ("openai",)),
    ("gemini", ("gemini", "google")), ("gemma", ("gemini", "google")),
    ("deepseek", ("deepseek",)),
    ("grok", ("xai", "x-ai")),
    ("mistral", ("mistral", "mistralai")), ("codestral", ("mistral", "mistralai")),
    ("devstral", ("mistral", "mistralai")), ("magistral", ("mistral", "mistralai")),
    ("ministral", ("mistral", "mistralai")),
    ("kimi", ("moonshot", "moonshotai")),
    ("minimax", ("minimax",)),
    ("glm", ("zai", "z-ai")),
    ("qwen", ("dashscope", "qwen")),
    ("command", ("cohere",)),
)

_REGION_OR_VENDOR = re.compile(r"^(?:[a-z_]+\.)+(?=[a-z])")
_VERSION_SUFFIX = re.compile(r"(?:-v\d+(?::\d+)?|:\d+)$")


def model_name(key: str) -> str:
    """The model a source key prices, provider and region stripped, case-folded:
    ``bedrock_mantle/us.anthropic.claude-haiku-5-5-v1:0`` -> ``claude-haiku-5-5``,
    ``gemini/gemini-3.7-flash`` -> ``gemini-3.7-flash``, ``gpt-5.6-luna`` stays."""
    last = key.rsplit("/", 1)[-1].casefold()
    # leading "us." / "anthropic." / "global.openai." (words without digits, then a dot)
    stripped = _REGION_OR_VENDOR.sub("", last)
    if re.match(r"^[a-z]+\d", last) and not re.match(r"^[a-z]+\d", stripped or last):
        stripped = last                       # "qwen3.8-max": no prefix to strip
    return _VERSION_SUFFIX.sub("", stripped or last)


def first_party_provider(name: str) -> tuple[str, ...]:
    """Provider names that sell ``name`` first-hand (empty if the maker is not known)."""
    for prefix, providers in MAKERS:
        if name.startswith(prefix):
            return providers
    return ()


def _rank(key: str, entry: dict[str, Any], makers: tuple[str, ...]) -> tuple:
    provider = str(entry.get("provider", "")).casefold()
    first_party = provider in makers or key.split("/", 1)[0].casefold() in makers
    return (not first_party, "/" in key, len(key), key)


def pick_entries(keys: Iterable[str], models: dict[str, dict[str, Any]],
                 providers: Sequence[str] | None = None
                 ) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """The source keys to import from ``keys`` (all matched by the user's patterns), notes for
    the report, and the models left out because only resellers sell them.

    ``providers`` None: one key per model, the maker's own (see the module docstring). A model
    whose maker is known but absent from the source (a reseller's own variant or snapshot,
    ``kyma/gpt-5.6-sol-pro``) is left out; one whose maker is not known takes the bare-est,
    shortest key. ``["all"]``: every key. Names: every key whose provider is one of them."""
    keys = list(keys)
    if providers:
        wanted = {p.casefold() for p in providers}
        if "all" in wanted:
            return keys, [], {}
        return [k for k in keys if str(models[k].get("provider", "")).casefold() in wanted
                or k.split("/", 1)[0].casefold() in wanted], [], {}
    groups: dict[str, list[str]] = {}
    for k in keys:
        groups.setdefault(model_name(k), []).append(k)
    chosen, notes, resold = [], [], {}
    for name, ks in groups.items():
        makers = first_party_provider(name)
        best = min(ks, key=lambda k: _rank(k, models[k], makers))
        if makers and _rank(best, models[best], makers)[0]:
            resold[name] = sorted(ks)
            continue
        chosen.append(best)
        if len(ks) > 1:
            first = _rank(best, models[best], makers)[0] is False
            n = len(ks) - 1
            provider = models[best].get("provider")
            took = f"{provider}'s own entry" if first else f"no entry from its maker, took {best}"
            notes.append(f"{name}: {took}; {n} other provider{'s' if n != 1 else ''} left out "
                         f"(--provider NAME adds them)")
    return sorted(chosen), notes, resold
