"""The files of a log: finding them (a file, a directory or a glob pattern), their format and
compression from the name, unpacking what DuckDB cannot read compressed, and turning a data
row index into the ``file:line`` an error names (:class:`_Locator`).
"""

from __future__ import annotations

import csv
import glob as globmod
import os
import shutil
from pathlib import Path

from ...errors import CostsimError

_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
            ".parquet": "parquet", ".pq": "parquet"}
_NATIVE = (".gz",)                               # DuckDB decompresses these itself
_UNPACK = (".bz2", ".xz", ".zip", ".zst")        # Python unpacks these to a temporary file
_COMPRESSED = _NATIVE + _UNPACK
_OTHER_ARCHIVES = (".bz", ".lz4", ".7z", ".rar", ".tar", ".lz", ".lzma", ".z", ".br")


# --- locating rows in files -----------------------------------------------------------------

def _open_text(path: str):
    low = path.lower()
    if low.endswith(".gz"):
        import gzip
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


class _Locator:
    """Turns a 0-based data-row index into ``file:line`` (work done only on an error)."""

    def __init__(self, shown: str, actual: str, fmt: str):
        self.shown, self.actual, self.fmt = shown, actual, fmt

    def error(self, row: int, column: str | None, message: str) -> CostsimError:
        if self.fmt == "parquet":
            return CostsimError(message, self.shown,
                                path=f"row {row + 1}" + (f": {column}" if column else ""))
        line = self.line(row)
        if line is None:
            return CostsimError(message, self.shown,
                                path=f"row {row + 1}" + (f": {column}" if column else ""))
        return CostsimError(message, self.shown, line, column)

    def line(self, row: int) -> int | None:
        try:
            with _open_text(self.actual) as fh:
                if self.fmt == "csv":
                    csv.field_size_limit(2**31 - 1)
                    reader = csv.reader(fh)
                    start = 1
                    seen = -1           # the header is record -1
                    for rec in reader:
                        if rec:         # DuckDB skips blank lines
                            if seen == row:
                                return start
                            seen += 1
                        start = reader.line_num + 1
                    return None
                seen = 0
                for n, text in enumerate(fh, start=1):
                    if text.strip():
                        if seen == row:
                            return n
                        seen += 1
        except (OSError, UnicodeDecodeError, ValueError, ImportError, EOFError, csv.Error):
            return None
        return None


# --- finding the files ----------------------------------------------------------------------

def _kind(path: str) -> tuple[str, str | None]:
    """(format, compression suffix or None) from the file name."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    comp = None
    if suffixes and suffixes[-1] in _COMPRESSED:
        comp = suffixes[-1]
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext in _OTHER_ARCHIVES and len(suffixes) > 1 and suffixes[-2] in _FORMATS:
        # runs.csv.lz4: a log in a compression costsim does not read
        raise CostsimError(f"{ext} compression is not supported (use .gz, .zst, .bz2, .xz or "
                           f".zip, or decompress the file first)", path)
    if ext not in _FORMATS:
        raise CostsimError(f"unknown runs-log format '{ext or '(no extension)'}' (expected .csv, "
                           f".jsonl/.ndjson/.json or .parquet, optionally compressed)", path)
    return _FORMATS[ext], comp


def log_format(path: str | Path) -> str:
    return _kind(str(path))[0]


def _is_log_name(name: str) -> bool:
    try:
        _kind(name)
        return True
    except CostsimError:
        return False


def find_files(path: str) -> list[str]:
    """The files a path names: itself, the runs-log files of a directory, or a glob's matches."""
    p = Path(path)
    if any(ch in path for ch in "*?[") and not p.exists():
        files = sorted(f for f in globmod.glob(path, recursive=True) if Path(f).is_file())
        if not files:
            raise CostsimError("no file matches this pattern", path)
        return files
    if not p.exists():
        raise CostsimError("file not found", path)
    if p.is_dir():
        files = sorted(str(f) for f in p.iterdir() if f.is_file() and _is_log_name(f.name))
        if not files:
            raise CostsimError("is a directory with no runs-log files in it (.csv, .jsonl, "
                               ".parquet, optionally compressed)", path)
        return files
    if not p.is_file():
        raise CostsimError("not a regular file", path)
    return [path]


def _unpack(path: str, comp: str, tmpdir: str) -> str:
    """Decompress ``path`` into ``tmpdir``; return the new path."""
    name = Path(path).name[: -len(comp)]
    out = os.path.join(tmpdir, f"{len(os.listdir(tmpdir))}-{name}")
    try:
        if comp == ".zip":
            import zipfile

            try:
                zf = zipfile.ZipFile(path)
            except zipfile.BadZipFile:
                raise CostsimError("not a valid .zip file", path) from None
            with zf:
                members = [i for i in zf.infolist() if not i.is_dir()]
                if len(members) != 1:
                    raise CostsimError(f"a .zip runs log must hold exactly one file, this one "
                                       f"holds {len(members)}", path)
                with zf.open(members[0]) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            return out
        if comp == ".zst":
            try:
                import zstandard as mod
            except ImportError:
                raise CostsimError("reading .zst needs the zstandard package (pip install "
                                   "zstandard), or decompress the file first", path) from None
        elif comp == ".bz2":
            import bz2 as mod
        else:
            import lzma as mod
        with mod.open(path, "rb") as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        return out
    except CostsimError:
        raise
    except Exception as exc:  # noqa: BLE001 - OSError, EOFError, lzma.LZMAError, zlib.error ...
        what = {".bz2": "bzip2", ".xz": "xz", ".zip": "zip", ".zst": "zstd"}[comp]
        raise CostsimError(f"not a valid {what} file, or truncated ({_reason(exc)})",
                           path) from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.encode("ascii", "backslashreplace").decode("ascii")[:200]
