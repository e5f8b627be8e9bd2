//! Semantic checks of a [`ReplicationConfig`]: problems (refuse to start) and warnings (start,
//! but tell the operator).

use std::collections::{BTreeMap, BTreeSet};

use super::{ConfigProblem, ReplicationConfig, ReplicationMode};
use crate::config::CompressionAlgorithm;
use crate::wal::MIN_SEGMENT_SIZE_BYTES;

/// zstd's level range (negative "fast" levels are not offered).
const ZSTD_LEVELS: std::ops::RangeInclusive<i32> = 1..=22;
/// Failover target from the design constraints: new leader elected within 10 s.
const FAILOVER_TARGET_MS: u64 = 10_000;

/// Every problem with `cfg`. Checks that read a field listed in `broken` (a value that failed
/// to load and still holds its default) are skipped, so one typo yields one problem.
pub(super) fn problems(cfg: &ReplicationConfig, broken: &BTreeSet<String>) -> Vec<ConfigProblem> {
    let mut c = Checker {
        broken,
        problems: Vec::new(),
    };
    check_identity(cfg, &mut c);
    check_timing(cfg, &mut c);
    check_lag_alert(cfg, &mut c);
    check_wal(cfg, &mut c);
    check_replication(cfg, &mut c);
    check_peers(cfg, &mut c);
    check_tls(cfg, &mut c);
    check_vote_keys(cfg, &mut c);
    c.problems
}

/// What a node running over the network needs beyond [`problems`]: keys to sign and verify
/// votes. Required whenever peers exist, in plaintext development mode too, because votes are
/// signed on every transport. Format problems of keys that are set are already in [`problems`].
pub(super) fn network_problems(cfg: &ReplicationConfig) -> Vec<ConfigProblem> {
    let mut out = Vec::new();
    if cfg.peers.is_empty() {
        return out;
    }
    if cfg.node_key_path.is_none() {
        out.push(ConfigProblem::new(
            "node_key_path",
            "node_key_path is required when peers are configured: this node signs its vote \
             requests with it; create one with `replicad keygen --out PATH` and give the \
             printed public key to the other nodes as their peers[].public_key",
        ));
    }
    for (i, peer) in cfg.peers.iter().enumerate() {
        if peer.public_key.is_none() {
            out.push(ConfigProblem::new(
                format!("peers[{i}].public_key"),
                format!(
                    "public_key is required for peer {}: its vote requests are verified with \
                     it; set it to the hex that `replicad keygen` printed on that node (or its \
                     PEM public key)",
                    peer.node_id
                ),
            ));
        }
    }
    out
}

/// Keys that are set must be usable, whether or not this config runs over the network.
fn check_vote_keys(cfg: &ReplicationConfig, c: &mut Checker<'_>) {
    if c.ok(&["node_key_path"])
        && cfg
            .node_key_path
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
    {
        c.report(
            "node_key_path",
            "node_key_path must not be empty; remove the key or give a file path",
        );
    }
    for (i, peer) in cfg.peers.iter().enumerate() {
        let field = format!("peers[{i}].public_key");
        let Some(key) = peer.public_key.as_deref() else {
            continue;
        };
        if !c.ok(&[field.as_str()]) {
            continue;
        }
        if let Err(e) = parse_public_key(key) {
            c.report(
                field,
                format!(
                    "{e}; give 64 hex digits (as `replicad keygen` prints) or a PEM \
                     `PUBLIC KEY` block"
                ),
            );
        }
    }
}

/// A peer's public key as configured: PEM if it looks like PEM, hex otherwise.
pub(crate) fn parse_public_key(
    text: &str,
) -> Result<crate::security::NodePublicKey, crate::security::SecurityError> {
    use crate::security::NodePublicKey;
    if text.trim_start().starts_with("-----BEGIN") {
        NodePublicKey::from_pem(text.trim())
    } else {
        NodePublicKey::from_hex(text)
    }
}

struct Checker<'b> {
    broken: &'b BTreeSet<String>,
    problems: Vec<ConfigProblem>,
}

impl Checker<'_> {
    /// `true` if none of `fields` failed to load, i.e. their values are the user's.
    fn ok(&self, fields: &[&str]) -> bool {
        fields.iter().all(|f| !self.broken.contains(*f))
    }

    fn report(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigProblem::new(field, message));
    }
}

