"""A local stand-in for the PDF.co Web API."""
