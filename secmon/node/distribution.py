"""Fetch and unpack the Elasticsearch distribution that the local node runs.

Elasticsearch is on neither PyPI nor Debian; its integration-test distribution is published on
Maven Central as ``org.elasticsearch.distribution.integ-test-zip:elasticsearch:<version>:zip``.
It is fetched once with Maven (which checks the checksums) or, where Maven is missing, over
HTTPS from the repository named by ``SECMON_MAVEN_REPOSITORY``, checked against its ``.sha1``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from secmon.errors import NodeError
from secmon.log import get_logger

GROUP = "org.elasticsearch.distribution.integ-test-zip"
ARTIFACT = "elasticsearch"
_COMPLETE = ".secmon-unpacked"

log = get_logger(__name__)


def distribution_home(cache: Path, version: str) -> Path:
    """The folder the distribution of ``version`` is (or will be) unpacked into."""
    return cache / "dist" / f"elasticsearch-{version}"


def ensure_distribution(cache: Path, version: str) -> Path:
    """Return the unpacked distribution of ``version``, fetching and unpacking it on first use."""
    home = distribution_home(cache, version)
    if (home / _COMPLETE).is_file():
        return home
    home.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home.parent, prefix=".fetch-") as tmp:
        archive = _download(version, Path(tmp))
        _unpack(archive, home)
    return home


def _download(version: str, into: Path) -> Path:
    archive = into / f"{ARTIFACT}-{version}.zip"
    mvn = shutil.which("mvn")
    repository = os.environ.get("SECMON_MAVEN_REPOSITORY")
    if mvn:
        log.info("Fetching Elasticsearch with Maven.", version=version)
        command = [
            mvn, "-q", "-B", "dependency:copy",
            f"-Dartifact={GROUP}:{ARTIFACT}:{version}:zip",
            f"-DoutputDirectory={into}",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not archive.is_file():
            detail = (result.stdout + result.stderr).strip().splitlines()[-5:]
            raise NodeError(
                f"Maven could not fetch {GROUP}:{ARTIFACT}:{version}:zip "
                f"(exit {result.returncode}): {' / '.join(detail) or 'no output'}. "
                "Check the version exists on Maven Central and that this machine reaches it."
            )
        return archive
    if repository:
        _download_over_https(repository.rstrip("/"), version, archive)
        return archive
    raise NodeError(
        "Cannot fetch Elasticsearch: Maven is not installed (apt-get install maven) and "
        "SECMON_MAVEN_REPOSITORY is not set to a Maven repository URL. "
        "Alternatively set elasticsearch.url to an existing cluster."
    )


def _download_over_https(repository: str, version: str, archive: Path) -> None:
    path = f"{GROUP.replace('.', '/')}/{ARTIFACT}/{version}/{ARTIFACT}-{version}.zip"
    url = f"{repository}/{path}"
    log.info("Fetching Elasticsearch over HTTPS.", version=version, url=url)
    try:
        with urllib.request.urlopen(url + ".sha1", timeout=60) as response:
            expected = response.read().decode().split()[0].strip().lower()
        digest = hashlib.sha1(usedforsecurity=False)
        with urllib.request.urlopen(url, timeout=60) as response, archive.open("wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except OSError as exc:
        raise NodeError(f"Cannot download {url}: {exc}") from None
    if digest.hexdigest() != expected:
        raise NodeError(f"{url}: checksum mismatch (sha1 {digest.hexdigest()}, expected {expected})")


def _unpack(archive: Path, home: Path) -> None:
    staging = home.parent / f".unpack-{home.name}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                target = staging / info.filename
                if not target.resolve().is_relative_to(staging.resolve()):
                    raise NodeError(f"{archive}: entry {info.filename!r} points outside the archive")
                zf.extract(info, staging)
                # zipfile drops Unix permissions; the launcher scripts must stay executable.
                mode = (info.external_attr >> 16) & 0o777
                if mode:
                    target.chmod(mode)
    except zipfile.BadZipFile as exc:
        raise NodeError(f"{archive}: not a valid zip archive: {exc}") from None
    roots = [p for p in staging.iterdir() if p.is_dir()]
    if len(roots) != 1 or not (roots[0] / "bin" / "elasticsearch").is_file():
        raise NodeError(f"{archive}: does not look like an Elasticsearch distribution")
    shutil.rmtree(home, ignore_errors=True)
    roots[0].rename(home)
    staging.rmdir()
    (home / _COMPLETE).touch()
