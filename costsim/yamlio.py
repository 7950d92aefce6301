"""YAML loading that remembers where every value came from, within bounded time and memory.

PyYAML's ``compose()`` keeps a start mark on every node; walking the node tree ourselves gives
each value a line number (so a validation error can say ``file.yaml:14: routes.implement: ...``)
and lets us reject duplicate keys, which ``safe_load`` silently overwrites.

Composition is bounded before anything large is built (costsim.limits): the file size, the
number of values, the nesting depth (checked as each node opens, so a deeply nested file fails at the limit, not at
Python's recursion limit) and the number of values aliases expand to (counted from the sizes of
the anchored nodes, so an alias bomb fails after composing a few hundred nodes). Scalars are
bounded too: an integer literal longer than MAX_INT_DIGITS, a float literal that overflows to
infinity, an invalid date and a lone surrogate are located errors.

Events come from libyaml when PyYAML has it (about five times faster on large price tables),
else from PyYAML's pure-Python parser; the composer is PyYAML's, in Python, either way.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, MappingEndEvent, SequenceEndEvent
from yaml.resolver import Resolver

from .errors import CostsimError, format_path
from .limits import (MAX_INT_DIGITS, MAX_YAML_ALIAS_VALUES, MAX_YAML_BYTES, MAX_YAML_DEPTH,
                     MAX_YAML_VALUES)


@dataclass
class Document:
    """Plain data parsed from a YAML file plus the line of every key/value path."""

    data: Any
    file: str
    lines: dict[tuple, int] = field(default_factory=dict)

    def line_of(self, loc: tuple | list) -> int | None:
        """The line of ``loc`` or of its nearest ancestor that has one."""
        loc = tuple(loc)
        while True:
            if loc in self.lines:
                return self.lines[loc]
            if not loc:
                return None
            loc = loc[:-1]

    def error(self, loc: tuple | list, message: str) -> CostsimError:
        return CostsimError(message, file=self.file, line=self.line_of(loc), path=format_path(loc))


class _Limit(Exception):
    """A size limit hit while composing (turned into a located CostsimError)."""

    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.message, self.line = message, line


class _BoundedComposer(Composer):
    """PyYAML's composer with a depth limit and an alias-expansion budget."""

    def _bounded_init(self) -> None:
        self._depth = 0
        self._values = 0
        self._sizes: dict[int, int] = {}      # id(node) -> values in its subtree (aliases expanded)
        self._expanded = 0

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)   # the anchored node (or ComposerError)
            size = self._sizes.get(id(node))
            line = event.start_mark.line + 1 if event.start_mark else None
            if size is None:
                raise _Limit(f"alias *{event.anchor} refers to a node that contains it "
                             "(recursive aliases are not supported)", line)
            self._expanded += size
            if self._expanded > MAX_YAML_ALIAS_VALUES:
                raise _Limit(f"aliases expand to more than {MAX_YAML_ALIAS_VALUES:,} values "
                             "(an alias bomb?)", line)
            return node
        self._values += 1
        if self._values > MAX_YAML_VALUES:
            event = self.peek_event()
            line = event.start_mark.line + 1 if event.start_mark else None
            raise _Limit(f"more than {MAX_YAML_VALUES:,} values in one file", line)
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            event = self.peek_event()
            line = event.start_mark.line + 1 if event.start_mark else None
            raise _Limit(f"nested more than {MAX_YAML_DEPTH} levels deep", line)
        node = super().compose_node(parent, index)
        self._depth -= 1
        size = 1
        if isinstance(node, yaml.SequenceNode):
            size += sum(self._sizes.get(id(child), 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            size += sum(self._sizes.get(id(k), 1) + self._sizes.get(id(v), 1)
                        for k, v in node.value)
        self._sizes[id(node)] = size
        return node


try:  # libyaml's parser (events) under PyYAML's Python composer
    from yaml._yaml import CParser as _Parser

    class _Loader(_Parser, _BoundedComposer, SafeConstructor, Resolver):
        def __init__(self, text: str):
            _Parser.__init__(self, text)
            _BoundedComposer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._bounded_init()

        # CParser composes in C (recursively, without our bounds): use the Python composer.
        get_single_node = Composer.get_single_node
        compose_document = Composer.compose_document
        compose_node = _BoundedComposer.compose_node
        check_node = Composer.check_node
        get_node = Composer.get_node

except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Loader(Reader, Scanner, Parser, _BoundedComposer, SafeConstructor, Resolver):
        def __init__(self, text: str):
            Reader.__init__(self, text)
            Scanner.__init__(self)
            Parser.__init__(self)
            _BoundedComposer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._bounded_init()


_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_STR_TAG = "tag:yaml.org,2002:str"
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Characters YAML does not accept in a file (its printable set, plus tab and line breaks).
_NOT_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd"
                            "\U00010000-\U0010ffff]")


def _scalar(loader: _Loader, node: yaml.ScalarNode, loc: tuple, file: str) -> Any:
    line = node.start_mark.line + 1
    if node.tag == _INT_TAG and len(node.value) > MAX_INT_DIGITS:
        raise CostsimError(f"number too large: {len(node.value):,} characters (at most "
                           f"{MAX_INT_DIGITS})", file, line, format_path(loc))
    try:
        value = loader.construct_object(node, deep=True)
    except yaml.MarkedYAMLError:
        raise
    except (ValueError, OverflowError, TypeError) as exc:
        # e.g. a date that does not exist (2026-13-45): PyYAML raises a bare ValueError
        raise CostsimError(f"cannot read {_show(node.value)}: {exc}", file, line,
                           format_path(loc)) from None
    if isinstance(value, float) and math.isinf(value) and node.tag == _FLOAT_TAG \
            and "inf" not in node.value.lower():
        raise CostsimError(f"number too large: {_show(node.value)} overflows a 64-bit float",
                           file, line, format_path(loc))
    if isinstance(value, str) and _SURROGATE.search(value):
        raise CostsimError("text contains a lone surrogate (an escape such as \\ud800 that is "
                           "not a Unicode character)", file, line, format_path(loc))
    return value


def _show(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _key(loader: _Loader, key_node: yaml.Node, loc: tuple, file: str) -> Any:
    line = key_node.start_mark.line + 1
    if key_node.tag == "tag:yaml.org,2002:merge":
        raise CostsimError("YAML merge keys ('<<') are not supported", file, line,
                           format_path(loc))
    if not isinstance(key_node, yaml.ScalarNode):
        raise CostsimError("mapping keys must be plain scalars", file, line, format_path(loc))
    if key_node.tag in (_INT_TAG, _FLOAT_TAG, "tag:yaml.org,2002:bool"):
        return key_node.value  # keep the text the user wrote ("1", "yes")
    key = _scalar(loader, key_node, loc, file)
    if not isinstance(key, str):
        raise CostsimError("mapping keys must be plain scalars", file, line, format_path(loc))
    return key


def _build(loader: _Loader, node: yaml.Node, loc: tuple, lines: dict, file: str) -> Any:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for key_node, value_node in node.value:
            key = _key(loader, key_node, loc, file)
            if key in out:
                raise CostsimError(
                    f"duplicate key '{key}' (first at line {lines[loc + (key,)]})",
                    file, key_node.start_mark.line + 1, format_path(loc + (key,)))
            lines[loc + (key,)] = key_node.start_mark.line + 1
            out[key] = _build(loader, value_node, loc + (key,), lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, loc + (i,), lines, file) for i, item in enumerate(node.value)]
    return _scalar(loader, node, loc, file)


def _line_at(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def parse_yaml(text: str, file: str) -> Document:
    """Parse ``text``; errors name ``file`` and the line."""
    bad = _NOT_PRINTABLE.search(text)
    if bad is not None:
        ch = bad.group()
        what = "a NUL byte" if ch == "\0" else f"the control character U+{ord(ch):04X}"
        if 0xD800 <= ord(ch) <= 0xDFFF:
            what = f"a lone surrogate U+{ord(ch):04X}"
        raise CostsimError(f"not valid YAML: {what} is not allowed in a YAML file", file,
                           _line_at(text, bad.start()))
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise CostsimError("file is empty (expected a YAML mapping)", file)
            lines: dict[tuple, int] = {}
            data = _build(loader, node, (), lines, file)
        finally:
            loader.dispose()
    except _Limit as exc:
        raise CostsimError(f"not accepted: {exc.message}", file, exc.line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = (exc.problem or exc.context or "malformed YAML").strip()
        if "nesting depth" in what:     # libyaml's own limit (1,000) beyond ours
            raise CostsimError(f"not accepted: nested more than {MAX_YAML_DEPTH} levels deep",
                               file, line) from None
        raise CostsimError(f"not valid YAML: {what}", file, line) from None
    except yaml.YAMLError as exc:
        what = getattr(exc, "reason", None) or str(exc).splitlines()[0]
        raise CostsimError(f"not valid YAML: {what}", file) from None
    if not isinstance(data, dict):
        raise CostsimError(f"expected a YAML mapping at the top, got {type(data).__name__}",
                           file, 1)
    return Document(data=data, file=file, lines=lines)


def load_yaml(path: str | Path) -> Document:
    """Read and parse a YAML file; a missing, unreadable, oversized or non-UTF-8 file is a
    CostsimError."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            raw = fh.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise CostsimError("file not found", str(path)) from None
    except IsADirectoryError:
        raise CostsimError("is a directory, expected a YAML file", str(path)) from None
    except OSError as exc:
        raise CostsimError(f"cannot read file: {exc.strerror or exc}", str(path)) from None
    if len(raw) > MAX_YAML_BYTES:
        raise CostsimError(f"file is larger than {MAX_YAML_BYTES // (1024 * 1024)} MB (is it "
                           "a costsim YAML file?)", str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CostsimError("not a text file (expected UTF-8 YAML)", str(path),
                           raw.count(b"\n", 0, exc.start) + 1) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise CostsimError("file is empty (expected a YAML mapping)", str(path))
    return parse_yaml(text, str(path))
