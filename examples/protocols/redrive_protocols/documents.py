"""Reading a document from a URL and its text from a PDF, with failures in redrive's taxonomy."""

from __future__ import annotations

import io

import fsspec
import pypdf
from pypdf.errors import PdfReadError, PdfStreamError

from redrive.errors import CorruptedFile, ServiceUnavailable, TemporaryFailure, UnsupportedFormat

PDF_MAGIC = b"%PDF-"


def read_bytes(url: str) -> bytes:
    """The document at `url` (`file://`, `http(s)://`, or `s3://` with s3fs installed).

    A missing file, an HTTP 5xx and a timeout are retryable: the file may be there next time."""
    try:
        filesystem, path = fsspec.core.url_to_fs(url)
        data: bytes = filesystem.cat_file(path)  # over HTTP, one GET
    except FileNotFoundError as error:
        raise TemporaryFailure(f"{url}: no such file (yet)") from error
    except TimeoutError:
        raise
    except OSError as error:
        raise ServiceUnavailable(f"{url}: {type(error).__name__}: {error}") from error
    except Exception as error:  # aiohttp's response errors carry the status
        status = getattr(error, "status", None)
        if isinstance(status, int) and status >= 500:
            raise ServiceUnavailable(f"{url} answered {status}") from error
        raise
    return data


def pdf_text(data: bytes, name: str) -> str:
    """The text of every page; `UnsupportedFormat` for a file that is not a PDF, `CorruptedFile`
    for one that cannot be read (both permanent: no retry changes the bytes)."""
    if not data.startswith(PDF_MAGIC):
        raise UnsupportedFormat(f"{name} is not a PDF (it starts with {data[:8]!r})")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        return "\n".join(page.extract_text() or "" for page in reader.pages)
    except (PdfReadError, PdfStreamError, ValueError, KeyError) as error:
        raise CorruptedFile(f"{name} cannot be read as a PDF: {error}") from error
