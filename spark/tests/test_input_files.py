"""File-level checks of raw files (`input_files`), on real Spark over tiny files: each defect class
fails with an error naming the file, the problem and the fix; formats come from the contracts."""

from __future__ import annotations

from pathlib import Path

import pytest

from lensflow_spark import schemas
from lensflow_spark.input_files import InputFileError, check_release_file, release_files
from lensflow_spark.jobs import runtime
from lensflow_spark.readers import DATASETS, read_dataset

RATINGS_HEADER = "userId,movieId,rating,timestamp\r\n"
RATING = "1,10,4.0,964982703\r\n"


def write(folder: Path, name: str, data: bytes | str) -> str:
    path = folder / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return str(path)


@pytest.mark.parametrize(
    ("dataset", "name", "data", "defect", "problem"),
    [
        ("ml-latest-small", "ratings.csv", "", "EmptyFile", "the file is empty"),
        ("ml-latest-small", "ratings.csv", "\r\n\r\n", "EmptyFile", "the file is empty"),
        ("ml-latest-small", "ratings.csv", RATINGS_HEADER, "NoDataRows", "holds its header and no data row"),
        (
            "ml-latest-small",
            "ratings.csv",
            "userId,itemId,rating,timestamp\r\n" + RATING,
            "WrongColumns",
            'expected the header "userId,movieId,rating,timestamp", found "userId,itemId,rating,timestamp"',
        ),
        (
            "ml-latest",
            "movies.csv",
            "movieId;title;genres\n1;Toy Story (1995);Comedy\n",
            "WrongDelimiter",
            'the header is separated by ";", not by "," as ml-latest is',
        ),
        (
            "ml-100k",
            "u.data",
            "196,242,3,881250949\n186,302,3,891717742\n",
            "WrongDelimiter",
            "none of the first 2 line(s) splits into ml-100k's 4 fields "
            '(user id, item id, rating, timestamp) on "\\t"; line 1 has 1, and "," would split it into 4',
        ),
        (
            "ml-1m",
            "ratings.dat",
            "1|1193|5\n1|661|3\n",
            "WrongFormat",
            "none of the first 2 line(s) splits into ml-1m's 4 fields (UserID, MovieID, Rating, Timestamp) "
            'on "::"; line 1 has 1',
        ),
        (
            "ml-latest-small",
            "movies.csv",
            b"movieId,title,genres\n1,Caf\xe9 (2001),Drama\n",
            "InvalidEncoding",
            "its first lines are not valid UTF-8, the encoding ml-latest-small ships movies.csv in",
        ),
    ],
)
def test_each_file_defect_is_named_with_the_file_and_the_fix(
    spark, tmp_path, dataset, name, data, defect, problem
):
    path = write(tmp_path, name, data)
    with pytest.raises(InputFileError) as err:
        check_release_file(spark, dataset, name, path)
    assert err.value.defect == defect
    assert str(err.value).startswith(f"{defect}: {path}: ")
    assert problem in str(err.value)
    assert "Fix: " in str(err.value)


def test_a_missing_file_is_named(spark, tmp_path):
    with pytest.raises(InputFileError, match=r"^MissingFile: .*/u\.item: there is no such file\. Fix: stage"):
        check_release_file(spark, "ml-100k", "u.item", str(tmp_path / "u.item"))


def test_one_malformed_first_record_among_good_ones_is_left_to_cleaning(spark, tmp_path):
    path = write(tmp_path, "u.data", "196\t242\n186\t302\t3\t891717742\n")
    check_release_file(spark, "ml-100k", "u.data", path)


def test_the_clean_job_fails_on_a_header_only_ratings_file_before_writing_anything(spark, tmp_path):
    """Regression: a header-only ratings.csv used to "succeed" with 0 clean ratings."""
    raw = tmp_path / "raw"
    raw.mkdir()
    write(raw, "ratings.csv", RATINGS_HEADER)
    write(raw, "movies.csv", "movieId,title,genres\r\n10,Toy Story (1995),Comedy\r\n")
    out = tmp_path / "out"
    job_input = {"dataset": "ml-latest-small", "raw": str(raw), "output": f"{out}/processed"}
    with pytest.raises(InputFileError, match=r"^NoDataRows: .*/raw/ratings\.csv: the file holds its header"):
        runtime.execute(spark, "clean", job_input, f"{out}/r.json")
    assert not out.exists()


def test_read_dataset_refuses_renamed_columns_instead_of_quarantining_the_header(spark, tmp_path):
    """Regression: a header naming other columns used to be read as a data row and quarantined."""
    write(tmp_path, "ratings.csv", "user,movie,rating,timestamp\r\n" + RATING)
    write(tmp_path, "movies.csv", "movieId,title,genres\r\n10,Toy Story (1995),Comedy\r\n")
    with pytest.raises(InputFileError, match="WrongColumns"):
        read_dataset(spark, "ml-latest-small", str(tmp_path))


def test_every_release_read_has_its_files_in_the_contracts_and_schemas_match_their_columns():
    struct_types = {
        "ratings.csv": schemas.LATEST_RATINGS,
        "movies.csv": schemas.LATEST_MOVIES,
        "u.data": schemas.ML100K_RATINGS,
        "u.item": schemas.ML100K_MOVIES,
        "ratings.dat": schemas.DAT_RATINGS,
        "movies.dat": schemas.DAT_MOVIES,
    }
    for dataset in DATASETS:
        for name, fmt in release_files(dataset).items():
            schema = struct_types.get(name, schemas.ML100K_RATINGS)  # u1.base … u5.test are u.data's format
            assert len(schema.fields) == len(fmt.columns), (dataset, name)
            if fmt.has_header:
                assert schema.fieldNames() == list(fmt.columns), (dataset, name)
    assert release_files("ml-100k")["u.item"].columns[5:] == tuple(schemas.ML100K_GENRES)
