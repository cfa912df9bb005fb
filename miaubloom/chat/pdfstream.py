"""A PDF written as it goes: pages leave as soon as they are full, fonts come last.

No well-kept Python PDF library streams: fpdf2 and ReportLab keep the whole
document until it is saved, so nothing reaches the client until the end, and
memory grows with the conversation. The same 100,000-message transcript took
fpdf2 347 s and +53 MiB, this writer 7.6 s and +5 MiB, its first bytes at once
(bench/export_pdf_libraries.py, bench/RESULTS.md). A PDF needs only its
cross-reference table at the end, so
this writer sends each page's content stream and page object when the page is
done and keeps the byte offset of each object (8 bytes a page). The fonts are
written after the last page: fontTools subsets them to the glyphs used, with
the widths (W) that line breaking used and a ToUnicode map, so text extraction
gives back every character, accents and emoji included. Each distinct
character gets its own CID (Identity-H, two bytes), so even a character in no
font (drawn as .notdef) is extracted as itself. The total page count is a form
XObject written at the end too, so each page can say "Página N de M".
"""

from __future__ import annotations

import functools
import io
import threading
import unicodedata
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

FONTS = Path(__file__).with_name("fonts")
# Noto Sans for text, Noto Emoji (monochrome outlines) for what Noto Sans lacks.
TEXT_FONT = FONTS / "NotoSans-Regular.ttf"
EMOJI_FONT = FONTS / "NotoEmoji-Regular.ttf"
# Two-byte codes; CID 0 is .notdef.
MAX_CIDS = 0xFFFF
COMPRESSION = 3  # zlib level: level 6 and up cost ~2x the time for ~5% smaller pages

A4 = (595.28, 841.89)

_load_lock = threading.Lock()


@dataclass(frozen=True)
class Face:
    """A font file's metrics, loaded once per process: cmap, advances, names."""

    path: Path
    cmap: dict[int, str]
    advances: dict[str, int]  # in thousandths of an em
    ascent: int
    descent: int
    cap_height: int
    bbox: tuple[int, int, int, int]
    name: str


@functools.cache
def _face(path: Path) -> Face:
    with _load_lock, TTFont(path, lazy=True) as font:
        return _read_face(path, font)


def _read_face(path: Path, font: TTFont) -> Face:
    scale = 1000 / font["head"].unitsPerEm
    hmtx = font["hmtx"].metrics
    head, hhea, os2 = font["head"], font["hhea"], font["OS/2"]
    name = font["name"].getDebugName(6) or path.stem
    return Face(
        path=path,
        cmap=dict(font.getBestCmap()),
        advances={g: round(adv * scale) for g, (adv, _lsb) in hmtx.items()},
        ascent=round(hhea.ascent * scale),
        descent=round(hhea.descent * scale),
        cap_height=round(getattr(os2, "sCapHeight", hhea.ascent) * scale),
        bbox=tuple(round(v * scale) for v in (head.xMin, head.yMin, head.xMax, head.yMax)),
        name=name.replace(" ", ""),
    )


class FontUse:
    """The characters one document drew in one face: CID, glyph and width of each."""

    def __init__(self, face: Face, resource: str) -> None:
        self.face = face
        self.resource = resource
        self.chars: list[str] = []  # CID n is chars[n - 1]
        self.glyphs: list[str] = []
        self.widths: list[int] = []
        self.cids: dict[str, int] = {}

    def cid(self, char: str, glyph: str) -> int | None:
        """The CID of char (drawn with glyph), allocating one; None when the codes ran out."""
        found = self.cids.get(char)
        if found is not None:
            return found
        if len(self.chars) >= MAX_CIDS - 1:
            return None
        self.chars.append(char)
        self.glyphs.append(glyph)
        self.widths.append(self.face.advances.get(glyph, 0))
        found = self.cids[char] = len(self.chars)
        return found


@dataclass(frozen=True)
class Glyph:
    """One character as drawn: which font, its two-byte code, its advance (1/1000 em)."""

    font: int
    code: bytes
    width: int


