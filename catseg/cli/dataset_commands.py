"""`python -m catseg import`, `export` and `stats`: the dataset in batch."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from catseg.cli.terminal import EXIT_FAILURE, Progress

# Past this many, duplicates are counted rather than listed (a re-import lists every photo).
LISTED_DUPLICATES = 20


def command_import(arguments: argparse.Namespace) -> int:
    from catseg.data.importing import import_path
    from catseg.data.team import command_line_user

    report = import_path(Path(arguments.path), arguments.format, Progress("Importing"),
                         created_by=command_line_user())
    status = EXIT_FAILURE if report.stopped else 0
    if arguments.json:
        print(json.dumps(report.to_dict()))
        return status
    annotations = f" (annotations: {', '.join(report.annotation_files)})" if report.annotation_files else ""
    print(
        f"{report.detected_format} layout{annotations}: {report.files_seen} files: "
        f"added {report.added} photos ({report.added_labelled} with masks), {len(report.duplicates)} duplicates, "
        f"{len(report.rejected)} rejected, {len(report.skipped)} skipped."
    )
    # Plain additions are in the count; every other file gets its own line.
    for name, note in report.added_files:
        if note:
            print(f"  added: {name} ({note})")
    for name in report.duplicates[:LISTED_DUPLICATES]:
        print(f"  duplicate: {name}")
    if len(report.duplicates) > LISTED_DUPLICATES:
        print(f"  ... and {len(report.duplicates) - LISTED_DUPLICATES} more duplicates (--json lists them all).")
    for _, reason in report.rejected:
        print(f"  rejected: {reason}")
    for name, why in report.skipped:
        print(f"  skipped: {name} ({why})")
    if report.stopped:
        print(f"error: the import stopped at {report.stopped} The {report.added} photos added before it are kept; "
              "run the same import again to add the rest.", file=sys.stderr)
    return status


def command_export(arguments: argparse.Namespace) -> int:
    from catseg.data.exporting import export_dataset

    result = export_dataset(Path(arguments.directory), arguments.format, Progress("Exporting"))
    if arguments.json:
        print(json.dumps(result))
    else:
        print(
            f"Exported {result['exported']} labelled photos to {result['directory']} ({result['format']} layout); "
            f"{result['skipped_unlabelled']} unlabelled photos left out."
        )
    return 0


def command_stats(arguments: argparse.Namespace) -> int:
    import storage
    from storage.dataset import counts

    with storage.begin() as session:
        numbers = counts(session)
    result = {"images": numbers.images, "labelled": numbers.labelled, "unlabelled": numbers.unlabelled,
              "data_home": str(storage.data_home())}
    if arguments.json:
        print(json.dumps(result))
    else:
        print(f"{numbers.images} photos, {numbers.labelled} labelled, {numbers.unlabelled} unlabelled "
              f"(data in {result['data_home']})")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add `import`, `export` and `stats` to the CLI's sub-commands."""
    from catseg.data.exporting import EXPORT_FORMATS
    from catseg.data.importing import FORMATS

    importing = commands.add_parser("import", help="add photos (and masks) from a folder or a .zip")
    importing.add_argument("path", help="a folder or .zip: tutorial layout, YOLOv8-seg, COCO JSON, or plain photos")
    importing.add_argument("--format", choices=FORMATS, default="auto")
    importing.add_argument("--json", action="store_true", help="print the report as JSON")
    importing.set_defaults(handler=command_import)

    exporting = commands.add_parser("export", help="write labelled photos and masks to a folder")
    exporting.add_argument("directory", help="a new or empty folder")
    exporting.add_argument(
        "--format", choices=EXPORT_FORMATS, default="tutorial",
        help="tutorial: input/ + mask/; yolo: images/ + labels/; coco: images/ + annotations.json",
    )
    exporting.add_argument("--json", action="store_true")
    exporting.set_defaults(handler=command_export)

    stats = commands.add_parser("stats", help="count photos and masks")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(handler=command_stats)
