"""Java for the local Kafka nodes: the Java version, the pinned jars (fetched with Maven), the
JVM command lines, and formatting a node's storage.

A command that carries a secret (the SCRAM passwords `kafka-storage format` writes into the
metadata log) never puts it on a command line, which every user of the machine can read in
`ps`: the JVM's arguments go into an argument file readable by the owner only (`java @file`,
Java 9 and newer), removed once the command has run.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from tawasul.infra.kafka_local.errors import BrokerError

if TYPE_CHECKING:
    from tawasul.infra.kafka_local.broker import BrokerLayout

KAFKA_VERSION = "4.1.1"
"""Pinned in pom.xml too; a test keeps the two in step."""

MIN_JAVA = 17


def resource_text(name: str) -> str:
    return resources.files("tawasul.infra.kafka_local").joinpath(name).read_text(encoding="utf-8")


def java_major_version(java: str = "java") -> int:
    """The major version of the `java` on PATH; raises BrokerError when there is none."""
    if shutil.which(java) is None:
        raise BrokerError(
            f"no Java found: install Java {MIN_JAVA} or newer (e.g. the openjdk-{MIN_JAVA}-jre-headless package)"
        )
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    text = result.stderr + result.stdout
    for token in text.replace('"', " ").split():
        head = token.split(".")[0]
        if head.isdigit() and (token.count(".") >= 1 or token.isdigit()):
            major = int(head)
            return int(token.split(".")[1]) if major == 1 else major
    raise BrokerError(f"could not read the Java version from: {text.strip()[:200]}")


def ensure_libs(layout: BrokerLayout, *, echo: Callable[[str], None] = print) -> Path:
    """Fetch the pinned Kafka jars with Maven once; later calls return the cached folder."""
    marker = layout.libs_dir / ".complete"
    if marker.exists():
        return layout.libs_dir
    if shutil.which("mvn") is None:
        raise BrokerError("no Maven found: install Maven (the `maven` package) so Apache Kafka can be fetched")
    layout.libs_dir.parent.mkdir(parents=True, exist_ok=True)
    echo(f"Fetching Apache Kafka {KAFKA_VERSION} with Maven (first start only)...")
    with tempfile.TemporaryDirectory(dir=layout.libs_dir.parent) as tmp:
        pom = Path(tmp) / "pom.xml"
        pom.write_text(resource_text("pom.xml"), encoding="utf-8")
        staging = Path(tmp) / "libs"
        result = subprocess.run(
            ["mvn", "-B", "-q", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={staging}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise BrokerError(f"Maven could not fetch Apache Kafka {KAFKA_VERSION}:\n{tail}")
        (staging / ".complete").write_text(KAFKA_VERSION, encoding="utf-8")
        if layout.libs_dir.exists():
            shutil.rmtree(layout.libs_dir)
        staging.rename(layout.libs_dir)
    return layout.libs_dir


def new_cluster_id() -> str:
    """A random KRaft cluster id (base64url UUID); like Kafka's own, never starting with '-'."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not candidate.startswith("-"):
            return candidate


def java_command(layout: BrokerLayout, main_class: str, *args: str, heap: str) -> list[str]:
    """`java` with the node's heap, logging and class path, running `main_class args`."""
    log4j = layout.home / "log4j2.properties"
    log4j.write_text(resource_text("log4j2.properties"), encoding="utf-8")
    return [
        "java",
        f"-Xmx{heap}",
        "-Xms256m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
        f"-Dtawasul.kafka.log={layout.log_file}",
        "-cp",
        str(layout.libs_dir / "*"),
        main_class,
        *args,
    ]


def argument_file_text(arguments: list[str]) -> str:
    """The arguments as a Java launcher argument file: one double-quoted argument a line, with
    backslashes and quotes escaped."""
    return "".join('"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"\n' for arg in arguments)


def run_java_privately(command: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    """Run `command` (`java ...`) with its arguments in an owner-only argument file in `folder`
    (`java @file`): no argument shows on the process's command line."""
    fd, name = tempfile.mkstemp(prefix=".java-args-", dir=folder)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as argfile:
            argfile.write(argument_file_text(command[1:]))
        return subprocess.run([command[0], f"@{name}"], capture_output=True, text=True, check=False)
    finally:
        os.unlink(name)


def format_storage(layout: BrokerLayout, cluster_id: str | None = None, extra: tuple[str, ...] = ()) -> None:
    """`kafka-storage format` of the node's data folder (once); `extra` may carry SCRAM users
    with their passwords (`--add-scram`), which stay off the command line."""
    if (layout.data_dir / "meta.properties").exists():
        return
    layout.data_dir.mkdir(parents=True, exist_ok=True)
    command = java_command(
        layout,
        "kafka.tools.StorageTool",
        "format",
        "-t",
        cluster_id or new_cluster_id(),
        "-c",
        str(layout.config_file),
        *extra,
        heap="256m",
    )
    result = run_java_privately(command, layout.home)
    if result.returncode != 0:
        raise BrokerError(f"formatting the broker storage failed:\n{(result.stdout + result.stderr).strip()[-2000:]}")
