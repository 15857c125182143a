"""`coverforge cover`: typeset title and author on art at ebook or print size, or a full print wrap."""

from __future__ import annotations

import argparse
from pathlib import Path

MAX_PAGES = 2000
"""Page counts above this are not a printable book (KDP prints paperbacks up to 828 pages); a
wrap for 100,000 pages would be a canvas of gigabytes."""
OUT_SUFFIXES = (".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("art", type=Path, help="cover art image (PNG, JPEG, ...)")
    parser.add_argument("--title", required=True, help="book title")
    parser.add_argument("--subtitle", default="", help="subtitle (optional)")
    parser.add_argument("--author", required=True, help="author name(s)")
    parser.add_argument("--out", required=True, type=Path, help="output file: .pdf writes PDF, .png/.jpg an image")
    parser.add_argument("--layout", default=None, help="classic, band, centred or bottom (default: from --genre, else classic)")
    parser.add_argument("--font", default=None, help="set title and author in this bundled font instead of the layout's: "
                        "source-serif, source-serif-bold, source-sans or source-sans-bold")
    parser.add_argument("--genre", default=None, help="genre used to pick a layout, e.g. thriller, romance, fantasy")
    parser.add_argument("--size", default="ebook", help="ebook (1600x2560 px), WxHin (print front with bleed, 300 dpi) or WxHpx; with --pages, the trim (default 6x9in)")
    parser.add_argument("--pages", type=int, default=None, help="page count: writes the full print wrap (back, spine, front) as PDF")
    parser.add_argument("--paper", default="white", choices=["white", "cream"], help="paper for the spine width (default white)")
    parser.add_argument("--back-text", type=Path, default=None, help="text file for the back cover (paragraphs split by blank lines)")
    parser.add_argument("--proof", type=Path, default=None, help="also write a proof PNG with trim, bleed, safe-area and crop guides")
    parser.add_argument("--accept-illegible", action="store_true", help="write the cover even when OCR cannot read every word of the title back at full size")


def run(args: argparse.Namespace) -> int:
    from coverforge.cli import checks
    from coverforge.covers.compose import make_cover
    from coverforge.covers.fonts import get_font
    from coverforge.covers.legibility import readable_cover
    from coverforge.covers.print_wrap import make_print_wrap
    from coverforge.data.images import ImageRejected, open_image
    from coverforge.data.text_files import read_text
    from coverforge.errors import CoverforgeError

    checks.in_range("--pages", args.pages, 1, MAX_PAGES)
    if args.font is not None:
        try:
            args.font = get_font(args.font).name
        except CoverforgeError as e:
            raise CoverforgeError(f"--font: {e}") from None
    checks.output_file(args.out, "--out", OUT_SUFFIXES)
    if args.proof is not None:
        checks.output_file(args.proof, "--proof", OUT_SUFFIXES[1:])
    if not args.art.is_file():
        raise CoverforgeError(f"art {args.art} does not exist" + (" (it is a folder)" if args.art.is_dir() else ""))
    try:
        art = open_image(args.art)  # the decompression-bomb guard of `prepare`
    except ImageRejected as e:
        raise CoverforgeError(f"art {args.art}: {e}") from None

    if args.pages is not None:
        if args.out.suffix.lower() != ".pdf":
            raise CoverforgeError(f"--out {args.out}: a print wrap (--pages) is written as PDF; name a .pdf file")
        back_text = read_text(args.back_text, "--back-text") if args.back_text is not None else ""
        trim = "6x9in" if args.size == "ebook" else args.size
        result, legibility = readable_cover(lambda floor: make_print_wrap(
            art, args.title, args.author, args.subtitle, trim, pages=args.pages, paper=args.paper, back_text=back_text,
            layout=args.layout, genre=args.genre, scrim_floor=floor, font=args.font))
        _refuse_unread(legibility, args)
        result.save_pdf(args.out)
        summary = f"{result.width_in:.3f} x {result.height_in:.3f} in, spine {result.spine_width_in:.4f} in" + (f", font {result.font}" if result.font else "")
    else:
        if args.back_text is not None:
            raise CoverforgeError("--back-text needs --pages: a back cover is only part of a print wrap")
        result, legibility = readable_cover(lambda floor: make_cover(
            art, args.title, args.author, args.subtitle, args.size, args.layout, args.genre, scrim_floor=floor, font=args.font))
        _refuse_unread(legibility, args)
        result.save(args.out)
        summary = f"{result.size.width_px} x {result.size.height_px} px, layout {result.layout}" + (f", font {result.font}" if result.font else "")
    if args.proof is not None:
        args.proof.parent.mkdir(parents=True, exist_ok=True)
        result.proof().save(args.proof)
    print(f"wrote {args.out} ({summary}; lowest text contrast {result.contrast:.1f}:1)")
    for line in legibility.summary():
        print(f"  {line}")
    if legibility.scrim_floor > 0:
        print(f"  scrim behind the text raised to at least {legibility.scrim_floor:.0%} after OCR read-back")
    if not legibility.title_reads:
        print("  warning: the title does not read back at full size; written anyway (--accept-illegible)")
    return 0


def _refuse_unread(legibility, args: argparse.Namespace) -> None:
    """One line and exit 2 (nothing written) when the title does not read back, unless accepted."""
    from coverforge.errors import CoverforgeError

    title = legibility.full["title"]
    if not title.reads and not args.accept_illegible:
        raise CoverforgeError(f"the title does not read back at full size (OCR read {title.read!r} for {title.expected!r}, "
                              f"word accuracy {title.word_accuracy:.0%}); "
                              f"{args.out} not written: try another --layout or art, or pass --accept-illegible")
