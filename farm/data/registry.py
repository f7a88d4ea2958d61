"""Where each public dataset can be downloaded from, as data rather than code.

Adding a dataset means adding one `DatasetSource` to `_SOURCES`; `farm.data.fetch` does the
rest (local copy, cache, mirrors in order, checksum, archive extraction).
"""

from __future__ import annotations

from dataclasses import dataclass

from farm.infra.errors import DataError

KINDS = ("table", "image_folder")
ARCHIVES = ("zip",)


@dataclass(frozen=True)
class Mirror:
    """One download location; `sha256=None` means the file cannot be verified."""

    url: str
    sha256: str | None = None
    archive: str | None = None  # "zip" or None (a plain file)
    archive_subdir: str | None = None  # folder inside the archive that becomes the dataset

    def __post_init__(self) -> None:
        if self.archive is not None and self.archive not in ARCHIVES:
            raise DataError(f"unsupported archive type {self.archive!r}; known: {ARCHIVES}",
                            where=self.url)
        if self.sha256 is not None and len(self.sha256) != 64:
            raise DataError(f"sha256 must be 64 hex digits, got {self.sha256!r}", where=self.url)


@dataclass(frozen=True)
class DatasetSource:
    """A public dataset: how it is laid out under `<root>/<name>/` and where to fetch it.

    `filename` is the file inside `<root>/<name>/` for tables; for image folders it is "."
    because the class folders live directly in `<root>/<name>/`.
    """

    name: str
    kind: str
    filename: str
    mirrors: tuple[Mirror, ...]
    target: str | None = None
    citation: str = ""
    license: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DataError(f"unknown dataset kind {self.kind!r}; known: {KINDS}", where=self.name)


_WEKA = "https://raw.githubusercontent.com/bnjmn/weka/a22631f8ba399bdfd92f9dd2f44a9d80544ffd6d"

_SOURCES = (
    DatasetSource(
        name="german_credit",
        kind="table",
        filename="german_credit.arff",
        target="class",
        mirrors=(
            Mirror(f"{_WEKA}/wekadocs/data/credit-g.arff",
                   "bd94085134e4eb845c96b34c93ed65a223f89d089bacb273ef96f57509ce0bed"),
            Mirror("https://www.openml.org/data/download/31/dataset_31_credit-g.arff"),
        ),
        citation="Hofmann, H. Statlog (German Credit Data). UCI Machine Learning Repository; "
                 "OpenML data id 31 (credit-g).",
        license="CC BY 4.0 (UCI); 'Public' on OpenML",
    ),
    DatasetSource(
        name="diabetes",
        kind="table",
        filename="diabetes.arff",
        target="class",
        mirrors=(
            Mirror(f"{_WEKA}/wekadocs/data/diabetes.arff",
                   "01c38ba089121a39a4ee5bafb3c9bddd71e4337d8f0268c85a999a37c1a027e6"),
            Mirror("https://www.openml.org/data/download/37/dataset_37_diabetes.arff"),
        ),
        citation="Smith, Everhart, Dickson, Knowler & Johannes (1988), Using the ADAP learning "
                 "algorithm to forecast the onset of diabetes mellitus; NIDDK Pima Indians "
                 "Diabetes Database; OpenML data id 37.",
        license="no explicit license; 'Public' on OpenML",
    ),
    DatasetSource(
        name="fids30",
        kind="image_folder",
        filename=".",
        mirrors=(
            Mirror("http://data.vicos.si/datasets/FIDS30/FIDS30.zip",
                   archive="zip", archive_subdir="FIDS30"),
        ),
        citation="M. Skrjanec, Automatic fruit recognition using computer vision, BSc thesis, "
                 "University of Ljubljana, 2013 (FIDS30, ViCoS).",
        license="no license stated; images belong to their owners; research use only",
    ),
)

SOURCES: dict[str, DatasetSource] = {s.name: s for s in _SOURCES}


def known_datasets() -> tuple[str, ...]:
    """Names accepted by `get_source`, sorted, for help texts and error messages."""
    return tuple(sorted(SOURCES))


def get_source(name: str) -> DatasetSource:
    """Look a dataset up by name, failing with the list of known names on a typo."""
    try:
        return SOURCES[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(known_datasets())}") from None
