"""A local single-node Apache Kafka (KRaft, broker and controller in one JVM) for tests and
benchmarks, run from the jars that ``deploy/kafka/fetch.sh`` copies from Maven Central.

Not for production: one node, replication factor 1, and a small heap, because the project's
machines have two cores and share them with the tests. The broker fsyncs as Kafka does by
default (it leaves flushing to the OS and relies on replication); durability in production
comes from three brokers and ``min.insync.replicas=2``, not from this class.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import subprocess
import uuid
from pathlib import Path

from ates.platform.server_process import spawn, terminate, wait_ready
from ates.platform.tcp import free_port

FETCH_SCRIPT = "deploy/kafka/fetch.sh"

# Measured on the 2-core machine (Kafka 4.3, a fresh data folder incl. formatting): about
# 3.5 s with the default JIT, 3.2 s with C1 only, 1.5-2 s with C1 and the class-data archive
# below. A small heap and the serial collector keep two tests' brokers from crowding each
# other. C1 only costs peak throughput: benchmarks that measure Kafka itself may drop it.
JVM_OPTIONS = (
    "-Xmx512m",
    "-Xms128m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = file
"""


class LocalKafkaError(RuntimeError):
    pass


def kafka_libs() -> Path:
    """The folder of broker jars that ``deploy/kafka/fetch.sh`` fills (same default)."""
    home = os.environ.get("ATES_KAFKA_HOME") or str(Path.home() / ".cache" / "ates" / "kafka")
    return Path(home) / "libs"


def libs_present(libs: Path | None = None) -> bool:
    folder = libs or kafka_libs()
    return folder.is_dir() and any(folder.glob("kafka_2.13-*.jar"))


def new_cluster_id() -> str:
    """What ``kafka-storage random-uuid`` prints: 16 random bytes, URL-safe base64, never
    starting with "-" (a command line would take it for an option; Kafka avoids it too)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class LocalKafka:
    """A Kafka broker child process with its data under ``data_dir``.

    ``start()`` formats the storage on first use and returns once the broker answers a
    metadata request; ``restart()`` keeps the data and the port, as a real restart would.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        libs: Path | None = None,
        host: str = "127.0.0.1",
        log_level: str = "INFO",
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.libs = libs or kafka_libs()
        self.host = host
        self.port = port
        self.controller_port: int | None = None
        self.log_level = log_level
        self.process: subprocess.Popen[bytes] | None = None
        self._archive_draft: Path | None = None

    @property
    def url(self) -> str:
        return f"kafka://{self.host}:{self.port}"

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    # --- lifecycle --------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> str:
        if not libs_present(self.libs):
            raise LocalKafkaError(
                f"no Kafka jars in {self.libs}: run {FETCH_SCRIPT} (Maven fetches them)"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = free_port(self.host)
        if self.controller_port is None:
            self.controller_port = free_port(self.host)
        properties = self._write_config()
        if not (self.data_dir / "log" / "meta.properties").exists():
            self._format(properties)
        self.process = spawn(
            [*self._java(), *self._class_archive(), "kafka.Kafka", str(properties)],
            self.log_file,
        )
        host, port, log_file = self.host, self.port, self.log_file
        if wait_ready(
            self.process,
            lambda: broker_ready(host, port),
            timeout,
            lambda code: LocalKafkaError(f"Kafka exited with {code}; see {log_file}"),
        ):
            return self.url
        self.stop()
        raise LocalKafkaError(f"Kafka did not answer on {self.url} in {timeout}s")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL if it takes longer than ``timeout``."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        if not terminate(process, timeout):
            self._keep_archive(complete=False)
        self._keep_archive(complete=True)

    def kill(self) -> None:
        """SIGKILL, as a crash or a power cut would stop it."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self._keep_archive(complete=False)

    def restart(self) -> str:
        self.stop()
        return self.start()

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- files --------------------------------------------------------------------------

    def _java(self) -> list[str]:
        return [
            "java",
            *JVM_OPTIONS,
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp",
            f"{self.libs}/*",
        ]

    @property
    def archive(self) -> Path:
        """The JVM's class-data archive of the broker, beside the jars it was made from
        (``fetch.sh`` replaces the folder when the jars change, and the archive with it)."""
        return self.libs / "kafka-server.jsa"

    def _class_archive(self) -> list[str]:
        """Use the class-data archive, or make it at this broker's exit (the JVM writes it
        then). Several brokers may start at once: each writes a draft of its own, and the
        first complete one is renamed into place."""
        if self.archive.exists():
            return [f"-XX:SharedArchiveFile={self.archive}"]
        self._archive_draft = self.archive.with_suffix(f".{uuid.uuid4().hex}.draft")
        return [f"-XX:ArchiveClassesAtExit={self._archive_draft}"]

    def _keep_archive(self, *, complete: bool) -> None:
        """A JVM that exited cleanly wrote a whole archive; a killed one maybe half of one."""
        draft, self._archive_draft = self._archive_draft, None
        if draft is None or not draft.exists():
            return
        if complete and not self.archive.exists():
            draft.replace(self.archive)
        else:
            draft.unlink()

    def _write_config(self) -> Path:
        broker = f"{self.host}:{self.port}"
        controller = f"{self.host}:{self.controller_port}"
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": f"PLAINTEXT://{broker},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{broker}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "controller.quorum.bootstrap.servers": controller,
            "log.dirs": str(self.data_dir / "log"),
            # One node: every internal topic has a single replica.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # The first consumer group creates __consumer_offsets: one partition instead
            # of 50 makes that (and so every test's first group) quick.
            "offsets.topic.num.partitions": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Topics are created by ensure_streams, with their partitions and retention.
            "auto.create.topics.enable": "false",
        }
        properties = self.data_dir / "server.properties"
        properties.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        (self.data_dir / "log4j2.properties").write_text(
            LOG4J2.format(log=self.log_file, level=self.log_level)
        )
        return properties

    def _format(self, properties: Path) -> None:
        """``kafka-storage format --standalone``: KRaft refuses to start on unformatted
        storage, and a single controller is its own quorum."""
        archive = [f"-XX:SharedArchiveFile={self.archive}"] if self.archive.exists() else []
        command = [
            *self._java(),
            *archive,
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            new_cluster_id(),
            "--config",
            str(properties),
            "--standalone",
        ]
        result = subprocess.run(command, capture_output=True, check=False, timeout=120)
        if result.returncode != 0:
            raise LocalKafkaError(
                "formatting Kafka's storage failed: "
                + (result.stderr or result.stdout).decode(errors="replace")[-2000:]
            )


# --- readiness: one Metadata request over a plain socket --------------------------------

METADATA_API_KEY = 3
METADATA_VERSION = 4  # the oldest Kafka 4 still serves (KIP-896 removed v0-v3)


def broker_ready(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether the broker answers a metadata request naming at least one broker.

    A KRaft broker opens its client port only once it is unfenced, but a bare TCP connect
    could still reach a port that another process grabbed; the answer proves it is Kafka.
    No client library here: this runs in a plain thread, before any event loop exists.
    """
    client_id = b"ates-ready"
    body = struct.pack(">hhih", METADATA_API_KEY, METADATA_VERSION, 1, len(client_id))
    body += client_id + struct.pack(">ib", -1, 0)  # all topics, no auto-creation
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            size = struct.unpack(">i", _read(sock, 4))[0]
            answer = _read(sock, 12) if size >= 12 else b""
    except OSError:
        return False
    if not answer:
        return False
    correlation, _throttle, brokers = struct.unpack(">iii", answer)
    return bool(correlation == 1 and brokers > 0)


def _read(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data
