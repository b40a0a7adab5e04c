"""The `merge_folder` flow: every matching document of a folder into one dated PDF."""

from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.logging import get_run_logger
from prefect.runtime import flow_run

from flows.merge_documents import merge_documents
from pdfco_tasks.credentials import PdfcoCredentials
from pdfco_tasks.exceptions import PreflightError
from pdfco_tasks.folders import (
    FolderState,
    InputFile,
    SortOrder,
    find_documents,
    fingerprint,
    read_state,
    render_output_name,
    resolve_timezone,
    state_path,
    write_state,
)
from pdfco_tasks.observability import artifact_key, publish_markdown

__all__ = ["merge_folder"]


def _flow_run_name() -> str:
    folder = Path(str(flow_run.parameters.get("input_dir", "folder"))).name
    return f"merge-folder-{folder or 'root'}"


def _run_moment(zone_name: str) -> datetime:
    """Return the run's scheduled start in `zone_name`, or now for ad hoc runs.

    A nightly run scheduled for 23:59 that starts a little late still names
    its output after the scheduled day.
    """
    zone = resolve_timezone(zone_name)
    scheduled = flow_run.scheduled_start_time
    if not isinstance(scheduled, datetime):
        scheduled = datetime.now(dt_timezone.utc)
    return scheduled.astimezone(zone)


def _check_folders(input_dir: Path, output_dir: Path) -> None:
    if input_dir.expanduser().resolve() == output_dir.expanduser().resolve():
        raise PreflightError(
            f"output_dir {output_dir} is the input folder, so merged files would "
            "become inputs of the next run. Choose another output_dir.",
            problems=[(str(output_dir), "same as input_dir")],
        )


@flow(name="merge-folder", flow_run_name=_flow_run_name, log_prints=False)
def merge_folder(
    input_dir: str,
    output_dir: str,
    pattern: str = "*.pdf",
    order: SortOrder = "name",
    output_name_template: str = "merged-{date}.pdf",
    credentials: PdfcoCredentials | str | None = None,
    skip_unchanged: bool = True,
    timezone: str = "UTC",
    overwrite: bool = False,
    bookmarks: bool = True,
    create_artifacts: bool = True,
) -> dict[str, Any]:
    """Merge every document of a folder that matches a pattern into one dated PDF.

    The documents are merged in a stated order by the `merge_documents`
    subflow. A fingerprint of the inputs (relative names, order, sizes and
    SHA-256 of the contents) is stored in a hidden state file in `output_dir`
    after each successful merge. The next run skips the merge when the
    fingerprint is unchanged and the last output still exists. A folder with
    no matching document is skipped too, and neither skip fails the run.

    Args:
        input_dir: The folder that contains the documents.
        output_dir: Where the merged PDF and the state file go; created when
            missing, and never the input folder itself.
        pattern: A glob relative to `input_dir`. `**/*.pdf` searches
            subfolders. Hidden files and files inside `output_dir` are ignored.
        order: `name` sorts by relative path in natural order, so `2.pdf`
            comes before `10.pdf`; `mtime` sorts oldest first.
        output_name_template: Output file name with `{date}`, `{time}`,
            `{datetime}`, `{count}` or `{folder}`; times are the run's scheduled
            start in `timezone`.
        credentials: A `PdfcoCredentials` block, the name of a saved one, or
            None to read PDFCO_API_KEY and PDFCO_BASE_URL.
        skip_unchanged: Skip the merge when the inputs did not change since the
            last successful run.
        timezone: IANA time zone of the dates in the output name.
        overwrite: Replace an output of the same name, such as one written
            earlier the same day from inputs that have changed since.
        bookmarks: Add one bookmark per input to the result.
        create_artifacts: Publish merge and folder summaries to the UI.

    Returns:
        `status` (`merged` or `skipped`), `reason` for a skip (`no-inputs` or
        `unchanged`), `inputs` (relative names in merge order), `fingerprint`
        and `output`. A merge adds the fields of `merge_documents`: page
        count, page spans, job id, credits and durations.

    Raises:
        PreflightError: A missing input folder, an invalid pattern, template or
            time zone, or an existing output without `overwrite`.

    Example:
        ```python
        from flows.merge_folder import merge_folder

        result = merge_folder(
            "inbox/invoices",
            "out/invoices",
            output_name_template="invoices-{date}.pdf",
            credentials="BLOCK_NAME",
            timezone="Europe/Berlin",
        )
        print(result["status"], result["output"])
        ```
    """
    logger = get_run_logger()
    source = Path(input_dir).expanduser().resolve()
    target_dir = Path(output_dir).expanduser().resolve()
    _check_folders(source, target_dir)
    moment = _run_moment(timezone)

    files = find_documents(source, pattern, order, exclude_dir=target_dir)
    names = [f.name for f in files]
    if not files:
        logger.warning(
            "No file in %s matches %r, so nothing is merged", source, pattern
        )
        return _skipped(source, "no-inputs", names, "", None, create_artifacts)

    output_name = render_output_name(
        output_name_template, moment, len(files), source.name
    )
    digest = fingerprint(files, {"order": order, "bookmarks": bookmarks})
    state_file = state_path(target_dir, source, pattern)
    previous = read_state(state_file)
    if skip_unchanged and _unchanged(previous, digest):
        assert previous is not None
        logger.info(
            "The %d inputs in %s are unchanged since %s, so %s is up to date",
            len(files),
            source,
            previous.merged_at,
            previous.output,
        )
        return _skipped(source, "unchanged", names, digest, previous, create_artifacts)

    logger.info("Merging %d inputs from %s into %s", len(files), source, output_name)
    result = merge_documents(
        [f.path for f in files],
        str(target_dir / output_name),
        credentials=credentials,
        overwrite=overwrite,
        bookmarks=bookmarks,
        create_artifacts=create_artifacts,
    )
    write_state(state_file, _state_after(result, digest, moment))
    outcome = {"status": "merged", "reason": None, "inputs": names, **result}
    outcome["fingerprint"] = digest
    if create_artifacts:
        _publish_folder_summary(source, outcome, files)
    return outcome


