"""Merge documents into one PDF through PDF.co, from Prefect, notebooks and the shell."""

__version__ = "0.1.0"
