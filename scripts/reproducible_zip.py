#!/usr/bin/env python3
"""Rewrites Lambda zips so that the same files give the same bytes.

cargo-lambda stamps each entry with the build time, so an unchanged function
rebuilt from the same source would get a new zip, a new CodeSha256, and a
change in every plan. This keeps the content and makes everything else fixed:
entries sorted by name, timestamp 1980-01-01 (the zip epoch), Unix mode 0755
for `bootstrap` and 0644 otherwise, deflate level 9.

Usage: reproducible_zip.py ZIP [ZIP ...]   (rewritten in place)
"""
import os
import sys
import tempfile
import zipfile

EPOCH = (1980, 1, 1, 0, 0, 0)


def normalise(path: str) -> None:
    with zipfile.ZipFile(path) as src:
        entries = sorted((i.filename, src.read(i)) for i in src.infolist() if not i.is_dir())
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", suffix=".zip")
    os.close(fd)
    with zipfile.ZipFile(tmp, "w") as dst:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.create_system = 3  # Unix, so the mode below is honoured
            mode = 0o755 if os.path.basename(name) == "bootstrap" else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    os.replace(tmp, path)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for p in sys.argv[1:]:
        normalise(p)
