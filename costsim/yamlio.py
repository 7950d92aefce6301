"""YAML loading that remembers where every value came from.

PyYAML's ``compose()`` keeps a start mark on every node; walking the node tree ourselves gives
each value a line number (so a validation error can say ``file.yaml:14: routes.implement: ...``)
and lets us reject duplicate keys, which ``safe_load`` silently overwrites.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import CostsimError, format_path


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


def _build(loader: yaml.SafeLoader, node: yaml.Node, loc: tuple, lines: dict, file: str) -> Any:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise CostsimError("YAML merge keys ('<<') are not supported", file,
                                   key_node.start_mark.line + 1, format_path(loc))
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise CostsimError("mapping keys must be plain scalars", file,
                                   key_node.start_mark.line + 1, format_path(loc))
            if isinstance(key, (int, float, bool)) and not isinstance(key, str):
                key = key_node.value  # keep the text the user wrote ("1", "yes")
            if key in out:
                raise CostsimError(
                    f"duplicate key '{key}' (first at line {lines[loc + (key,)]})",
                    file, key_node.start_mark.line + 1, format_path(loc + (key,)))
            lines[loc + (key,)] = key_node.start_mark.line + 1
            out[key] = _build(loader, value_node, loc + (key,), lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, loc + (i,), lines, file) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def parse_yaml(text: str, file: str) -> Document:
    """Parse ``text``; errors name ``file`` and the line."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise CostsimError("file is empty (expected a YAML mapping)", file)
            lines: dict[tuple, int] = {}
            data = _build(loader, node, (), lines, file)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = (exc.problem or exc.context or "malformed YAML").strip()
        raise CostsimError(f"not valid YAML: {what}", file, line) from None
    except yaml.YAMLError as exc:
        raise CostsimError(f"not valid YAML: {exc}", file) from None
    if not isinstance(data, dict):
        raise CostsimError(f"expected a YAML mapping at the top, got {type(data).__name__}",
                           file, 1)
    return Document(data=data, file=file, lines=lines)


def load_yaml(path: str | Path) -> Document:
    """Read and parse a YAML file; a missing, unreadable or non-UTF-8 file is a CostsimError."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise CostsimError("file not found", str(path)) from None
    except IsADirectoryError:
        raise CostsimError("is a directory, expected a YAML file", str(path)) from None
    except OSError as exc:
        raise CostsimError(f"cannot read file: {exc.strerror}", str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CostsimError("not a text file (expected UTF-8 YAML)", str(path)) from None
    if not text.strip():
        raise CostsimError("file is empty (expected a YAML mapping)", str(path))
    return parse_yaml(text, str(path))
