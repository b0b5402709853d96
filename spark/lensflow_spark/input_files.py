"""File-level checks of a release's raw files, the defensive twin of the staging check
(`src/activities/inputFiles.ts`), reading the same formats from the contracts
(`release-formats.json`): a file that is missing, empty, holds only its header, names other columns
or uses another delimiter fails the job with an error naming the file, the problem and the fix,
before anything is read as zero rows or quarantined as one bad "row".

Only a file's first lines are looked at here (one small Spark read each); its encoding as a whole is
checked when it is staged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from .contracts import shared_fact

Encoding = Literal["utf-8", "latin-1"]

SAMPLE_LINES = 5
"""Records looked at for the format: all of them must be malformed for the file to be."""

LATEST = "ml-latest"
"""The CSV releases (ml-latest-small, ml-latest, ml-20m, ml-25m) share this one's format."""


@dataclass(frozen=True)
class FileFormat:
    """One file's format as `src/contracts/releaseFormats.ts` defines it."""

    delimiter: str
    """Field separator, literal."""
    encoding: Encoding
    """How the file's bytes are decoded."""
    has_header: bool
    """The first line names the columns."""
    columns: tuple[str, ...]
    """Column names in file order."""

    @property
    def header(self) -> str:
        """The header line a file with one must start with."""
        return self.delimiter.join(self.columns)


class InputFileError(ValueError):
    """A raw file with a file-level defect; `defect` is the contracts' `FileDefect` name."""

    def __init__(self, defect: str, file: str, problem: str, fix: str) -> None:
        super().__init__(f"{defect}: {file}: {problem}. {fix}")
        self.defect = defect


def release_files(dataset: str) -> dict[str, FileFormat]:
    """The formats of the files the jobs read from `dataset`, by file name."""
    formats = shared_fact("release-formats")
    if dataset not in formats:
        raise ValueError(f"unknown dataset {dataset!r}; supported: {', '.join(sorted(formats))}")
    return {
        name: FileFormat(f["delimiter"], f["encoding"], f["hasHeader"], tuple(f["columns"]))
        for name, f in formats[dataset].items()
    }


def release_format(dataset: str, name: str) -> FileFormat:
    """The format of one file of a release."""
    return release_files(dataset)[name]


def _show(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t") + '"'


def check_head(dataset: str, name: str, file: str, lines: list[str]) -> None:
    """Checks a file's first non-blank lines (all of them when fewer than `SAMPLE_LINES` + 1) against
    its format, by the same rules as the staging check; raises InputFileError."""
    fmt = release_format(dataset, name)
    fix = (
        f"Fix: replace it with {name} as GroupLens ships it in {dataset}, "
        "or choose the dataset whose format it has."
    )
    lines = [line.removeprefix("\ufeff").removesuffix("\r") for line in lines]
    if not lines:
        raise InputFileError("EmptyFile", file, "the file is empty (no line but blank ones)", fix)
    if fmt.encoding == "utf-8" and any("\ufffd" in line for line in lines):
        problem = f"its first lines are not valid UTF-8, the encoding {dataset} ships {name} in"
        raise InputFileError("InvalidEncoding", file, problem, "Fix: use the file as GroupLens ships it.")
    first, n = lines[0], len(fmt.columns)
    candidates = [d for d in shared_fact("candidate-delimiters") if d != fmt.delimiter]
    if fmt.has_header:
        if first != fmt.header:
            for d in candidates:
                if first.split(d) == list(fmt.columns):
                    used, want = _show(d), _show(fmt.delimiter)
                    problem = f"the header is separated by {used}, not by {want} as {dataset} is"
                    raise InputFileError("WrongDelimiter", file, problem, fix)
            problem = f"expected the header {_show(fmt.header)}, found {_show(first)}"
            raise InputFileError("WrongColumns", file, problem, fix)
        if len(lines) < 2:
            raise InputFileError("NoDataRows", file, "the file holds its header and no data row", fix)
        return
    # A format defect shows on every line; one bad line among good ones is a row for cleaning.
    records = lines[:SAMPLE_LINES]
    if any(len(line.split(fmt.delimiter)) == n for line in records):
        return
    problem = (
        f"none of the first {len(records)} line(s) splits into {dataset}'s {n} fields "
        f"({', '.join(fmt.columns)}) on {_show(fmt.delimiter)}; line 1 has {len(first.split(fmt.delimiter))}"
    )
    for d in candidates:
        if len(first.split(d)) == n:
            raise InputFileError(
                "WrongDelimiter", file, f"{problem}, and {_show(d)} would split it into {n}", fix
            )
    raise InputFileError("WrongFormat", file, problem, fix)


def check_release_file(spark: SparkSession, dataset: str, name: str, path: str) -> None:
    """Reads the first lines of one raw file (a small Spark action) and checks them; raises
    InputFileError, `MissingFile` when there is no such file."""
    try:
        text = spark.read.text(path)
    except AnalysisException as err:
        if "PATH_NOT_FOUND" not in str(err):
            raise
        fix = f"Fix: stage the release again, or point the job at the folder that holds {dataset}'s {name}."
        raise InputFileError("MissingFile", path, "there is no such file", fix) from None
    value = F.col("value")
    lines = [row.value for row in text.where(F.trim(value) != "").limit(SAMPLE_LINES + 1).collect()]
    check_head(dataset, name, path, lines)
