"""Prefect flows of pdfco-tasks: composition of the tasks in `pdfco_tasks.tasks`.

The flow modules do not use `from __future__ import annotations`. Prefect builds
each flow's parameter model from its annotations, and in a worker process of a
Dask cluster a string annotation such as "PdfcoCredentials" cannot be resolved.
"""
