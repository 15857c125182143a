import pytest

from coverforge.data.prompts import DEFAULT_TEMPLATE, build_prompt, clean_text, unique_genres
from coverforge.errors import CoverforgeError

HOBBIT = {
    "title": "The Hobbit",
    "authors": ["J.R.R. Tolkien"],
    "publisher": "Allen &amp; Unwin",
    "genres": ["Fantasy", "Classics", "fantasy", "Adventure"],
    "description": "In a hole in the ground <br/>there lived a   hobbit.\nBilbo's home.",
}


def test_default_prompt_orders_short_fields_first_and_cleans_text():
    p = build_prompt(HOBBIT)
    assert p.startswith('Book cover. Title: "The Hobbit". Author: J.R.R. Tolkien. Publisher: Allen & Unwin. Genres: Fantasy, Classics, Adventure.')
    assert p.endswith("In a hole in the ground there lived a hobbit. Bilbo's home.")
    assert "<br" not in p and "  " not in p and "\n" not in p


def test_empty_fields_are_omitted_cleanly():
    p = build_prompt({"title": "Dune", "authors": [], "publisher": "", "genres": [], "description": ""})
    assert p == 'Book cover. Title: "Dune".'
    p = build_prompt({"title": "", "authors": ["A. B."], "publisher": "", "genres": ["Poetry"], "description": "Verses."})
    assert "Title" not in p and "Publisher" not in p and p == "Book cover. Author: A. B. Genres: Poetry. Verses."


def test_description_text_is_never_rewritten_by_the_cleanup():
    p = build_prompt({"title": "X", "description": "Publisher: . stays as written"})
    assert p.endswith("Publisher: . stays as written")


def test_unicode_is_nfc_and_entities_decoded():
    decomposed = "Cafe\u0301 &eacute;t&#233; &amp;amp; co"
    assert clean_text(decomposed) == "Caf\u00e9 \u00e9t\u00e9 & co"


def test_genres_deduplicated_case_insensitively_and_capped():
    genres = ["Fantasy", "FANTASY", " fantasy ", "Horror", "Romance", "Horror"]
    assert unique_genres(genres) == ["Fantasy", "Horror", "Romance"]
    p = build_prompt({"title": "T", "genres": [f"G{i}" for i in range(20)]}, max_genres=3)
    assert "Genres: G0, G1, G2." in p and "G3" not in p


def test_custom_template_and_unknown_field():
    p = build_prompt({"title": "Emma", "authors": ["Jane Austen", "Someone Else"]}, template="{title} by {author} ({authors})")
    assert p == "Emma by Jane Austen (Jane Austen, Someone Else)"
    with pytest.raises(CoverforgeError, match="unknown field"):
        build_prompt({"title": "x"}, template="{title} {isbn}")
    assert "{title}" in DEFAULT_TEMPLATE


def test_prompt_is_deterministic():
    assert build_prompt(HOBBIT) == build_prompt(dict(HOBBIT))
