"""Keep a user's comments when a price table is rewritten.

``price-table update`` and ``price-table scores`` write the whole table anew (stable layout,
exact numbers), which would drop every comment a user put in their table. :func:`carry_comments`
moves them over: each comment is tied to the key (or list item) it sits above or beside in the
old text, and is put back above or beside the same key in the new text, wherever the writer put
it. Comments of keys the new table no longer has are returned so they can be reported; comments
after the last key stay at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

__all__ = ["carry_comments"]


@dataclass
class _Spot:
    line: int                      # 0-based line of the key / item
    indent: int
    above: list[str] = field(default_factory=list)
    inline: str | None = None


def _spots(text: str) -> tuple[dict[tuple, _Spot], int]:
    """Every key path -> where it is; and the last line holding YAML content."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}, -1
    lines = text.splitlines()
    out: dict[tuple, _Spot] = {}
    last = [-1]

    def inline_after(line_no: int, col: int) -> str | None:
        if line_no >= len(lines):
            return None
        rest = lines[line_no][col:]
        rest = rest.lstrip().lstrip(":").lstrip() if rest.lstrip().startswith(":") else rest
        rest = rest.strip()
        return rest if rest.startswith("#") else None

    def walk(node, loc: tuple) -> None:
        if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False):
            last[0] = max(last[0], node.end_mark.line - (1 if node.end_mark.column == 0 else 0))
        if isinstance(node, yaml.MappingNode) and not node.flow_style:
            for k, v in node.value:
                key = k.value
                spot = _Spot(line=k.start_mark.line, indent=k.start_mark.column)
                same_line = v.start_mark.line == k.start_mark.line
                flat = isinstance(v, yaml.ScalarNode) or getattr(v, "flow_style", False)
                if same_line and flat and v.end_mark.line == k.start_mark.line:
                    spot.inline = inline_after(v.end_mark.line, v.end_mark.column)
                elif not same_line or not flat:
                    spot.inline = inline_after(k.end_mark.line, k.end_mark.column)
                out[loc + (key,)] = spot
                walk(v, loc + (key,))
        elif isinstance(node, yaml.SequenceNode) and not node.flow_style:
            for i, item in enumerate(node.value):
                spot = _Spot(line=item.start_mark.line, indent=item.start_mark.column)
                flat = isinstance(item, yaml.ScalarNode) or getattr(item, "flow_style", False)
                if flat and item.end_mark.line == item.start_mark.line:
                    spot.inline = inline_after(item.end_mark.line, item.end_mark.column)
                out[loc + (i,)] = spot
                walk(item, loc + (i,))

    if root is not None:
        walk(root, ())
    return out, last[0]


def _comments_above(lines: list[str], line: int) -> list[str]:
    block: list[str] = []
    i = line - 1
    while i >= 0:
        s = lines[i].strip()
        if s.startswith("#") or not s:
            block.append(lines[i])
            i -= 1
            continue
        break
    block.reverse()
    while block and not block[0].strip():
        block.pop(0)
    if not any(ln.strip() for ln in block):
        return []
    return block


def carry_comments(old_text: str, new_text: str) -> tuple[str, list[str]]:
    """``new_text`` with the comments of ``old_text`` put back at the same keys; and the
    comments that had no place (their key is gone)."""
    old_lines = old_text.splitlines()
    old, old_last = _spots(old_text)
    if not old:
        return new_text, []
    for loc, spot in old.items():
        spot.above = _comments_above(old_lines, spot.line)
    tail = [ln for ln in old_lines[old_last + 1:] if ln.strip().startswith("#")]
    new_lines = new_text.splitlines()
    new, _ = _spots(new_text)
    lost: list[str] = []
    inserts: dict[int, list[str]] = {}
    for loc, spot in old.items():
        if not spot.above and not spot.inline:
            continue
        target = new.get(loc)
        if target is None:
            lost += [ln.strip() for ln in spot.above if ln.strip()]
            if spot.inline:
                lost.append(spot.inline)
            continue
        if spot.above:
            pad = " " * target.indent
            inserts[target.line] = [pad + ln.strip() if ln.strip() else "" for ln in spot.above]
        if spot.inline and "#" not in new_lines[target.line]:
            new_lines[target.line] = f"{new_lines[target.line]}  {spot.inline}"
    for line in sorted(inserts, reverse=True):
        new_lines[line:line] = inserts[line]
    if tail:
        new_lines += tail
    return "\n".join(new_lines) + "\n", lost