fn check_identity(cfg: &ReplicationConfig, c: &mut Checker<'_>) {
    if c.ok(&["node_id"]) && cfg.node_id == 0 {
        c.report(
            "node_id",
            "node_id must not be 0 (0 means \"no node\" in votes and messages); set it to this \
             node's cluster-unique id, a positive integer",
        );
    }
    if c.ok(&["listen_address"]) {
        if let Err(why) = check_host_port(&cfg.listen_address, true) {
            c.report(
                "listen_address",
                format!(
                    "`{}` is not host:port ({why}); use e.g. \"0.0.0.0:7400\" or \"[::]:7400\"",
                    cfg.listen_address
                ),
            );
        }
    }
}

fn check_timing(cfg: &ReplicationConfig, c: &mut Checker<'_>) {
    let positive = [
        ("heartbeat_interval_ms", cfg.heartbeat_interval_ms, 1000),
        ("election_timeout_min_ms", cfg.election_timeout_min_ms, 3000),
        ("election_timeout_max_ms", cfg.election_timeout_max_ms, 3300),
        ("replication_timeout_ms", cfg.replication_timeout_ms, 10_000),
    ];
    for (field, value, default) in positive {
        if c.ok(&[field]) && value == 0 {
            c.report(
                field,
                format!("{field} must be greater than 0; the default is {default}"),
            );
        }
    }

    let (hb, min, max) = (
        cfg.heartbeat_interval_ms,
        cfg.election_timeout_min_ms,
        cfg.election_timeout_max_ms,
    );
    let election_fields = ["election_timeout_min_ms", "election_timeout_max_ms"];
    if c.ok(&election_fields) && min > 0 && max > 0 && min >= max {
        c.report(
            "election_timeout_min_ms",
            format!(
                "election_timeout_min_ms ({min}) must be smaller than election_timeout_max_ms \
                 ({max}): followers draw their timeout from [min, max), and without that spread \
                 they campaign at the same moment and split the vote; e.g. min = 3000, max = 3300"
            ),
        );
    }
    if c.ok(&["heartbeat_interval_ms", "election_timeout_min_ms"]) && hb > 0 && min > 0 && hb >= min
    {
        c.report(
            "heartbeat_interval_ms",
            format!(
                "heartbeat_interval_ms ({hb}) must be smaller than election_timeout_min_ms \
                 ({min}), otherwise followers call elections between two heartbeats of a healthy \
                 leader; keep it at most a third of election_timeout_min_ms"
            ),
        );
    }
}

fn check_lag_alert(cfg: &ReplicationConfig, c: &mut Checker<'_>) {
    let (ms, hb) = (cfg.lag_alert_threshold_ms, cfg.heartbeat_interval_ms);
    if c.ok(&["lag_alert_threshold_ms", "heartbeat_interval_ms"]) && ms > 0 && ms < hb {
        c.report(
            "lag_alert_threshold_ms",
            format!(
                "lag_alert_threshold_ms ({ms}) is below heartbeat_interval_ms ({hb}); lag is \
                 checked on the heartbeat cadence, so set it to at least {hb}, or to 0 to turn the \
                 time threshold off (the default is 5000)"
            ),
        );
    }
}

fn check_wal(cfg: &ReplicationConfig, c: &mut Checker<'_>) {
    if c.ok(&["batch_size"]) && cfg.batch_size == 0 {
        c.report(
            "batch_size",
            "batch_size must be at least 1 record; the default is 1000",
        );
    }
    if c.ok(&["wal_directory"]) && cfg.wal_directory.as_os_str().is_empty() {
        c.report(
            "wal_directory",
            "wal_directory must not be empty; the default is \"./wal\"",
        );
    }
    if c.ok(&["wal_segment_size_bytes"]) && cfg.wal_segment_size_bytes < MIN_SEGMENT_SIZE_BYTES {
        c.report(
            "wal_segment_size_bytes",
            format!(
                "wal_segment_size_bytes = {} is too small; a segment needs at least \
                 {MIN_SEGMENT_SIZE_BYTES} bytes for its header and records (the default is \
                 67108864, 64 MiB)",
                cfg.wal_segment_size_bytes
            ),
        );
    }
    if c.ok(&["compression_algorithm", "compression_level"])
        && cfg.compression_algorithm == CompressionAlgorithm::Zstd
        && !ZSTD_LEVELS.contains(&cfg.compression_level)
    {
        c.report(
            "compression_level",
            format!(
                "compression_level = {} is outside zstd's range 1..=22; 3 (the default) is a good \
                 balance of speed and ratio, 19 and above are very slow",
                cfg.compression_level
            ),
        );
    }
}