def _unchanged(previous: FolderState | None, digest: str) -> bool:
    if previous is None or previous.fingerprint != digest:
        return False
    return Path(previous.output).is_file()


def _state_after(result: dict[str, Any], digest: str, moment: datetime) -> FolderState:
    return FolderState(
        fingerprint=digest,
        output=str(result["output"]),
        job_id=str(result["job_id"]),
        page_count=int(result["page_count"]),
        merged_at=datetime.now(moment.tzinfo).isoformat(timespec="seconds"),
    )


def _skipped(
    source: Path,
    reason: str,
    names: list[str],
    digest: str,
    previous: FolderState | None,
    create_artifacts: bool,
) -> dict[str, Any]:
    outcome: dict[str, Any] = {
        "status": "skipped",
        "reason": reason,
        "inputs": names,
        "fingerprint": digest,
        "output": previous.output if previous else None,
        "page_count": previous.page_count if previous else None,
        "job_id": previous.job_id if previous else None,
    }
    if create_artifacts:
        _publish_folder_summary(source, outcome, [])
    return outcome


def _publish_folder_summary(
    source: Path, outcome: dict[str, Any], files: list[InputFile]
) -> None:
    lines = [f"# Folder `{source.name}`: {outcome['status']}", ""]
    if outcome["status"] == "skipped":
        reasons = {
            "no-inputs": "no file matched the pattern",
            "unchanged": "the inputs did not change since the last merge",
        }
        lines.append(f"- **Skipped:** {reasons[outcome['reason']]}")
    lines.append(f"- **Folder:** `{source}`")
    lines.append(f"- **Output:** `{outcome.get('output') or 'none'}`")
    if outcome.get("job_id"):
        lines.append(f"- **Job id:** `{outcome['job_id']}`")
    if outcome.get("page_count") is not None:
        lines.append(f"- **Pages:** {outcome['page_count']}")
    if files:
        lines += ["", "| # | Input | Bytes |", "|---|---|---|"]
        lines += [f"| {i} | {f.name} | {f.size} |" for i, f in enumerate(files, 1)]

    publish_markdown(
        "\n".join(lines),
        key=artifact_key(source.name or "root", "folder"),
        description=f"Latest merge_folder run over {source}",
    )


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(merge_folder(sys.argv[1], sys.argv[2]), indent=2))
