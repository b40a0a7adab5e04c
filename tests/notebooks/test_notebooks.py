"""Execute every notebook in notebooks/ on a real Jupyter kernel.

The kernel runs this interpreter through a kernel spec written to a temporary
JUPYTER_PATH, so nothing is installed into the user's Jupyter directories. It
gets its own PREFECT_HOME (and so its own temporary Prefect server) and
`PDFCO_NOTEBOOK_SANDBOX=1`, which makes every notebook merge against a local
sandbox instead of the internet.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

pytestmark = [pytest.mark.notebook, pytest.mark.soffice, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
KERNEL_NAME = "pdfco-tasks-test"
CELL_TIMEOUT_SECONDS = 300
SAMPLE_SPANS = ("1&ndash;3", "4&ndash;4", "5&ndash;5", "6&ndash;6")
SAMPLE_NAMES = ("01-report.pdf", "02-letter.docx", "03-figures.xlsx", "04-chart.png")
SAMPLE_PAGES = 6


class ExecutedNotebook:
    """A notebook after execution, with the directory its merges wrote to."""

    def __init__(self, notebook: Any, output_dir: Path) -> None:
        self.notebook = notebook
        self.output_dir = output_dir

    def outputs(self) -> Iterator[dict[str, Any]]:
        for cell in self.notebook.cells:
            if cell.cell_type == "code":
                yield from cell.outputs

    def errors(self) -> list[str]:
        return [
            f"{output['ename']}: {output['evalue']}"
            for output in self.outputs()
            if output["output_type"] == "error"
        ]

    def html(self, output_type: str) -> list[str]:
        return [
            output["data"]["text/html"]
            for output in self.outputs()
            if output["output_type"] == output_type
            and "text/html" in output.get("data", {})
        ]

    def results_html(self) -> list[str]:
        """HTML of every displayed merge result."""
        return [
            page for page in self.html("execute_result") if "pdfco-merge-result" in page
        ]

    def stdout(self) -> str:
        return "".join(
            output["text"]
            for output in self.outputs()
            if output["output_type"] == "stream" and output["name"] == "stdout"
        )


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Return the kernel's environment, with a kernel spec for this interpreter."""
    base = tmp_path_factory.mktemp("jupyter")
    spec_dir = base / "data" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "pdfco-tasks tests",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))

    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PREFECT_", "PDFCO_", "JUPYTER_", "IPYTHON"))
    }
    env.update(
        JUPYTER_PATH=str(base / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        IPYTHONDIR=str(base / "ipython"),
        PREFECT_HOME=str(base / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_COLORS="false",
        PDFCO_TASKS_HOME=str(base / "pdfco-state"),
        PDFCO_NOTEBOOK_SANDBOX="1",
    )
    return env


@pytest.fixture
def run_notebook(
    kernel_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], ExecutedNotebook]:
    """Return a function that executes one notebook from notebooks/."""
    # The kernel spec manager of nbclient reads JUPYTER_PATH from this process.
    monkeypatch.setenv("JUPYTER_PATH", kernel_env["JUPYTER_PATH"])

    def run(name: str) -> ExecutedNotebook:
        output_dir = tmp_path / "output"
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        client = nbclient.NotebookClient(
            notebook,
            kernel_name=KERNEL_NAME,
            timeout=CELL_TIMEOUT_SECONDS,
            allow_errors=True,
            resources={"metadata": {"path": str(NOTEBOOKS)}},
        )
        env = {**kernel_env, "PDFCO_NOTEBOOK_OUTPUT_DIR": str(output_dir)}
        client.execute(env=env)
        return ExecutedNotebook(notebook, output_dir)

    return run


def page_count(path: Path) -> int:
    return len(PdfReader(path).pages)


def assert_sample_spans(page: str) -> None:
    for name in SAMPLE_NAMES:
        assert name in page
    for span in SAMPLE_SPANS:
        assert span in page
    assert f"Validated: {SAMPLE_PAGES} pages = sum of inputs (3 + 1 + 1 + 1)." in page


def test_notebooks_are_stored_without_outputs() -> None:
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        assert notebook.metadata["kernelspec"]["name"] == "python3", path.name
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [], path.name
                assert cell.execution_count is None, path.name


def test_quickstart_merges_samples(run_notebook: Callable[[str], Any]) -> None:
    executed = run_notebook("01-quickstart.ipynb")

    assert executed.errors() == []
    assert page_count(executed.output_dir / "quickstart.pdf") == SAMPLE_PAGES
    assert not (executed.output_dir / "never-written.pdf").exists()

    results = executed.results_html()
    assert len(results) == 2
    assert_sample_spans(results[0])
    assert "Merge failed: PreflightError" in results[1]
    assert "missing.pdf: file not found" in results[1]

    progress = "".join(executed.html("display_data"))
    assert "Upload 01-report.pdf" in progress
    assert "Validate" in progress
    assert f"Pages in the file: {SAMPLE_PAGES}" in executed.stdout()


def test_folder_and_batch_notebook_merges_all(
    run_notebook: Callable[[str], Any],
) -> None:
    executed = run_notebook("02-folder-and-batch.ipynb")

    assert executed.errors() == []
    folder_outputs = list((executed.output_dir / "folder").glob("samples-*.pdf"))
    assert len(folder_outputs) == 1
    assert page_count(folder_outputs[0]) == SAMPLE_PAGES
    assert page_count(executed.output_dir / "batch-report-and-letter.pdf") == 4
    assert page_count(executed.output_dir / "batch-figures-and-chart.pdf") == 2
    assert page_count(executed.output_dir / "batch-chart-first.pdf") == 4

    results = executed.results_html()
    assert len(results) == 1
    assert_sample_spans(results[0])

    stdout = executed.stdout()
    assert "skipped unchanged" in stdout
    assert "3 merged, 0 failed, 10 pages" in stdout
    assert "Merge on PDF.co" in "".join(executed.html("display_data"))


def test_real_pdfco_notebook_runs_on_sandbox(
    run_notebook: Callable[[str], Any],
) -> None:
    executed = run_notebook("03-real-pdfco.ipynb")

    assert executed.errors() == []
    assert page_count(executed.output_dir / "real-pdfco.pdf") == SAMPLE_PAGES

    results = executed.results_html()
    assert len(results) == 1
    assert_sample_spans(results[0])

    stdout = executed.stdout()
    assert "PDFCO_NOTEBOOK_SANDBOX=1: using the local sandbox" in stdout
    assert "Saved block 'pdfco-notebook-sandbox'" in stdout
    assert "coroutine" in stdout
    assert "SecretStr('**********')" in stdout
    assert "notebook-sandbox-key" not in stdout