class Document:
    """A PDF written page by page as bytes; fonts and the page count at the end."""

    # Fixed object numbers: the rest are numbered as they are written.
    CATALOG, PAGES, TOTAL, FIRST_FONT = 1, 2, 3, 4

    def __init__(self, title: str, size: tuple[float, float] = A4) -> None:
        self.size = size
        self.title = title
        self.fonts = [
            FontUse(_face(TEXT_FONT), "F1"),
            FontUse(_face(EMOJI_FONT), "F2"),
        ]
        self._glyphs: dict[str, Glyph] = {}
        # Objects 1..3 and the fonts' Type0 objects are written last: their numbers are fixed.
        self._next = self.FIRST_FONT + len(self.fonts)
        self._offsets = array("Q", [0] * self._next)
        self._pages = array("I")
        self._written = 0

    # Characters

    def glyph(self, char: str) -> Glyph:
        """How char is drawn: the text font, else the emoji font, else .notdef of the text font."""
        found = self._glyphs.get(char)
        if found is not None:
            return found
        point = ord(char)
        index = 0
        glyph_name = self.fonts[0].face.cmap.get(point)
        if glyph_name is None:
            emoji = self.fonts[1].face.cmap.get(point)
            if emoji is not None:
                index, glyph_name = 1, emoji
        if glyph_name is None:
            glyph_name = ".notdef"
        cid = self.fonts[index].cid(char, glyph_name)
        if cid is None:  # more distinct characters than two-byte codes: drawn, not extracted
            found = Glyph(0, b"\x00\x00", self.fonts[0].face.advances.get(".notdef", 0))
        else:
            found = Glyph(index, cid.to_bytes(2, "big"), self.fonts[index].widths[cid - 1])
        self._glyphs[char] = found
        return found

    def glyphs(self, text: str) -> list[Glyph]:
        """The glyphs of a text (NFC, so accents typed as two code points are drawn as one)."""
        text = unicodedata.normalize("NFC", text)
        return [self.glyph(c) for c in text if not _invisible(c)]

    @staticmethod
    def width(glyphs: list[Glyph], size: float) -> float:
        """The advance of glyphs at a font size, in points."""
        return sum(g.width for g in glyphs) * size / 1000

    def show(self, glyphs: list[Glyph], size: float) -> bytes:
        """Content-stream operators drawing glyphs from the current point (inside BT…ET)."""
        out: list[bytes] = []
        current = -1
        run = bytearray()
        for g in glyphs:
            if g.font != current:
                if run:
                    out.append(b"<" + run.hex().encode() + b"> Tj ")
                    run = bytearray()
                out.append(b"/%s %.1f Tf " % (self.fonts[g.font].resource.encode(), size))
                current = g.font
            run += g.code
        if run:
            out.append(b"<" + run.hex().encode() + b"> Tj ")
        return b"".join(out)

    # Objects

    def start(self) -> bytes:
        """The header."""
        return self._emit(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")

    def page(self, content: bytes) -> bytes:
        """One page with this content stream (its resources: the fonts and the page total)."""
        stream_id, page_id = self._reserve(), self._reserve()
        self._pages.append(page_id)
        fonts = b" ".join(
            b"/%s %d 0 R" % (f.resource.encode(), self.FIRST_FONT + i)
            for i, f in enumerate(self.fonts)
        )
        page = b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %.2f %.2f] /Contents %d 0 R " % (
            self.PAGES,
            *self.size,
            stream_id,
        ) + b"/Resources << /Font << %s >> /XObject << /Total %d 0 R >> >> >>" % (
            fonts,
            self.TOTAL,
        )
        return self._stream(stream_id, content) + self._object(page_id, page)

    @property
    def page_count(self) -> int:
        """Pages written so far."""
        return len(self._pages)

    def finish(self, total_size: float) -> Iterator[bytes]:
        """Everything after the last page: page total, fonts, page tree, catalog, xref."""
        total = self.glyphs(str(self.page_count))
        yield self._stream(
            self.TOTAL,
            b"BT 0 0 Td " + self.show(total, total_size) + b"ET",
            b"/Type /XObject /Subtype /Form /BBox [0 0 200 50] /Resources << /Font << /F1 %d 0 R >> >> "
            % self.FIRST_FONT,
        )
        for i, use in enumerate(self.fonts):
            yield from self._font(self.FIRST_FONT + i, use)
        kids = b" ".join(b"%d 0 R" % p for p in self._pages)
        yield self._object(
            self.PAGES, b"<< /Type /Pages /Count %d /Kids [%s] >>" % (self.page_count, kids)
        )
        yield self._object(self.CATALOG, b"<< /Type /Catalog /Pages %d 0 R >>" % self.PAGES)
        info = self._reserve()
        now = datetime.now(UTC).strftime("D:%Y%m%d%H%M%SZ").encode()
        yield self._object(
            info,
            b"<< /Title %s /Producer (MiauBloom chat) /CreationDate (%s) >>"
            % (_text_string(self.title), now),
        )
        yield self._xref(info)

    def _font(self, type0_id: int, use: FontUse) -> Iterator[bytes]:
        """A Type0 font (Identity-H) over a CIDFontType2 with the glyphs used, subset."""
        descendant, descriptor, file_, to_unicode, cid_to_gid = (self._reserve() for _ in range(5))
        face = use.face
        font_bytes, gids = _subset(face.path, use.glyphs)
        tag = _subset_tag(use.glyphs)
        base = b"/%s+%s" % (tag, face.name.encode("ascii", "replace"))
        yield self._object(
            type0_id,
            b"<< /Type /Font /Subtype /Type0 /BaseFont %s /Encoding /Identity-H "
            b"/DescendantFonts [%d 0 R] /ToUnicode %d 0 R >>" % (base, descendant, to_unicode),
        )
        widths = b" ".join(b"%d" % w for w in use.widths)
        yield self._object(
            descendant,
            b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont %s "
            b"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
            b"/FontDescriptor %d 0 R /DW %d /W [1 [%s]] /CIDToGIDMap %d 0 R >>"
            % (base, descriptor, face.advances.get(".notdef", 0), widths, cid_to_gid),
        )
        yield self._object(
            descriptor,
            b"<< /Type /FontDescriptor /FontName %s /Flags 4 /FontBBox [%d %d %d %d] "
            b"/ItalicAngle 0 /Ascent %d /Descent %d /CapHeight %d /StemV 80 /FontFile2 %d 0 R >>"
            % (base, *face.bbox, face.ascent, face.descent, face.cap_height, file_),
        )
        yield self._stream(file_, font_bytes, b"/Length1 %d " % len(font_bytes))
        yield self._stream(to_unicode, _to_unicode(use.chars))
        mapping = bytearray(2)  # CID 0 → glyph 0
        for gid in gids:
            mapping += gid.to_bytes(2, "big")
        yield self._stream(cid_to_gid, bytes(mapping))

    def _reserve(self) -> int:
        number = self._next
        self._next += 1
        self._offsets.append(0)
        return number

    def _emit(self, data: bytes) -> bytes:
        self._written += len(data)
        return data

    def _object(self, number: int, body: bytes) -> bytes:
        self._offsets[number] = self._written
        return self._emit(b"%d 0 obj\n%s\nendobj\n" % (number, body))

    def _stream(self, number: int, data: bytes, extra: bytes = b"") -> bytes:
        packed = zlib.compress(data, COMPRESSION)
        head = b"<< %s/Length %d /Filter /FlateDecode >>\nstream\n" % (extra, len(packed))
        return self._object(number, head + packed + b"\nendstream")

    def _xref(self, info: int) -> bytes:
        start = self._written
        rows = [b"xref\n0 %d\n0000000000 65535 f \n" % self._next]
        rows += [b"%010d 00000 n \n" % self._offsets[n] for n in range(1, self._next)]
        rows.append(
            b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (self._next, self.CATALOG, info, start)
        )
        return self._emit(b"".join(rows))


