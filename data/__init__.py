"""The book's data files, installed with xentlib as ``xentlib.data``; see README.md here."""
