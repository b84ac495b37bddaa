"""The book's data files are found wherever xentlib is installed."""

import pytest

import xentlib


def test_data_files_are_found_through_the_package():
    path = xentlib.data_path("README.md")
    assert path.is_file() and "data card" in path.read_text()


def test_a_missing_data_file_is_a_clear_error_listing_what_ships():
    with pytest.raises(
        FileNotFoundError,
        match=(
            r"no data file 'absent.csv' ships with the book; available:"
            r" \[.*'README.md'"
        ),
    ):
        xentlib.data_path("absent.csv")
