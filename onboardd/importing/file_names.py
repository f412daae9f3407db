"""An uploaded file's name, kept as the import's label: a plain name as a browser sends it.

The name is never a path on this machine (the file is stored in the database), but a name
with folders in it (``../../etc/passwd.csv``, ``C:\\Users\\x.csv``), control characters or an
endless length is not what any browser or ``curl -F file=@...`` sends: it is refused with a
sentence saying what to send, rather than kept, shown and logged as it came.
"""

from __future__ import annotations

from typing import Final

MAX_FILE_NAME_CHARS: Final = 255
_EXAMPLE: Final = "such as customers.csv"


def file_name_problem(name: str) -> str | None:
    """Why this file name cannot be the import's label (None when it can)."""
    if len(name) > MAX_FILE_NAME_CHARS:
        return (f"file: the file name is {len(name)} characters long; rename the file to at "
                f"most {MAX_FILE_NAME_CHARS} characters ({_EXAMPLE}) and upload it again")
    if "/" in name or "\\" in name:
        return ("file: the file name holds a folder path ('/' or '\\'); send the file under "
                f"its own name only ({_EXAMPLE})")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in name):
        return ("file: the file name holds control characters (a NUL, a line break); rename "
                f"the file ({_EXAMPLE}) and upload it again")
    return None
