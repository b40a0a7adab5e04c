"""The credentials block against Prefect's block standards and registration."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest
from PIL import Image
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.settings import get_current_settings
from prefect.testing.standard_test_suites.blocks import BlockStandardTestSuite
from pydantic import SecretStr

from pdfco_tasks import PdfcoCredentials

BLOCK_TYPE_SLUG = "pdfco-credentials"


def bundled_logo() -> Path:
    return Path(str(files("pdfco_tasks") / "assets" / "logo.png"))


class TestPdfcoCredentialsStandards(BlockStandardTestSuite):
    @pytest.fixture
    def block(self) -> type[Block]:
        return PdfcoCredentials

    def test_has_a_valid_image(self, block: type[Block]) -> None:
        # Prefect's version downloads `_logo_url` from the internet, which test
        # machines cannot reach. The logo ships inside the package instead, and
        # is held to the same rules: square, more than 45 and less than 1000
        # pixels wide.
        logo = bundled_logo()

        with Image.open(logo) as image:
            width, height = image.size
            image_format = image.format

        assert image_format == "PNG"
        assert width == height, f"logo is {width}x{height}, not square"
        assert 1000 > width > 45, f"logo is {width}px wide"


def test_block_slug_is_dashed() -> None:
    assert PdfcoCredentials.get_block_type_slug() == BLOCK_TYPE_SLUG


def test_block_api_key_masked() -> None:
    block = PdfcoCredentials(api_key=SecretStr("plain-secret-value"))

    assert "plain-secret-value" not in repr(block)
    assert "plain-secret-value" not in str(block.model_dump())


def test_block_rate_reaches_settings() -> None:
    block = PdfcoCredentials(
        api_key=SecretStr("key"),
        base_url="http://127.0.0.1:9/v1",
        requests_per_second=5.0,
    )

    assert block.get_settings().requests_per_second == 5.0


def test_block_rejects_zero_rate() -> None:
    with pytest.raises(ValueError, match="requests_per_second"):
        PdfcoCredentials(api_key=SecretStr("key"), requests_per_second=0)


def test_package_import_skips_prefect() -> None:
    code = (
        "import sys, pdfco_tasks, pdfco_tasks.sandbox\n"
        "print('prefect' in sys.modules)\n"
    )

    completed = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert completed.stdout.strip() == "False"


def test_package_exports_have_docstrings() -> None:
    import pdfco_tasks

    missing = [
        name
        for name in pdfco_tasks.__all__
        if name != "__version__" and not getattr(pdfco_tasks, name).__doc__
    ]

    assert missing == []


@pytest.mark.usefixtures("prefect_harness")
class TestRegistration:
    def test_server_registers_installed_block(self) -> None:
        # The test server imports installed collections at startup, this
        # package included, and registers their blocks.
        with get_client(sync_client=True) as client:
            block_type = client.read_block_type_by_slug(BLOCK_TYPE_SLUG)

        assert block_type.name == "PDF.co Credentials"

    def test_cli_register_creates_block_type(self) -> None:
        with get_client(sync_client=True) as client:
            existing = client.read_block_type_by_slug(BLOCK_TYPE_SLUG)
            client.delete_block_type(existing.id)
            with pytest.raises(ObjectNotFound):
                client.read_block_type_by_slug(BLOCK_TYPE_SLUG)

        completed = run_prefect("block", "register", "-m", "pdfco_tasks")

        assert completed.returncode == 0, completed.stdout + completed.stderr
        assert "PDF.co Credentials" in completed.stdout
        with get_client(sync_client=True) as client:
            block_type = client.read_block_type_by_slug(BLOCK_TYPE_SLUG)
            schema = client.get_most_recent_block_schema_for_block_type(block_type.id)
        assert schema is not None
        assert schema.fields["secret_fields"] == ["api_key"]
        assert "requests_per_second" in schema.fields["properties"]

    def test_saved_block_loads_by_name(self) -> None:
        PdfcoCredentials(
            api_key=SecretStr("saved-key"), base_url="http://127.0.0.1:9/v1"
        ).save("registration-test", overwrite=True)

        loaded = PdfcoCredentials.load("registration-test")

        assert isinstance(loaded, PdfcoCredentials)
        assert loaded.get_settings().api_key == "saved-key"


def run_prefect(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the Prefect CLI of this interpreter against the test server."""
    env = dict(os.environ)
    env["PREFECT_API_URL"] = str(get_current_settings().api.url)
    prefect = Path(sys.executable).with_name("prefect")
    return subprocess.run(
        [str(prefect), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
