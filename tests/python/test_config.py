"""ReplicationConfig loaded from TOML, exposed read-only."""

from __future__ import annotations

from pathlib import Path

import pytest

import replication
from replication import PeerConfig, ReplicationConfig

FULL = """
node_id = 7
listen_address = "0.0.0.0:7500"
mode = "SEMI_SYNC"
min_sync_replicas = 2
heartbeat_interval_ms = 500
election_timeout_min_ms = 2000
election_timeout_max_ms = 2600
replication_timeout_ms = 4000
batch_size = 64
batch_timeout_ms = 5
wal_directory = "{wal}"
wal_segment_size_bytes = 16777216
wal_retention_segments = 12
wal_sync_on_commit = false
wal_sync_interval_ms = 20
wal_recovery_mode = "absolute_consistency"
wal_zero_fill_ahead = false
enable_wal_compression = false
compression_algorithm = "none"
compression_level = 9
compression_min_batch_bytes = 4096
cert_path = "/etc/repl/node.pem"
key_path = "/etc/repl/node.key"
ca_path = "/etc/repl/ca.pem"
require_mtls = true
allow_plaintext_dev = false

[[peers]]
node_id = 8
address = "10.0.0.8:7500"

[[peers]]
node_id = 9
address = "[fd00::9]:7500"
"""


def test_every_field_is_exposed(tmp_path: Path) -> None:
    cfg = ReplicationConfig.from_toml(FULL.format(wal=tmp_path / "wal"))
    assert cfg.node_id == 7
    assert cfg.listen_address == "0.0.0.0:7500"
    assert cfg.mode == "SEMI_SYNC"
    assert cfg.min_sync_replicas == 2
    assert (cfg.heartbeat_interval_ms, cfg.election_timeout_min_ms, cfg.election_timeout_max_ms) == (
        500,
        2000,
        2600,
    )
    assert (cfg.replication_timeout_ms, cfg.batch_size, cfg.batch_timeout_ms) == (4000, 64, 5)
    assert cfg.wal_directory == tmp_path / "wal"
    assert cfg.wal_segment_size_bytes == 16 << 20
    assert cfg.wal_retention_segments == 12
    assert cfg.wal_sync_on_commit is False and cfg.wal_sync_interval_ms == 20
    assert cfg.wal_recovery_mode == "absolute_consistency"
    assert cfg.wal_zero_fill_ahead is False
    assert cfg.enable_wal_compression is False and cfg.compression_algorithm == "none"
    assert (cfg.compression_level, cfg.compression_min_batch_bytes) == (9, 4096)
    assert cfg.cert_path == Path("/etc/repl/node.pem")
    assert cfg.key_path == Path("/etc/repl/node.key")
    assert cfg.ca_path == Path("/etc/repl/ca.pem")
    assert cfg.require_mtls is True and cfg.allow_plaintext_dev is False
    assert [(p.node_id, p.address) for p in cfg.peers] == [(8, "10.0.0.8:7500"), (9, "[fd00::9]:7500")]
    assert isinstance(cfg.peers[0], PeerConfig) and cfg.peers[0] == cfg.peers[0]
    assert repr(cfg.peers[1]) == 'PeerConfig(node_id=9, address="[fd00::9]:7500")'
    assert cfg.warnings() == []


def test_defaults_and_warnings() -> None:
    cfg = ReplicationConfig.from_toml("node_id = 1\n")
    assert cfg.mode == "ASYNC" and cfg.peers == []
    assert cfg.wal_directory == Path("wal")
    assert cfg.cert_path is None
    assert cfg.compression_algorithm == "zstd" and cfg.wal_recovery_mode == "tolerate_torn_tail"
    assert cfg.wal_zero_fill_ahead is True
    assert cfg.warnings() == []
    risky = ReplicationConfig.from_toml('node_id = 1\nmode = "SYNC"\nallow_plaintext_dev = true\n')
    warnings = risky.warnings()
    assert len(warnings) == 2
    assert any("allow_plaintext_dev" in w for w in warnings)
    assert any("no peers" in w for w in warnings)


def test_read_only() -> None:
    cfg = ReplicationConfig.from_toml("node_id = 1\n")
    with pytest.raises(AttributeError):
        cfg.node_id = 2  # type: ignore[misc]


def test_toml_round_trip_and_from_file(tmp_path: Path) -> None:
    cfg = ReplicationConfig.from_toml(FULL.format(wal=tmp_path / "wal"))
    text = cfg.to_toml()
    assert ReplicationConfig.from_toml(text) == cfg
    path = tmp_path / "repl.toml"
    path.write_text(text)
    assert ReplicationConfig.from_file(path) == cfg
    assert ReplicationConfig.from_file(str(path)) == cfg
    assert ReplicationConfig.from_toml("node_id = 2\n") != cfg
    assert repr(cfg).startswith("ReplicationConfig(node_id=7, mode=\"SEMI_SYNC\"")


def test_wal_from_config(tmp_path: Path) -> None:
    cfg = ReplicationConfig.from_toml(
        f'node_id = 1\nwal_directory = "{tmp_path / "wal"}"\nwal_segment_size_bytes = 4096\n'
        'wal_recovery_mode = "absolute_consistency"\n'
    )
    with replication.Wal.from_config(cfg) as wal:
        assert wal.path == tmp_path / "wal"
        for i in range(100):
            wal.append("insert", "c", str(i), bytes(100))
        assert len(wal.segment_paths()) > 1  # the configured segment size applies
        assert wal.durable_lsn == 100  # wal_sync_on_commit defaults to true