fn check_replication(cfg: &ReplicationConfig, c: &mut Checker<'_>) {
    if !c.ok(&["mode", "min_sync_replicas"]) {
        return;
    }
    let n = cfg.min_sync_replicas;
    if cfg.mode == ReplicationMode::Sync && n == 0 {
        c.report(
            "min_sync_replicas",
            "min_sync_replicas = 0 is not allowed in SYNC mode; set it to at least 1",
        );
    }
    let waits_for_replicas = matches!(cfg.mode, ReplicationMode::Sync | ReplicationMode::SemiSync);
    let peers = cfg.peers.len();
    // With no peers the membership is expected to grow later (joint consensus); the count is
    // checked once peers are listed.
    if c.ok(&["peers"]) && waits_for_replicas && peers > 0 && u64::from(n) > peers as u64 {
        c.report(
            "min_sync_replicas",
            format!(
                "min_sync_replicas = {n} but only {peers} peer(s) are configured, so no write \
                 could ever be acknowledged in {} mode; lower min_sync_replicas or add peers",
                cfg.mode
            ),
        );
    }
}

fn check_peers(cfg: &ReplicationConfig, c: &mut Checker<'_>) {
    let mut ids: BTreeMap<u64, usize> = BTreeMap::new();
    let mut addresses: BTreeMap<&str, usize> = BTreeMap::new();
    let own_id_ok = c.ok(&["node_id"]);
    for (i, peer) in cfg.peers.iter().enumerate() {
        let id_field = format!("peers[{i}].node_id");
        if c.ok(&[&id_field]) {
            let id = peer.node_id;
            if id == 0 {
                c.report(
                    id_field,
                    "peer node_id must not be 0; use the peer's own positive node_id",
                );
            } else if own_id_ok && id == cfg.node_id {
                c.report(
                    id_field,
                    format!(
                        "peer node_id {id} is this node's own node_id; list only the other nodes \
                         of the cluster under [[peers]]"
                    ),
                );
            } else if let Some(first) = ids.get(&id) {
                c.report(
                    id_field,
                    format!(
                        "peer node_id {id} is already used by peers[{first}]; every node needs \
                         a unique id"
                    ),
                );
            } else {
                ids.insert(id, i);
            }
        }

        let address_field = format!("peers[{i}].address");
        if c.ok(&[&address_field]) {
            let address = peer.address.as_str();
            if let Err(why) = check_host_port(address, false) {
                c.report(
                    address_field,
                    format!(
                        "`{address}` is not host:port ({why}); use e.g. \"10.0.0.2:7400\" or \
                         \"[fd00::2]:7400\""
                    ),
                );
            } else if let Some(first) = addresses.get(address) {
                c.report(
                    address_field,
                    format!("address `{address}` is already used by peers[{first}]"),
                );
            } else {
                addresses.insert(address, i);
            }
        }
    }
}

fn check_tls(cfg: &ReplicationConfig, c: &mut Checker<'_>) {
    let paths = [
        ("cert_path", &cfg.cert_path, "this node's PEM certificate"),
        (
            "key_path",
            &cfg.key_path,
            "the PEM private key of cert_path",
        ),
        (
            "ca_path",
            &cfg.ca_path,
            "the PEM CA bundle that signs peer certificates",
        ),
    ];
    for (field, path, _) in paths {
        if c.ok(&[field]) && path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            c.report(
                field,
                format!("{field} must not be empty; remove the key or give a file path"),
            );
        }
    }
    // A single node has nobody to authenticate, so it runs without certificates.
    let needs_certs = cfg.require_mtls && !cfg.allow_plaintext_dev && !cfg.peers.is_empty();
    if !needs_certs || !c.ok(&["require_mtls", "allow_plaintext_dev", "peers"]) {
        return;
    }
    for (field, path, what) in paths {
        if c.ok(&[field]) && path.is_none() {
            c.report(
                field,
                format!(
                    "{field} is required because require_mtls = true and peers are configured; \
                     set it to {what}, or set allow_plaintext_dev = true for local development \
                     only"
                ),
            );
        }
    }
}

