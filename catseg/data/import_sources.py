"""Where imported files come from: a folder, a zip (read safely, never extracted), or uploads.

Each source lists its files as relative POSIX names, names them for reports, and reads
them with the intake's size limits, so a zip bomb or a huge file is refused before it is
read whole.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path, PurePosixPath

from catseg.data.decoding import MAX_FILE_BYTES, PhotoRejected

# Zip limits: a real photo hardly compresses at all; anything far beyond these is a bomb or an error.
MAX_ZIP_MEMBERS = 20_000
MAX_ZIP_TOTAL_BYTES = 8 * 1024**3
MAX_COMPRESSION_RATIO = 100


class FolderSource:
    """A folder on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = root.name

    def names(self) -> list[str]:
        """Every file below the folder, hidden ones included (the report names them as skipped)."""
        return sorted(path.relative_to(self.root).as_posix() for path in self.root.rglob("*") if path.is_file())

    def where(self, name: str) -> str:
        """How the report names a file of this source."""
        return name

    def read(self, name: str) -> bytes:
        path = self.root / name
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise PhotoRejected(f"{name}: the file is {size / 1e6:.0f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB.")
        return path.read_bytes()


class UnsafeZip(ValueError):
    """A zip that cannot be opened safely (not a zip, or a bomb)."""


def _is_safe_member_name(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return not (path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name))


class ZipSource:
    """A zip archive, read member by member with size caps (never extracted to disk)."""

    def __init__(self, data: bytes, label: str) -> None:
        self.label = label
        try:
            self.archive = zipfile.ZipFile(io.BytesIO(data))
            members = [info for info in self.archive.infolist() if not info.is_dir()]
        except (zipfile.BadZipFile, OSError, ValueError) as error:
            raise UnsafeZip(f"{label}: not a readable zip file ({error}).") from None
        if len(members) > MAX_ZIP_MEMBERS:
            raise UnsafeZip(f"{label}: {len(members)} files in one zip; the limit is {MAX_ZIP_MEMBERS}.")
        declared = sum(info.file_size for info in members)
        if declared > MAX_ZIP_TOTAL_BYTES:
            raise UnsafeZip(
                f"{label}: the zip would expand to {declared / 1e9:.1f} GB "
                f"(limit {MAX_ZIP_TOTAL_BYTES / 1e9:.0f} GB); it looks like a zip bomb."
            )
        self.unsafe = [info.filename for info in members if not _is_safe_member_name(info.filename)]
        self.members = {
            info.filename.replace("\\", "/"): info for info in members if _is_safe_member_name(info.filename)
        }

    def names(self) -> list[str]:
        """Every safe member, hidden ones included (the report names them as skipped)."""
        return sorted(self.members)

    def where(self, name: str) -> str:
        """Members are named after their zip, so a member of a zip in a folder is findable."""
        return f"{self.label}/{name}"

    def read(self, name: str) -> bytes:
        info = self.members[name]
        where = f"{self.label}/{name}"
        if info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO and info.file_size > 1e6:
            raise PhotoRejected(
                f"{where}: compressed {info.file_size / info.compress_size:.0f}:1, "
                "far beyond any photo; it looks like a zip bomb."
            )
        if info.file_size > MAX_FILE_BYTES:
            raise PhotoRejected(
                f"{where}: would expand to {info.file_size / 1e6:.0f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB."
            )
        # Headers can lie: never read more than the limit whatever they declare.
        with self.archive.open(info) as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise PhotoRejected(f"{where}: expands beyond {MAX_FILE_BYTES / 1e6:.0f} MB; it looks like a zip bomb.")
        return data


class MemorySource:
    """Files uploaded in the browser: names and bytes already in memory."""

    def __init__(self, files: list[tuple[str, bytes]], label: str = "upload") -> None:
        self.label = label
        self.files: dict[str, bytes] = {}
        for name, data in files:
            # Two uploads may share a name (from different folders); keep both.
            unique, number = name, 1
            while unique in self.files:
                number += 1
                unique = f"{name} ({number})"
            self.files[unique] = data

    def names(self) -> list[str]:
        return list(self.files)

    def where(self, name: str) -> str:
        return name

    def read(self, name: str) -> bytes:
        return self.files[name]


def open_source(path_or_bytes: Path | bytes, label: str | None = None) -> FolderSource | ZipSource:
    """A source for a folder, a .zip file on disk, or zip bytes (an upload)."""
    if isinstance(path_or_bytes, bytes):
        return ZipSource(path_or_bytes, label or "upload.zip")
    path = Path(path_or_bytes)
    if path.is_dir():
        return FolderSource(path)
    if path.is_file() and path.suffix.lower() == ".zip":
        return ZipSource(path.read_bytes(), label or path.name)
    if not path.exists():
        raise ValueError(f"{path}: no such folder or zip file.")
    raise ValueError(f"{path}: expected a folder or a .zip file.")
