"""Split a long prompt into CLIP windows: each chunk is BOS + up to 75 tokens + EOS, padded to 77.

Chunks never cut a word (unless one word alone exceeds 75 tokens) and prefer to break after a
sentence, then a phrase, then any word, and never inside a quoted title where that fits. The
break points come from a small dynamic programme: first the fewest chunks the words allow, then
the strongest boundaries among those splits, so long prompts never grow extra chunks to find a
nicer break.
"""

from __future__ import annotations

import bisect
import logging
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)

CHUNK_TOKENS = 75  # 77 minus BOS and EOS
WINDOW = CHUNK_TOKENS + 2

# Cost of ending a chunk after a word, by what follows the word (lower is better).
COST_SENTENCE, COST_PHRASE, COST_WORD, COST_IN_QUOTE, COST_IN_WORD = 0, 1, 3, 10, 1000
_SENTENCE_END = re.compile(r"[.!?…]['\"”’)\]]*$")
_PHRASE_END = re.compile(r"[,;:—–)\]]['\"”’]*$")
_QUOTES = "\"“”«»"
_PACK = 1 << 32  # one more chunk outweighs any sum of break costs


@dataclass(frozen=True)
class Chunked:
    """One prompt's token ids (no BOS/EOS), split into chunks of at most 75."""

    chunks: list[list[int]]
    dropped_tokens: int = 0

    @property
    def n_tokens(self) -> int:
        return sum(len(c) for c in self.chunks)


def _units(text: str, ids: list[int], offsets: list[tuple[int, int]]) -> list[tuple[list[int], int]]:
    """Group tokens into whitespace-delimited words; each word gets the cost of breaking after it."""
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    starts = [s for s, _ in words]
    tokens_of: dict[int, list[int]] = {}
    for tid, (start, _) in zip(ids, offsets):
        tokens_of.setdefault(max(bisect.bisect_right(starts, start) - 1, 0), []).append(tid)
    units, in_quote = [], False
    for w, (start, end) in enumerate(words):
        word = text[start:end]
        in_quote ^= sum(word.count(q) for q in _QUOTES) % 2 == 1
        if w not in tokens_of:
            continue
        if in_quote:
            cost = COST_IN_QUOTE
        elif _SENTENCE_END.search(word):
            cost = COST_SENTENCE
        elif _PHRASE_END.search(word):
            cost = COST_PHRASE
        else:
            cost = COST_WORD
        units.append((tokens_of[w], cost))
    return units


def _split_long_words(units: list[tuple[list[int], int]]) -> list[tuple[list[int], int]]:
    out = []
    for toks, cost in units:
        while len(toks) > CHUNK_TOKENS:
            out.append((toks[:CHUNK_TOKENS], COST_IN_WORD))
            toks = toks[CHUNK_TOKENS:]
        out.append((toks, cost))
    return out


def _best_breaks(units: list[tuple[list[int], int]]) -> list[int]:
    """Indices where chunks end: fewest chunks first, then the lowest total break cost.

    Scores are packed as chunks * _PACK + cost in one int: comparing ints instead of tuples keeps
    this inner loop (words x words-per-chunk, run for every prompt) cheap in Python.
    """
    n = len(units)
    lengths = [len(toks) for toks, _ in units]
    end_costs = [cost for _, cost in units]
    end_costs[-1] = 0  # the prompt's end is a free break
    inf = 1 << 62
    best = [inf] * (n + 1)
    back = [0] * (n + 1)
    best[0] = 0
    for i in range(1, n + 1):
        size, end_cost, here, where = 0, _PACK + end_costs[i - 1], inf, 0
        for j in range(i - 1, -1, -1):  # chunk = units[j:i]
            size += lengths[j]
            if size > CHUNK_TOKENS:
                break
            cand = best[j] + end_cost
            if cand < here:
                here, where = cand, j
        best[i], back[i] = here, where
    ends, i = [], n
    while i > 0:
        ends.append(i)
        i = back[i]
    return ends[::-1]


def chunk_prompt(tokenizer, text: str, max_tokens: int = 512) -> Chunked:
    """Token ids of `text` (without BOS/EOS) in chunks of <= 75, cut at `max_tokens` with a warning."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    units = _split_long_words(_units(text, ids, offsets))
    dropped = 0
    if len(ids) > max_tokens:
        kept, total = [], 0
        for toks, cost in units:
            if total + len(toks) > max_tokens:
                break
            kept.append((toks, cost))
            total += len(toks)
        dropped = len(ids) - total
        units = kept
        log.warning("prompt has %d tokens; dropped the last %d past the %d-token limit (text.max_tokens): %.60s...", len(ids), dropped, max_tokens, text)
    if not units:
        return Chunked([[]], dropped)
    chunks, start = [], 0
    for end in _best_breaks(units):
        chunks.append([t for toks, _ in units[start:end] for t in toks])
        start = end
    return Chunked(chunks, dropped)


def window_ids(tokenizer, chunk: list[int]) -> list[int]:
    """BOS + chunk + EOS, padded to 77 with the tokenizer's pad token (EOS for CLIP-L, 0 for OpenCLIP)."""
    ids = [tokenizer.bos_token_id, *chunk, tokenizer.eos_token_id]
    return ids + [tokenizer.pad_token_id] * (WINDOW - len(ids))
