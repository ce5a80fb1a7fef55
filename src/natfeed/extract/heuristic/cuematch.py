"""Fast first-match search of cue tables (``lexicons.py``) for the heuristic classifier.

Python's ``re`` tries every alternative at every position, so one big alternation of all cues is
slow. :class:`CueMatcher` instead runs only the cue fragments whose required literals a single
prefix-trie scan (:class:`LiteralScanner`) found in the text; :class:`StartMatcher` anchors a table
at the start of a turn.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from re import _constants as _C  # noqa: PLC2701 - the regex parser gives each cue's required literals
from re import _parser as _P  # noqa: PLC2701
from typing import Any

from natfeed.extract.heuristic import lexicons as lx

Match = tuple[int, int, str, str]
"""(start, end, language, matched text) of a cue."""


def _group(lang: str, patterns: Sequence[str]) -> str:
    body = "|".join(patterns)
    if lang in lx.SPACED:
        return rf"(?P<{lang}>(?<!\w)(?:{body})(?!\w))"
    return rf"(?P<{lang}>{body})"


class StartMatcher:
    """A cue table matched only at the start of a turn (after an optional filler word)."""

    def __init__(self, table: lx.Table) -> None:
        self._table = table
        self._regexes: dict[frozenset[str], re.Pattern[str]] = {}

    def _regex(self, skip: frozenset[str]) -> re.Pattern[str]:
        regex = self._regexes.get(skip)
        if regex is None:
            alternation = "|".join(_group(lang, pats) for lang, pats in self._table.items() if lang not in skip)
            filler = r"(?:(?:ok(?:ay)?|oh|hmm+|well|but|and|so|yes|yeah|ah|嗯|哦|ну|а|и|bueno|bon|also|então)[\s,.!…]+)?"
            regex = self._regexes[skip] = re.compile(rf"^[\s\W]{{0,3}}{filler}(?:{alternation})")
        return regex

    def search(self, text: str, skip: frozenset[str] = frozenset()) -> Match | None:
        """(start, end, language, matched text) of the opening cue, or None; ``skip``: languages not tried."""
        m = self._regex(skip).match(text)
        if m is None or m.lastgroup is None:
            return None
        return m.start(m.lastgroup), m.end(), m.lastgroup, m.group(m.lastgroup)


def required_literals(seq: Any) -> frozenset[str] | None:
    """Literals one of which every match of a parsed regex contains (None when there is none)."""
    best: frozenset[str] | None = None
    run: list[str] = []
    items: list[frozenset[str] | None] = []
    for op, av in list(seq) + [(None, None)]:
        if op is _C.LITERAL:
            run.append(chr(av))
            continue
        if run:
            items.append(frozenset(("".join(run).strip(),)))
            run = []
        if op is _C.SUBPATTERN:
            items.append(required_literals(av[3]))
        elif op is _C.BRANCH:
            subs = [required_literals(b) for b in av[1]]
            items.append(None if any(x is None for x in subs) else frozenset().union(*subs))  # type: ignore[arg-type]
        elif op in (_C.MAX_REPEAT, _C.MIN_REPEAT) and av[0] >= 1:
            items.append(required_literals(av[2]))
    for item in items:
        if item and (best is None or min(map(len, item)) > min(map(len, best))):
            best = item
    return best


class LiteralScanner:
    """Finds which of a set of literals occur in a text with one prefix-trie regex scan.

    The scan is non-overlapping, so a literal that starts inside a longer match can be missed;
    literals are stripped of surrounding spaces to keep such overlaps rare.
    """

    def __init__(self, literals: set[str]) -> None:
        words = sorted(literals)
        # a literal found also stands for every shorter literal inside it
        self._closure = {w: frozenset(o for o in words if o in w) for w in words}
        self._scan = re.compile(trie_regex(words)) if words else None

    def present(self, text: str) -> set[str]:
        """The literals found in ``text`` (non-overlapping scan, longest first, prefixes added)."""
        if self._scan is None:
            return set()
        out: set[str] = set()
        for lit in set(self._scan.findall(text)):
            out |= self._closure[lit]
        return out


class CueMatcher:
    """First match of any fragment of a cue table, fast on texts without cues.

    Python's ``re`` tries every alternative at every position, so one big alternation costs ~100 µs
    on a 400-character head. Instead each fragment keeps the literals one of which it must contain;
    a trie scan (shared by all tables, see :class:`LiteralScanner`) finds the present literals and
    only the fragments owning them are run.
    """

    def __init__(self, table: lx.Table) -> None:
        self._patterns: list[tuple[str, re.Pattern[str]]] = []
        self._always: list[int] = []
        self.owners: dict[str, set[int]] = {}
        for lang, frags in table.items():
            for frag in frags:
                idx = len(self._patterns)
                body = rf"(?<!\w)(?:{frag})(?!\w)" if lang in lx.SPACED else frag
                self._patterns.append((lang, re.compile(body)))
                lits = required_literals(_P.parse(frag))
                if not lits:
                    self._always.append(idx)
                for lit in lits or ():
                    self.owners.setdefault(lit, set()).add(idx)
        self._scanner = LiteralScanner(set(self.owners))

    def search(
        self, text: str, present: set[str] | None = None, skip: frozenset[str] = frozenset()
    ) -> Match | None:
        """(start, end, language, matched text) of the earliest cue in ``text``, or None.

        ``present`` are the literals already known to occur in ``text`` (from a shared scan);
        cues of the languages in ``skip`` are not tried.
        """
        if present is None:
            present = self._scanner.present(text)
        cands: set[int] = set(self._always)
        for lit in present & self.owners.keys():
            cands |= self.owners[lit]
        best: Match | None = None
        for idx in cands:
            lang, pat = self._patterns[idx]
            if lang in skip:
                continue
            m = pat.search(text)
            if m is not None and (best is None or (m.start(), -m.end()) < (best[0], -best[1])):
                best = (m.start(), m.end(), lang, m.group(0))
        return best


def trie_regex(words: Sequence[str]) -> str:
    """A regex matching the longest of ``words`` at a position, factored as a prefix trie."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}
    return _trie_node(trie)


def _trie_node(node: dict[str, Any]) -> str:
    alts = [re.escape(ch) + _trie_node(child) for ch, child in sorted(node.items()) if ch]
    if not alts:
        return ""
    body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
    return f"(?:{body})?" if "" in node else body
