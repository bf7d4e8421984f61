"""Map config keys to the line of the TOML file that defines them.

``tomllib`` keeps no positions, so this scans the text once for what our configs use:
table headers (``[a.b]``, ``[[a]]``), dotted and quoted keys, arrays and inline tables
(also over several lines), and every string form. It runs only on text ``tomllib``
accepted, and any surprise just ends the scan: line numbers are a courtesy, never a reason
to fail.
"""

from __future__ import annotations

import bisect
import contextlib

from ._paths import Path

_BARE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_SCALAR_END = frozenset(",]}\n#\r")


class LineMap:
    """Line numbers of keys; a key not found falls back to its nearest known parent."""

    def __init__(self, lines: dict[Path, int] | None = None) -> None:
        self.lines = lines or {}

    @classmethod
    def scan(cls, text: str) -> LineMap:
        scanner = _Scanner(text)
        with contextlib.suppress(IndexError, ValueError):
            scanner.document()
        return cls(scanner.found)

    def line_of(self, path: Path) -> int | None:
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


class _Scanner:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.found: dict[Path, int] = {}
        self._newlines = [n for n, ch in enumerate(text) if ch == "\n"]
        self._array_tables: dict[Path, int] = {}

    def line(self, index: int | None = None) -> int:
        return bisect.bisect_left(self._newlines, self.i if index is None else index) + 1

    def record(self, path: Path, index: int) -> None:
        self.found.setdefault(path, self.line(index))

    def peek(self, n: int = 1) -> str:
        return self.s[self.i : self.i + n]

    def skip_space(self, newlines: bool) -> None:
        while self.i < len(self.s):
            ch = self.s[self.i]
            if ch in " \t" or (newlines and ch in "\r\n"):
                self.i += 1
            elif ch == "#":
                end = self.s.find("\n", self.i)
                self.i = len(self.s) if end < 0 else end
            else:
                return

    def document(self) -> None:
        table: Path = ()
        while True:
            self.skip_space(newlines=True)
            if self.i >= len(self.s):
                return
            start = self.i
            if self.peek() == "[":
                array = self.peek(2) == "[["
                self.i += 2 if array else 1
                table = self.key()
                self.i += 2 if array else 1
                if array:
                    index = self._array_tables.get(table, -1) + 1
                    self._array_tables[table] = index
                    self.record(table, start)
                    table = (*table, index)
                for end in range(1, len(table) + 1):
                    self.record(table[:end], start)
                continue
            key = self.key()
            self.expect("=")
            path = (*table, *key)
            for end in range(len(table) + 1, len(path) + 1):
                self.record(path[:end], start)
            self.value(path)

    def expect(self, ch: str) -> None:
        self.skip_space(newlines=False)
        if self.peek() != ch:
            raise ValueError(f"expected {ch!r} at {self.i}")
        self.i += 1

    def key(self) -> tuple[str, ...]:
        parts: list[str] = []
        while True:
            self.skip_space(newlines=False)
            ch = self.peek()
            if ch in ('"', "'"):
                parts.append(self.string())
            else:
                start = self.i
                while self.i < len(self.s) and self.s[self.i] in _BARE_CHARS:
                    self.i += 1
                if self.i == start:
                    raise ValueError(f"expected a key at {self.i}")
                parts.append(self.s[start : self.i])
            self.skip_space(newlines=False)
            if self.peek() != ".":
                return tuple(parts)
            self.i += 1

    def string(self) -> str:
        quote = self.peek()
        if self.peek(3) == quote * 3:
            self.i += 3
            end = self.s.index(quote * 3, self.i)
            if quote == '"':
                while self._escaped(end):
                    end = self.s.index(quote * 3, end + 1)
            while self.s.startswith(quote, end + 3):
                end += 1
            text = self.s[self.i : end]
            self.i = end + 3
            return text
        self.i += 1
        start = self.i
        while self.s[self.i] != quote or (quote == '"' and self._escaped(self.i)):
            self.i += 1
        self.i += 1
        return self.s[start : self.i - 1]

    def _escaped(self, index: int) -> bool:
        slashes = 0
        while index - slashes - 1 >= 0 and self.s[index - slashes - 1] == "\\":
            slashes += 1
        return slashes % 2 == 1

    def value(self, path: Path) -> None:
        self.skip_space(newlines=False)
        ch = self.peek()
        if ch in ('"', "'"):
            self.string()
        elif ch == "[":
            self.i += 1
            index = 0
            while True:
                self.skip_space(newlines=True)
                if self.peek() == "]":
                    self.i += 1
                    return
                self.record((*path, index), self.i)
                self.value((*path, index))
                self.skip_space(newlines=True)
                if self.peek() == ",":
                    self.i += 1
                    index += 1
        elif ch == "{":
            self.i += 1
            while True:
                self.skip_space(newlines=True)
                if self.peek() == "}":
                    self.i += 1
                    return
                start = self.i
                key = self.key()
                self.expect("=")
                inner = (*path, *key)
                for end in range(len(path) + 1, len(inner) + 1):
                    self.record(inner[:end], start)
                self.value(inner)
                self.skip_space(newlines=True)
                if self.peek() == ",":
                    self.i += 1
        else:
            start = self.i
            while self.i < len(self.s) and self.s[self.i] not in _SCALAR_END:
                self.i += 1
            if self.i == start:
                raise ValueError(f"expected a value at {self.i}")
