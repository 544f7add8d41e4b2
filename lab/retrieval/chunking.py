"""Chunking by structure: sections (markdown headings), then paragraphs, then sentences, packed
into chunks of at most `chunk_tokens` tokens of the embedder's tokenizer, with `overlap` tokens
of the previous chunk's tail carried into the next one inside a section.

A small section that fits joins the current chunk; a section that does not fit starts a new
chunk, so a chunk starts at a heading whenever it can. Every chunk is a contiguous span of its
document's text, so a citation can point at exact characters.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .corpus import Document

DEFAULT_CHUNK_TOKENS = 160  # MiniLM was trained on <=128 word pieces and truncates at 256
DEFAULT_OVERLAP = 32

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+|\n+")


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Chunk:
    source: str
    file: str
    title: str
    heading: str  # the section heading the chunk starts under ('' before the first heading)
    start: int  # character span in the document's text
    end: int
    text: str
    tokens: int
    embed_text: str = ""  # what the embedder sees: a "title > heading" line, then the text
    hash: str = ""

    def __post_init__(self):
        if not self.embed_text:
            self.embed_text = f"{context_line(self.title, self.heading, self.text)}\n\n{self.text}"
        if not self.hash:
            self.hash = text_hash(self.embed_text)


def context_line(title: str, heading: str, text: str) -> str:
    """'Title > Heading', leaving out the heading when the text already opens with it."""
    head = heading.strip()
    opens_with_heading = bool(head) and text.lstrip("# ").startswith(head)
    if head and head != title and not opens_with_heading:
        return f"{title} > {head}"
    return title


@dataclass
class _Piece:  # a sentence (or a word window of a very long one): the smallest unit
    start: int
    end: int
    tokens: int


@dataclass
class _Section:
    heading: str
    paragraphs: list[list[_Piece]] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return sum(p.tokens for para in self.paragraphs for p in para)


def chunk_document(
    doc: Document,
    count_tokens: Callable[[str], int],
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    overlap: int = DEFAULT_OVERLAP,
) -> list[Chunk]:
    if chunk_tokens < 16:
        raise ValueError(f"chunk_tokens must be at least 16, got {chunk_tokens}")
    if not 0 <= overlap < chunk_tokens // 2:
        raise ValueError(f"overlap must be between 0 and chunk_tokens/2 ({chunk_tokens // 2}), got {overlap}")
    text = doc.text
    sections = _sections(text, count_tokens, chunk_tokens)
    chunks: list[Chunk] = []
    cur: list[_Piece] = []
    cur_heading = ""
    whole = True  # cur holds only complete sections (so another small section may join it)

    def flush(keep_overlap: bool) -> None:
        nonlocal cur
        if not cur:
            return
        start, end = cur[0].start, cur[-1].end
        chunks.append(
            Chunk(doc.source, doc.file, doc.title, cur_heading, start, end, text[start:end], sum(p.tokens for p in cur))
        )
        tail: list[_Piece] = []
        if keep_overlap and overlap:
            for p in reversed(cur[1:]):  # never the whole chunk: each chunk must move forward
                if sum(t.tokens for t in tail) + p.tokens > overlap:
                    break
                tail.insert(0, p)
            if not tail:  # the last sentence alone is longer than the overlap: carry its last words
                tail = _word_tail(text, cur[-1], count_tokens, overlap)
        cur = tail

    def used() -> int:
        return sum(p.tokens for p in cur)

    for section in sections:
        if cur and (not whole or used() + section.tokens > chunk_tokens):
            flush(keep_overlap=False)  # a section that does not fit starts its own chunk
        if not cur:
            cur_heading, whole = section.heading, True
        for para in section.paragraphs:
            para_tokens = sum(p.tokens for p in para)
            if used() + para_tokens <= chunk_tokens:
                cur.extend(para)
                continue
            whole = False
            if para_tokens <= chunk_tokens:  # the paragraph fits a chunk of its own: break before it
                flush(keep_overlap=True)
                cur_heading = section.heading
                while cur and used() + para_tokens > chunk_tokens:
                    cur.pop(0)
                cur.extend(para)
                continue
            for piece in para:  # a paragraph longer than a chunk: split between sentences
                if cur and used() + piece.tokens > chunk_tokens:
                    flush(keep_overlap=True)
                    cur_heading = section.heading
                    while cur and used() + piece.tokens > chunk_tokens:
                        cur.pop(0)
                cur.append(piece)
    flush(keep_overlap=False)
    return chunks


def _sections(text: str, count_tokens, chunk_tokens: int) -> list[_Section]:
    """Split the text into heading-led sections of paragraphs of sentence pieces."""
    sections = [_Section("")]
    para: list[tuple[int, int]] = []  # line spans of the current paragraph

    def end_paragraph():
        if para:
            pieces = _pieces(text, para[0][0], para[-1][1], count_tokens, chunk_tokens)
            if pieces:
                sections[-1].paragraphs.append(pieces)
            para.clear()

    pos = 0
    for line in text.splitlines(keepends=True):
        start, end = pos, pos + len(line.rstrip("\r\n"))
        pos += len(line)
        stripped = line.strip()
        m = _HEADING.match(stripped)
        if not stripped:
            end_paragraph()
        elif m:
            end_paragraph()
            sections.append(_Section(m.group(2).strip()))
            para.append((start, end))
            end_paragraph()  # the heading line is its own paragraph, so it opens the section's chunk
        else:
            para.append((start, end))
    end_paragraph()
    return [s for s in sections if s.paragraphs]


def _pieces(text: str, start: int, end: int, count_tokens, chunk_tokens: int) -> list[_Piece]:
    pieces = []
    pos = start
    for m in list(_SENTENCE_END.finditer(text, start, end)) + [None]:
        stop = m.start() if m else end
        if text[pos:stop].strip():
            s, e = _trim(text, pos, stop)
            n = count_tokens(text[s:e])
            pieces.extend(_windows(text, s, e, count_tokens, chunk_tokens) if n > chunk_tokens else [_Piece(s, e, n)])
        if m:
            pos = m.end()
    return pieces


def _windows(text: str, start: int, end: int, count_tokens, chunk_tokens: int) -> list[_Piece]:
    """A sentence longer than a chunk: cut it between words into windows that fit."""
    words = [m.span() for m in re.finditer(r"\S+", text[start:end])]
    out, first = [], 0
    while first < len(words):
        last = first
        while (
            last + 1 < len(words)
            and count_tokens(text[start + words[first][0] : start + words[last + 1][1]]) <= chunk_tokens
        ):
            last += 1
        s, e = start + words[first][0], start + words[last][1]
        out.append(_Piece(s, e, min(count_tokens(text[s:e]), chunk_tokens)))
        first = last + 1
    return out


def _word_tail(text: str, piece: _Piece, count_tokens, overlap: int) -> list[_Piece]:
    starts = [piece.start + m.start() for m in re.finditer(r"\S+", text[piece.start : piece.end])]
    best: list[_Piece] = []
    for s in reversed(starts[1:]):  # a strict suffix of the piece, growing word by word
        n = count_tokens(text[s : piece.end])
        if n > overlap:
            break
        best = [_Piece(s, piece.end, n)]
    return best


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
