"""The book's data files, installed with xentlib as ``xentlib.data``.

README.md in this folder describes each file and how it was made.
"""
