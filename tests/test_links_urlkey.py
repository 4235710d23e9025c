"""The URL key: what counts as the same link."""

import pytest

from recap.errors import InvalidInput
from recap.links.urlkey import loose_key, url_key


@pytest.mark.parametrize(
    "raw, key",
    [
        ("HTTP://Example.COM/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("https://example.com/a/./b/../c", "https://example.com/a/c"),
        ("https://example.com/a#section-2", "https://example.com/a"),
        (
            "https://example.com/a?utm_source=x&utm_medium=y&fbclid=1&gclid=2&id=7",
            "https://example.com/a?id=7",
        ),
        ("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
        ("https://example.com/a/", "https://example.com/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/%7Euser", "https://example.com/~user"),
        ("https://bücher.example/", "https://xn--bcher-kva.example/"),
    ],
)
def test_key_folds_equivalent_spellings(raw, key):
    assert url_key(raw) == key


def test_key_keeps_what_differs():
    assert url_key("http://example.com/a") != url_key("https://example.com/a")
    assert url_key("https://www.example.com/a") != url_key("https://example.com/a")
    assert url_key("https://example.com/A") != url_key("https://example.com/a")
    assert url_key("https://example.com/a?id=1") != url_key("https://example.com/a?id=2")


@pytest.mark.parametrize(
    "bad, why",
    [
        ("javascript:alert(1)", "javascript"),
        ("place:sort=8", "place"),
        ("data:text/html,hi", "data"),
        ("", "empty"),
        ("   ", "empty"),
        ("example.com", "scheme"),
        ("https://", "host"),
        ("http://example.com:99999/", "port"),
    ],
)
def test_non_web_urls_are_refused_with_a_reason(bad, why):
    with pytest.raises(InvalidInput, match=why):
        url_key(bad)


def test_loose_key_matches_near_duplicates():
    assert loose_key(url_key("http://www.example.com/a/index.html")) == loose_key(
        url_key("https://example.com/a/")
    )