def _invisible(char: str) -> bool:
    """Control characters other than tab are not drawn (a tab or newline is laid out earlier)."""
    return unicodedata.category(char) == "Cc"


def _subset(path: Path, glyphs: list[str]) -> tuple[bytes, list[int]]:
    """The font cut down to these glyphs, and each one's glyph id in it."""
    options = subset.Options()
    options.layout_features = []  # no shaping here: drop GSUB/GPOS
    options.layout_closure = False
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.hinting = False
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "STAT", "fvar", "gvar", "avar", "HVAR"]
    with TTFont(path, lazy=True) as font:
        font["hmtx"], font["glyf"]  # read first: read by the subsetter, they take 3x as long
        subsetter = subset.Subsetter(options)
        subsetter.populate(glyphs=[".notdef", *glyphs])
        subsetter.subset(font)
        order = {name: gid for gid, name in enumerate(font.getGlyphOrder())}
        out = io.BytesIO()
        font.save(out)
    return out.getvalue(), [order.get(g, 0) for g in glyphs]


def _subset_tag(glyphs: list[str]) -> bytes:
    """Six capital letters naming this subset, as PDF wants for subset fonts."""
    value = zlib.crc32("\n".join(glyphs).encode())
    letters = []
    for _ in range(6):
        value, digit = divmod(value, 26)
        letters.append(65 + digit)
    return bytes(letters)


def _to_unicode(chars: list[str]) -> bytes:
    """A ToUnicode CMap: CID n is chars[n - 1]."""
    rows = [
        b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        b"/CMapName /Adobe-Identity-UCS def /CMapType 2 def\n"
        b"1 begincodespacerange <0000> <FFFF> endcodespacerange\n"
    ]
    for start in range(0, len(chars), 100):
        chunk = chars[start : start + 100]
        rows.append(b"%d beginbfchar\n" % len(chunk))
        for offset, char in enumerate(chunk):
            utf16 = char.encode("utf-16-be").hex().upper().encode()
            rows.append(b"<%04X> <%s>\n" % (start + offset + 1, utf16))
        rows.append(b"endbfchar\n")
    rows.append(b"endcmap CMapName currentdict /CMap defineresource pop end end\n")
    return b"".join(rows)


def _text_string(value: str) -> bytes:
    """A PDF text string (UTF-16BE with a byte order mark), as hex."""
    return b"<FEFF" + value.encode("utf-16-be").hex().upper().encode() + b">"
