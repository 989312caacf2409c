"""`catseg check [--repair] [--json]`: are the database and the data folder in step?"""

from __future__ import annotations

import argparse
import json

SHOWN = 20  # lines of each kind in the text report; --json has them all


def _print_list(title: str, items: list[str]) -> None:
    if not items:
        return
    print(f"{title} ({len(items)}):")
    for item in items[:SHOWN]:
        print(f"  {item}")
    if len(items) > SHOWN:
        print(f"  ... and {len(items) - SHOWN} more (--json lists them all)")


def command_check(arguments: argparse.Namespace) -> int:
    from catseg.data.consistency import check_data

    report = check_data(repair=arguments.repair, grace_seconds=arguments.grace)
    if arguments.json:
        print(json.dumps(report.to_dict()))
    else:
        _print_list("Rows whose file is missing (kept: restore the file, or delete the photo in the app)",
                    [f"{item['owner']}: {item['path']}" for item in report.missing_files])
        _print_list("Files no row names", report.orphan_files)
        _print_list("Temporary files of interrupted writes", report.temporary_files)
        _print_list("Missing thumbnails", report.missing_thumbnails)
        if report.problems_found == 0:
            print(f"All in step: every row has its files and every file its row ({report.data_home}).")
        elif report.repaired:
            print(f"Repaired: removed {report.removed} files, rebuilt {report.rebuilt} thumbnails; "
                  f"{report.problems_left} problems left.")
        else:
            print(f"{report.problems_found} problems; `catseg check --repair` removes the stray and "
                  "temporary files and rebuilds thumbnails (it never deletes a row).")
        if not report.kept:
            print(f"The disk holding {report.data_home} is full: this result was not kept for the Home page.")
    return 0 if report.problems_left == 0 else 1


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add `check` to the CLI's sub-commands."""
    checking = commands.add_parser(
        "check", help="find rows without files, files without rows, leftovers of killed writes; --repair cleans up",
        description="Exit status 0 when everything is (or was repaired) in step, 1 when problems are left.")
    checking.add_argument("--repair", action="store_true",
                          help="remove files no row names and temporary files, rebuild thumbnails (never deletes rows)")
    checking.add_argument("--grace", type=float, default=60.0, metavar="SECONDS",
                          help="leave files younger than this alone: a save may be writing them (default 60)")
    checking.add_argument("--json", action="store_true", help="print the report as JSON")
    checking.set_defaults(handler=command_check)