/// Accepts `host:port` and `[ipv6]:port`. `allow_port_zero` is for listen addresses, where 0
/// asks the OS for a free port.
fn check_host_port(address: &str, allow_port_zero: bool) -> Result<(), &'static str> {
    let (host, port) = address.rsplit_once(':').ok_or("no `:port`")?;
    if host.is_empty() {
        return Err("empty host");
    }
    if host.chars().any(|ch| ch.is_whitespace() || ch == '/') {
        return Err("host contains whitespace or `/`");
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or("`[` without closing `]`")?;
        if inner.is_empty() || !inner.contains(':') {
            return Err("brackets must hold an IPv6 address");
        }
    } else if host.contains([':', '[', ']']) {
        return Err("an IPv6 host must be written in brackets, e.g. [::1]:7400");
    }
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err("port must be a number");
    }
    match port.parse::<u16>() {
        Ok(0) if !allow_port_zero => Err("port must be 1..=65535"),
        Ok(_) => Ok(()),
        Err(_) => Err("port must be 0..=65535"),
    }
}

pub(super) fn warnings(cfg: &ReplicationConfig) -> Vec<String> {
    let mut out = Vec::new();
    if cfg.allow_plaintext_dev {
        out.push(
            "allow_plaintext_dev = true: replication traffic may be unencrypted and \
             unauthenticated; never use this in production"
                .to_owned(),
        );
    } else if !cfg.require_mtls && !cfg.peers.is_empty() {
        out.push(
            "require_mtls = false: peers are not authenticated by certificate, so anyone who can \
             reach the replication port can join; enable require_mtls in production"
                .to_owned(),
        );
    }
    if cfg.mode == ReplicationMode::SemiSync && cfg.min_sync_replicas == 0 {
        out.push(
            "mode = SEMI_SYNC with min_sync_replicas = 0 waits for no replica, so it behaves \
             like ASYNC; set min_sync_replicas to at least 1"
                .to_owned(),
        );
    }
    if cfg.mode != ReplicationMode::Async && cfg.peers.is_empty() {
        out.push(format!(
            "mode = {} but no peers are configured: commits wait for replicas that are not there \
             until peers join; use ASYNC for a single node",
            cfg.mode
        ));
    }
    let (hb, min, max) = (
        cfg.heartbeat_interval_ms,
        cfg.election_timeout_min_ms,
        cfg.election_timeout_max_ms,
    );
    if hb > 0 && hb < min && hb.saturating_mul(2) > min {
        out.push(format!(
            "heartbeat_interval_ms ({hb}) is more than half of election_timeout_min_ms ({min}): \
             a single delayed heartbeat can trigger an election; keep it at most a third"
        ));
    }
    // Worst case: the lease (max) expires, then the randomised timeout (< max) runs out.
    let worst_failover_ms = max.saturating_mul(2);
    if worst_failover_ms > FAILOVER_TARGET_MS {
        out.push(format!(
            "election_timeout_max_ms = {max} lets failover take up to about {worst_failover_ms} ms \
             (lease + election timeout), above the {FAILOVER_TARGET_MS} ms target; keep it at \
             most {} ms",
            FAILOVER_TARGET_MS / 2
        ));
    }
    if cfg.lag_alert_threshold_entries == 0 && cfg.lag_alert_threshold_ms == 0 {
        out.push(
            "lag_alert_threshold_entries = 0 and lag_alert_threshold_ms = 0: follower lag alerts \
             are off"
                .to_owned(),
        );
    }
    if cfg.wal_sync_on_commit && cfg.wal_sync_interval_ms > 0 {
        out.push(format!(
            "wal_sync_interval_ms = {} is ignored because wal_sync_on_commit = true",
            cfg.wal_sync_interval_ms
        ));
    }
    if !cfg.wal_sync_on_commit && cfg.wal_sync_interval_ms == 0 {
        out.push(
            "wal_sync_on_commit = false and wal_sync_interval_ms = 0: the WAL is never fsynced, \
             so a power loss can lose acknowledged writes"
                .to_owned(),
        );
    }
    if cfg.enable_wal_compression && cfg.compression_algorithm == CompressionAlgorithm::None {
        out.push(
            "enable_wal_compression = true has no effect with compression_algorithm = \"none\""
                .to_owned(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigError, PeerConfig};

    fn peer(node_id: u64, address: &str) -> PeerConfig {
        PeerConfig {
            node_id,
            address: address.to_owned(),
            public_key: None,
        }
    }

    fn fields(cfg: &ReplicationConfig) -> Vec<String> {
        problems(cfg, &BTreeSet::new())
            .into_iter()
            .map(|p| p.field)
            .collect()
    }

    fn plaintext() -> ReplicationConfig {
        ReplicationConfig {
            allow_plaintext_dev: true,
            ..ReplicationConfig::default()
        }
    }

    #[test]
    fn zero_sizes_and_intervals_are_rejected() {
        let cfg = ReplicationConfig {
            heartbeat_interval_ms: 0,
            election_timeout_min_ms: 0,
            election_timeout_max_ms: 0,
            replication_timeout_ms: 0,
            batch_size: 0,
            wal_segment_size_bytes: 4095,
            wal_directory: "".into(),
            ..ReplicationConfig::default()
        };
        assert_eq!(
            fields(&cfg),
            [
                "heartbeat_interval_ms",
                "election_timeout_min_ms",
                "election_timeout_max_ms",
                "replication_timeout_ms",
                "batch_size",
                "wal_directory",
                "wal_segment_size_bytes",
            ]
        );
        let ok = ReplicationConfig {
            wal_segment_size_bytes: 4096,
            batch_timeout_ms: 0,
            ..ReplicationConfig::default()
        };
        assert!(fields(&ok).is_empty());
    }

    #[test]
    fn election_range_must_be_non_empty_and_above_heartbeat() {
        let inverted = ReplicationConfig {
            election_timeout_min_ms: 4000,
            election_timeout_max_ms: 3000,
            ..ReplicationConfig::default()
        };
        assert_eq!(fields(&inverted), ["election_timeout_min_ms"]);
        let empty = ReplicationConfig {
            election_timeout_min_ms: 3000,
            election_timeout_max_ms: 3000,
            ..ReplicationConfig::default()
        };
        assert_eq!(fields(&empty), ["election_timeout_min_ms"]);
        let slow_heartbeat = ReplicationConfig {
            heartbeat_interval_ms: 3000,
            ..ReplicationConfig::default()
        };
        let found = problems(&slow_heartbeat, &BTreeSet::new());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].field, "heartbeat_interval_ms");
        assert!(found[0]
            .message
            .contains("must be smaller than election_timeout_min_ms (3000)"));
    }

    #[test]
    fn lag_alert_thresholds() {
        let below_heartbeat = ReplicationConfig {
            lag_alert_threshold_ms: 999,
            ..ReplicationConfig::default()
        };
        let found = problems(&below_heartbeat, &BTreeSet::new());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].field, "lag_alert_threshold_ms");
        assert!(
            found[0].message.contains("at least 1000"),
            "{}",
            found[0].message
        );
        let at_heartbeat = ReplicationConfig {
            lag_alert_threshold_ms: 1000,
            ..ReplicationConfig::default()
        };
        assert!(fields(&at_heartbeat).is_empty());
        // 0 turns a threshold off; both off is legal but warned about.
        let time_off = ReplicationConfig {
            lag_alert_threshold_ms: 0,
            ..ReplicationConfig::default()
        };
        assert!(fields(&time_off).is_empty());
        assert!(time_off.warnings().is_empty());
        let all_off = ReplicationConfig {
            lag_alert_threshold_entries: 0,
            ..time_off
        };
        assert!(all_off.validate().is_ok());
        assert_eq!(all_off.warnings().len(), 1);
        assert!(all_off.warnings()[0].contains("lag alerts are off"));
        let doc = "node_id = 1\nlag_alert_threshold_entries = 20\nlag_alert_threshold_ms = 0\n";
        let loaded = ReplicationConfig::from_toml_str(doc).unwrap();
        assert_eq!(
            (
                loaded.lag_alert_threshold_entries,
                loaded.lag_alert_threshold_ms
            ),
            (20, 0)
        );
        let err = ReplicationConfig::from_toml_str("node_id = 1\nlag_alert_threshold_ms = 5\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("lag_alert_threshold_ms (line 2)"), "{err}");
    }

    #[test]
    fn min_sync_replicas_rules() {
        let sync_zero = ReplicationConfig {
            mode: ReplicationMode::Sync,
            min_sync_replicas: 0,
            ..plaintext()
        };
        let err = sync_zero.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "replication config has 1 problem:\n  min_sync_replicas: min_sync_replicas = 0 is not \
             allowed in SYNC mode; set it to at least 1"
        );
        // SEMI_SYNC with 0 is legal but warned about; ASYNC ignores the value.
        let semi_zero = ReplicationConfig {
            mode: ReplicationMode::SemiSync,
            ..sync_zero.clone()
        };
        assert!(semi_zero.validate().is_ok());
        assert!(semi_zero
            .warnings()
            .iter()
            .any(|w| w.contains("behaves like ASYNC")));

        let too_many = ReplicationConfig {
            mode: ReplicationMode::SemiSync,
            min_sync_replicas: 3,
            peers: vec![peer(2, "a:1"), peer(3, "b:1")],
            ..plaintext()
        };
        let found = problems(&too_many, &BTreeSet::new());
        assert_eq!(found.len(), 1);
        assert!(
            found[0].message.contains("only 2 peer(s)"),
            "{}",
            found[0].message
        );
        let async_many = ReplicationConfig {
            mode: ReplicationMode::Async,
            ..too_many
        };
        assert!(async_many.validate().is_ok());
    }

    #[test]
    fn peer_ids_and_addresses_are_checked() {
        let cfg = ReplicationConfig {
            node_id: 1,
            peers: vec![
                peer(1, "a:1"),
                peer(2, "b:1"),
                peer(2, "c:1"),
                peer(0, "d:1"),
                peer(5, "b:1"),
                peer(6, "e"),
            ],
            ..plaintext()
        };
        let found = problems(&cfg, &BTreeSet::new());
        let summary: Vec<(&str, &str)> = found
            .iter()
            .map(|p| (p.field.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(summary.len(), 5, "{summary:#?}");
        assert_eq!(summary[0].0, "peers[0].node_id");
        assert!(summary[0].1.contains("own node_id"));
        assert_eq!(summary[1].0, "peers[2].node_id");
        assert!(summary[1].1.contains("already used by peers[1]"));
        assert_eq!(summary[2].0, "peers[3].node_id");
        assert_eq!(summary[3].0, "peers[4].address");
        assert!(summary[3].1.contains("already used by peers[1]"));
        assert_eq!(summary[4].0, "peers[5].address");
    }

    #[test]
    fn host_port_forms() {
        for good in [
            "a:1",
            "10.0.0.2:7400",
            "[::1]:7400",
            "[fd00::2]:65535",
            "db-1.local:80",
        ] {
            assert_eq!(check_host_port(good, false), Ok(()), "{good}");
        }
        for bad in [
            "",
            "host",
            ":7400",
            "host:",
            "host:x",
            "host:65536",
            "host:0",
            "::1:7400",
            "[::1:7400",
            "[]:1",
            "a b:1",
            "[host]:1",
            "http://a:1",
        ] {
            assert!(check_host_port(bad, false).is_err(), "{bad}");
        }
        assert_eq!(check_host_port("127.0.0.1:0", true), Ok(()));
        let cfg = ReplicationConfig {
            listen_address: "localhost".into(),
            ..ReplicationConfig::default()
        };
        assert_eq!(fields(&cfg), ["listen_address"]);
    }

    #[test]
    fn compression_level_is_checked_only_for_zstd() {
        let high = ReplicationConfig {
            compression_level: 23,
            ..ReplicationConfig::default()
        };
        assert_eq!(fields(&high), ["compression_level"]);
        let zero = ReplicationConfig {
            compression_level: 0,
            ..ReplicationConfig::default()
        };
        assert_eq!(fields(&zero), ["compression_level"]);
        let none = ReplicationConfig {
            compression_algorithm: CompressionAlgorithm::None,
            ..high
        };
        assert!(fields(&none).is_empty());
    }

    #[test]
    fn certificates_required_only_for_clusters_with_mtls() {
        let single = ReplicationConfig::default();
        assert!(single.validate().is_ok());

        let cluster = ReplicationConfig {
            peers: vec![peer(2, "10.0.0.2:7400")],
            ..ReplicationConfig::default()
        };
        assert_eq!(fields(&cluster), ["cert_path", "key_path", "ca_path"]);

        let with_certs = ReplicationConfig {
            cert_path: Some("n.pem".into()),
            key_path: Some("n.key".into()),
            ca_path: Some("ca.pem".into()),
            ..cluster.clone()
        };
        assert!(with_certs.validate().is_ok());

        let dev = ReplicationConfig {
            allow_plaintext_dev: true,
            ..cluster.clone()
        };
        assert!(dev.validate().is_ok());
        assert!(dev
            .warnings()
            .iter()
            .any(|w| w.contains("never use this in production")));

        let empty_path = ReplicationConfig {
            cert_path: Some("".into()),
            ..with_certs
        };
        assert_eq!(fields(&empty_path), ["cert_path"]);
    }

    #[test]
    fn vote_keys_are_required_only_to_run_over_the_network() {
        let key = |seed: u8| crate::security::NodeKey::from_seed([seed; 32]).public_key();
        let mut cluster = ReplicationConfig {
            peers: vec![peer(2, "10.0.0.2:7400"), peer(3, "10.0.0.3:7400")],
            ..plaintext()
        };
        // Loading stays as before: no keys needed.
        assert!(cluster.validate().is_ok());
        let e = cluster.validate_for_network().unwrap_err().to_string();
        assert!(e.contains("node_key_path is required"), "{e}");
        assert!(e.contains("replicad keygen --out PATH"), "{e}");
        assert!(e.contains("peers[0].public_key"), "{e}");
        assert!(e.contains("peers[1].public_key"), "{e}");

        cluster.node_key_path = Some("node.key".into());
        cluster.peers[0].public_key = Some(key(2).to_hex());
        cluster.peers[1].public_key = Some(format!("\n{}", key(3).to_pem()));
        cluster.validate_for_network().unwrap();
        assert_eq!(
            parse_public_key(cluster.peers[1].public_key.as_deref().unwrap()).unwrap(),
            key(3)
        );

        // A single node needs no key.
        assert!(ReplicationConfig::default().validate_for_network().is_ok());
    }

    #[test]
    fn malformed_vote_keys_are_refused_at_load() {
        let cfg = ReplicationConfig {
            node_key_path: Some("".into()),
            peers: vec![PeerConfig {
                public_key: Some("abcd".into()),
                ..peer(2, "a:1")
            }],
            ..plaintext()
        };
        assert_eq!(fields(&cfg), ["node_key_path", "peers[0].public_key"]);
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("64 hex digits"), "{e}");
    }

    #[test]
    fn broken_fields_skip_dependent_checks() {
        let cfg = ReplicationConfig {
            heartbeat_interval_ms: 5000,
            node_id: 0,
            ..ReplicationConfig::default()
        };
        assert_eq!(fields(&cfg), ["node_id", "heartbeat_interval_ms"]);
        let broken: BTreeSet<String> = ["heartbeat_interval_ms", "node_id"]
            .into_iter()
            .map(String::from)
            .collect();
        assert!(problems(&cfg, &broken).is_empty());
    }

    #[test]
    fn warnings_cover_risky_but_legal_settings() {
        let cfg = ReplicationConfig {
            mode: ReplicationMode::Sync,
            heartbeat_interval_ms: 2000,
            election_timeout_min_ms: 3000,
            election_timeout_max_ms: 6000,
            wal_sync_on_commit: false,
            wal_sync_interval_ms: 0,
            compression_algorithm: CompressionAlgorithm::None,
            ..ReplicationConfig::default()
        };
        assert!(cfg.validate().is_ok());
        let warnings = cfg.warnings();
        let expected = [
            "no peers are configured",
            "more than half of election_timeout_min_ms",
            "up to about 12000 ms",
            "never fsynced",
            "has no effect",
        ];
        assert_eq!(warnings.len(), expected.len(), "{warnings:#?}");
        for (warning, needle) in warnings.iter().zip(expected) {
            assert!(warning.contains(needle), "{warning} lacks {needle}");
        }
        let ignored_interval = ReplicationConfig {
            wal_sync_interval_ms: 5,
            ..ReplicationConfig::default()
        };
        assert_eq!(ignored_interval.warnings().len(), 1);
    }

    #[test]
    fn validate_reports_all_problems_in_one_error() {
        let cfg = ReplicationConfig {
            node_id: 0,
            batch_size: 0,
            compression_level: 40,
            ..ReplicationConfig::default()
        };
        match cfg.validate() {
            Err(ConfigError::Invalid { problems }) => assert_eq!(problems.len(), 3),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
}
