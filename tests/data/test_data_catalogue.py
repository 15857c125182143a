import pytest

from coverforge.data.catalogue import parse_columns, parse_isbn, parse_pages, read_catalogue
from coverforge.errors import CoverforgeError
from data_builders import GOODREADS_HEADER, goodreads_row, write_csv


def test_goodreads_schema_with_messy_rows(tmp_path):
    rows = [
        goodreads_row("The Hobbit", "J.R.R. Tolkien|Christopher Tolkien", "Fantasy|Classics|Fantasy"),
        goodreads_row('He said "hi", then left', desc="line one\nline two, with comma\r\nline three"),
        goodreads_row("", desc="no title"),
        goodreads_row("Café Society", isbn="", pages=""),
    ]
    path = write_csv(tmp_path / "book_data.csv", GOODREADS_HEADER, rows)
    # a Windows-1252 byte in an otherwise UTF-8 file, and a blank line
    path.write_bytes(path.read_bytes() + b"\r\n" + b'A. N.,Caf\xc3\xa9 Cr\xe8me desc,,,,12 pages,,,,Cr\xe8me Br\xfbl\xe9e,Food,\r\n')
    books, skips = read_catalogue(path)
    titles = [b.title for b in books]
    assert titles == ["The Hobbit", 'He said "hi", then left', "Café Society", "Crème Brûlée"]
    assert [s.source_row for s in skips] == [2] and skips[0].reason == "empty title"
    hobbit = books[0]
    assert hobbit.authors == ["J.R.R. Tolkien", "Christopher Tolkien"]
    assert hobbit.genres == ["Fantasy", "Classics", "Fantasy"]  # dedup happens in the prompt
    assert hobbit.isbn == "9780439023480" and hobbit.pages == 374 and hobbit.source_row == 0
    assert "line two, with comma" in books[1].description
    assert books[2].isbn == "" and books[2].pages is None
    assert books[3].source_row == 4 and books[3].pages == 12
    assert books[3].description == "Café Crème desc"  # UTF-8 and a stray Windows-1252 byte in one line


def test_column_mapping_for_other_csvs(tmp_path):
    path = write_csv(tmp_path / "c.csv", ["Name", "Writer", "House", "Tags", "Blurb", "Cover"],
                     [["Emma", "Jane Austen", "Murray", "Romance; Classic", "", "emma.jpg"]])
    books, skips = read_catalogue(path, parse_columns("title=Name,authors=Writer,publisher=House,genres=Tags,description=Blurb,image=Cover"))
    assert not skips
    (b,) = books
    assert (b.title, b.authors, b.publisher, b.genres, b.image) == ("Emma", ["Jane Austen"], "Murray", ["Romance", "Classic"], "emma.jpg")


def test_missing_title_column_is_a_clear_error(tmp_path):
    path = write_csv(tmp_path / "c.csv", ["Name"], [["x"]])
    with pytest.raises(CoverforgeError, match="--columns title="):
        read_catalogue(path)
    with pytest.raises(CoverforgeError, match="'Nope'"):
        read_catalogue(path, {"title": "Nope"})
    with pytest.raises(CoverforgeError, match="unknown field"):
        parse_columns("colour=Name")


def test_isbn_and_pages_parsing():
    assert parse_isbn("9.78043902348e+12") == "9780439023480"
    assert parse_isbn("0439023483") == "0439023483"
    assert parse_isbn("043902348X") == "043902348X"
    assert parse_isbn("nan") == ""
    assert parse_pages("1,024 pages") == 1024 and parse_pages("") is None
