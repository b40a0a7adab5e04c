"""Pytest fixtures that run the PDF.co sandbox in-process."""
