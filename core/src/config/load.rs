//! Loading a [`ReplicationConfig`] from TOML while collecting every problem.
//!
//! serde's derived `Deserialize` stops at the first error and cannot say "did you mean". So the
//! document is first parsed into toml's span-carrying tree, then each key is deserialised on its
//! own into the matching field of a default config. A failure is recorded as a problem for that
//! field (whose default is kept so loading can continue), unknown keys are recorded with a
//! suggestion, and finally the semantic checks run, skipping any check that involves a field
//! that failed to load (its default value would produce a misleading complaint).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde::de::{DeserializeOwned, IntoDeserializer};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::{validate, ConfigError, ConfigProblem, PeerConfig, ReplicationConfig};

/// Every top-level key, in documentation order. Kept in sync with the struct by a unit test.
pub(super) const TOP_LEVEL_KEYS: &[&str] = &[
    "node_id",
    "listen_address",
    "mode",
    "min_sync_replicas",
    "heartbeat_interval_ms",
    "election_timeout_min_ms",
    "election_timeout_max_ms",
    "replication_timeout_ms",
    "batch_size",
    "batch_timeout_ms",
    "lag_alert_threshold_entries",
    "lag_alert_threshold_ms",
    "wal_directory",
    "wal_segment_size_bytes",
    "wal_retention_segments",
    "wal_sync_on_commit",
    "wal_sync_interval_ms",
    "wal_recovery_mode",
    "wal_zero_fill_ahead",
    "enable_wal_compression",
    "compression_algorithm",
    "compression_level",
    "compression_min_batch_bytes",
    "cert_path",
    "key_path",
    "ca_path",
    "require_mtls",
    "allow_plaintext_dev",
    "node_key_path",
    "peers",
];

/// Keys of one `[[peers]]` table.
pub(super) const PEER_KEYS: &[&str] = &["node_id", "address", "public_key"];

// What a field accepts, phrased for the "expected X, found Y" message.
const U64: &str = "a non-negative integer";
const U32: &str = "a non-negative integer no larger than 4294967295";
const I32: &str = "an integer";
const BOOL: &str = "true or false";
const STRING: &str = "a string";
const PATH: &str = "a path (a string)";
const MODE: &str = r#"one of "SYNC", "SEMI_SYNC", "ASYNC""#;
const ALGORITHM: &str = r#"one of "zstd", "none""#;
const RECOVERY: &str = r#"one of "tolerate_torn_tail", "absolute_consistency""#;

pub(super) fn from_toml_str(text: &str) -> Result<ReplicationConfig, ConfigError> {
    let document = DeTable::parse(text).map_err(|e| parse_error(text, &e))?;
    let mut loader = Loader {
        text,
        problems: Vec::new(),
        broken: BTreeSet::new(),
        lines: BTreeMap::new(),
    };
    let mut cfg = ReplicationConfig::default();
    let mut has_node_id = false;

    for (key, value) in document.into_inner() {
        let line = loader.line_at(key.span());
        let name: &str = key.get_ref();
        loader.lines.insert(name.to_owned(), line);
        let l = &mut loader;
        match name {
            "node_id" => {
                has_node_id = true;
                l.set(name, value, &mut cfg.node_id, U64);
            }
            "listen_address" => l.set(name, value, &mut cfg.listen_address, STRING),
            "mode" => l.set(name, value, &mut cfg.mode, MODE),
            "min_sync_replicas" => l.set(name, value, &mut cfg.min_sync_replicas, U32),
            "heartbeat_interval_ms" => l.set(name, value, &mut cfg.heartbeat_interval_ms, U64),
            "election_timeout_min_ms" => l.set(name, value, &mut cfg.election_timeout_min_ms, U64),
            "election_timeout_max_ms" => l.set(name, value, &mut cfg.election_timeout_max_ms, U64),
            "replication_timeout_ms" => l.set(name, value, &mut cfg.replication_timeout_ms, U64),
            "batch_size" => l.set(name, value, &mut cfg.batch_size, U64),
            "batch_timeout_ms" => l.set(name, value, &mut cfg.batch_timeout_ms, U64),
            "lag_alert_threshold_entries" => {
                l.set(name, value, &mut cfg.lag_alert_threshold_entries, U64)
            }
            "lag_alert_threshold_ms" => l.set(name, value, &mut cfg.lag_alert_threshold_ms, U64),
            "wal_directory" => l.set(name, value, &mut cfg.wal_directory, PATH),
            "wal_segment_size_bytes" => l.set(name, value, &mut cfg.wal_segment_size_bytes, U64),
            "wal_retention_segments" => l.set(name, value, &mut cfg.wal_retention_segments, U64),
            "wal_sync_on_commit" => l.set(name, value, &mut cfg.wal_sync_on_commit, BOOL),
            "wal_sync_interval_ms" => l.set(name, value, &mut cfg.wal_sync_interval_ms, U64),
            "wal_recovery_mode" => l.set(name, value, &mut cfg.wal_recovery_mode, RECOVERY),
            "wal_zero_fill_ahead" => l.set(name, value, &mut cfg.wal_zero_fill_ahead, BOOL),
            "enable_wal_compression" => l.set(name, value, &mut cfg.enable_wal_compression, BOOL),
            "compression_algorithm" => {
                l.set(name, value, &mut cfg.compression_algorithm, ALGORITHM)
            }
            "compression_level" => l.set(name, value, &mut cfg.compression_level, I32),
            "compression_min_batch_bytes" => {
                l.set(name, value, &mut cfg.compression_min_batch_bytes, U64)
            }
            "cert_path" => l.set(name, value, &mut cfg.cert_path, PATH),
            "key_path" => l.set(name, value, &mut cfg.key_path, PATH),
            "ca_path" => l.set(name, value, &mut cfg.ca_path, PATH),
            "require_mtls" => l.set(name, value, &mut cfg.require_mtls, BOOL),
            "allow_plaintext_dev" => l.set(name, value, &mut cfg.allow_plaintext_dev, BOOL),
            "node_key_path" => l.set(name, value, &mut cfg.node_key_path, PATH),
            "peers" => cfg.peers = l.peers(value),
            _ => l.unknown(name, name, line, TOP_LEVEL_KEYS, ""),
        }
    }

    if !has_node_id {
        loader.fail(
            "node_id",
            None,
            "node_id is required; set it to this node's cluster-unique id (a positive integer)",
        );
    }

    let mut problems = loader.problems;
    problems.extend(validate::problems(&cfg, &loader.broken));
    for problem in &mut problems {
        if problem.line.is_none() {
            problem.line = loader.lines.get(&problem.field).copied();
        }
    }
    // Document order reads best; problems without a line (missing keys) go last. The sort is
    // stable, so problems on the same line keep the order they were found in.
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));

    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(ConfigError::Invalid { problems })
    }
}

struct Loader<'t> {
    text: &'t str,
    problems: Vec<ConfigProblem>,
    /// Fields whose value could not be loaded; semantic checks involving them are skipped.
    broken: BTreeSet<String>,
    /// Line of every key found, by field path, to locate semantic problems.
    lines: BTreeMap<String, usize>,
}

impl Loader<'_> {
    /// Deserialises `value` into `slot`, or records a problem and leaves the default in place.
    fn set<T: DeserializeOwned>(
        &mut self,
        field: &str,
        value: Spanned<DeValue<'_>>,
        slot: &mut T,
        expected: &str,
    ) {
        let line = self.line_at(value.span());
        let found = describe(value.get_ref());
        let hint = case_hint(value.get_ref(), expected);
        match T::deserialize(value.into_deserializer()) {
            Ok(parsed) => *slot = parsed,
            Err(_) => self.fail(
                field,
                Some(line),
                format!("expected {expected}, found {found}{hint}"),
            ),
        }
    }

    /// Loads the `[[peers]]` array. Entries that fail to load are kept (with default values and
    /// their fields marked broken) so that `peers[i]` in later messages still means the i-th
    /// entry of the document.
    fn peers(&mut self, value: Spanned<DeValue<'_>>) -> Vec<PeerConfig> {
        let line = self.line_at(value.span());
        let items = match value.into_inner() {
            DeValue::Array(items) => items,
            other => {
                self.fail(
                    "peers",
                    Some(line),
                    format!(
                        "expected an array of tables (one [[peers]] section per peer), found {}",
                        describe(&other)
                    ),
                );
                return Vec::new();
            }
        };
        let mut peers = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let prefix = format!("peers[{i}]");
            let line = self.line_at(item.span());
            self.lines.insert(prefix.clone(), line);
            let mut peer = PeerConfig {
                node_id: 0,
                address: String::new(),
                public_key: None,
            };
            let table = match item.into_inner() {
                DeValue::Table(table) => table,
                other => {
                    self.fail(
                        &prefix,
                        Some(line),
                        format!(
                            "expected a table with node_id and address, found {}",
                            describe(&other)
                        ),
                    );
                    for key in PEER_KEYS {
                        self.broken.insert(format!("{prefix}.{key}"));
                    }
                    peers.push(peer);
                    continue;
                }
            };
            let (mut has_id, mut has_address) = (false, false);
            for (key, value) in table {
                let key_line = self.line_at(key.span());
                let name: &str = key.get_ref();
                let field = format!("{prefix}.{name}");
                self.lines.insert(field.clone(), key_line);
                match name {
                    "node_id" => {
                        has_id = true;
                        self.set(&field, value, &mut peer.node_id, U64);
                    }
                    "address" => {
                        has_address = true;
                        self.set(&field, value, &mut peer.address, STRING);
                    }
                    "public_key" => self.set(&field, value, &mut peer.public_key, STRING),
                    _ => {
                        // A top-level key written after a [[peers]] header lands in that
                        // peer's table: TOML's most common surprise, worth explaining.
                        let hint = if TOP_LEVEL_KEYS.contains(&name) {
                            format!(
                                "; `{name}` is a top-level setting: move it above the first \
                                 [[peers]] section (keys after a [[peers]] header belong to \
                                 that peer)"
                            )
                        } else {
                            String::new()
                        };
                        self.unknown(&field, name, key_line, PEER_KEYS, &hint);
                    }
                }
            }
            if !has_id {
                self.fail(
                    &format!("{prefix}.node_id"),
                    Some(line),
                    "node_id is required for every peer",
                );
            }
            if !has_address {
                self.fail(
                    &format!("{prefix}.address"),
                    Some(line),
                    "address is required for every peer, as host:port",
                );
            }
            peers.push(peer);
        }
        peers
    }

    fn unknown(&mut self, field: &str, key: &str, line: usize, known: &[&str], hint: &str) {
        let message = match closest(key, known) {
            Some(suggestion) if hint.is_empty() => {
                format!("unknown key `{key}` — did you mean `{suggestion}`?")
            }
            _ if !hint.is_empty() => format!("unknown key `{key}`{hint}"),
            _ => format!(
                "unknown key `{key}`; remove it (known keys: {})",
                known.join(", ")
            ),
        };
        self.problems.push(ConfigProblem {
            field: field.to_owned(),
            message,
            line: Some(line),
        });
    }

    fn fail(&mut self, field: &str, line: Option<usize>, message: impl Into<String>) {
        self.broken.insert(field.to_owned());
        self.problems.push(ConfigProblem {
            field: field.to_owned(),
            message: message.into(),
            line,
        });
    }

    fn line_at(&self, span: Range<usize>) -> usize {
        line_and_column(self.text, span.start).0
    }
}

/// 1-based line and column (in characters) of byte offset `at`; out-of-range offsets clamp.
fn line_and_column(text: &str, at: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..at.min(text.len())];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = 1 + String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count();
    (line, column)
}

fn parse_error(text: &str, error: &toml::de::Error) -> ConfigError {
    let (line, column) = match error.span() {
        Some(span) => {
            let (line, column) = line_and_column(text, span.start);
            (Some(line), Some(column))
        }
        None => (None, None),
    };
    ConfigError::Parse {
        line,
        column,
        message: error.message().to_owned(),
    }
}

/// "string \"abc\"", "integer -5", "a table": what the user actually wrote.
fn describe(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => {
            const MAX: usize = 40;
            if s.chars().count() > MAX {
                let head: String = s.chars().take(MAX).collect();
                format!("string {head:?}...")
            } else {
                format!("string {s:?}")
            }
        }
        DeValue::Integer(i) => format!("integer {i}"),
        DeValue::Float(f) => format!("float {f}"),
        DeValue::Boolean(b) => format!("boolean {b}"),
        DeValue::Datetime(d) => format!("datetime {d}"),
        DeValue::Array(_) => "an array".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

/// Enum values are case-sensitive; say so when that is the only thing wrong.
fn case_hint(value: &DeValue<'_>, expected: &str) -> &'static str {
    match value {
        DeValue::String(s)
            if expected
                .to_lowercase()
                .contains(&format!("\"{}\"", s.to_lowercase())) =>
        {
            " (values are case-sensitive)"
        }
        _ => "",
    }
}

/// The known key most like `key`, if one is close enough to be a plausible typo or a
/// truncation (`heartbeat_interval` for `heartbeat_interval_ms`).
fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    // Edit distance is quadratic; a long key is not a typo of a short one anyway.
    if key.is_empty() || key.len() > 64 {
        return None;
    }
    let key_lower = key.to_lowercase();
    known
        .iter()
        .filter_map(|&candidate| {
            let distance = levenshtein(&key_lower, candidate);
            let shorter = key_lower.chars().count().min(candidate.len());
            let close = distance <= (shorter / 3).max(2);
            let truncated = key_lower.len() >= 4 && candidate.starts_with(key_lower.as_str());
            // A truncation (`node` for `node_id`) beats a one-letter typo of another key
            // (`mode`): dropping a suffix is the more common mistake.
            (close || truncated).then_some((!truncated, distance, candidate))
        })
        .min_by_key(|&(not_truncated, distance, _)| (not_truncated, distance))
        .map(|(_, _, candidate)| candidate)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ReplicationMode;
    use proptest::prelude::*;

    fn problems(text: &str) -> Vec<ConfigProblem> {
        match ReplicationConfig::from_toml_str(text) {
            Err(ConfigError::Invalid { problems }) => problems,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn summary(problems: &[ConfigProblem]) -> Vec<(&str, Option<usize>)> {
        problems
            .iter()
            .map(|p| (p.field.as_str(), p.line))
            .collect()
    }

    #[test]
    fn every_problem_in_a_file_is_reported_at_once() {
        let text = r#"node_id = 0
mode = "SYNC"
min_sync_replicas = 0
heartbeat_interval = 1000
heartbeat_interval_ms = 5000
compression_level = 99
batch_size = "lots"

[[peers]]
node_id = 2
address = "10.0.0.2"

[[peers]]
node_id = 2
address = "10.0.0.3:7400"
colour = "blue"
"#;
        let found = problems(text);
        assert_eq!(
            summary(&found),
            vec![
                ("node_id", Some(1)),
                ("min_sync_replicas", Some(3)),
                ("heartbeat_interval", Some(4)),
                ("heartbeat_interval_ms", Some(5)),
                ("compression_level", Some(6)),
                ("batch_size", Some(7)),
                ("peers[0].address", Some(11)),
                ("peers[1].node_id", Some(14)),
                ("peers[1].colour", Some(16)),
                ("cert_path", None),
                ("key_path", None),
                ("ca_path", None),
            ],
            "{found:#?}"
        );
        let message = |field: &str| {
            found
                .iter()
                .find(|p| p.field == field)
                .map(|p| p.message.as_str())
                .unwrap()
        };
        assert!(message("node_id").contains("must not be 0"));
        assert_eq!(
            message("min_sync_replicas"),
            "min_sync_replicas = 0 is not allowed in SYNC mode; set it to at least 1"
        );
        assert_eq!(
            message("heartbeat_interval"),
            "unknown key `heartbeat_interval` — did you mean `heartbeat_interval_ms`?"
        );
        assert!(message("heartbeat_interval_ms").contains("must be smaller than"));
        assert!(message("compression_level").contains("1..=22"));
        assert_eq!(
            message("batch_size"),
            r#"expected a non-negative integer, found string "lots""#
        );
        assert!(message("peers[0].address").contains("host:port"));
        assert!(message("peers[1].node_id").contains("already used by peers[0]"));
        assert!(message("peers[1].colour").starts_with("unknown key `colour`"));
        assert!(message("cert_path").contains("require_mtls"));

        // Display lists every problem, one per line, after a header.
        let err = ReplicationConfig::from_toml_str(text).unwrap_err();
        let rendered = err.to_string();
        let lines: Vec<&str> = rendered.lines().collect();
        assert_eq!(lines.len(), 1 + found.len(), "{rendered}");
        assert_eq!(lines[0], "replication config has 12 problems:");
        assert_eq!(
            lines[3].trim(),
            "heartbeat_interval (line 4): unknown key `heartbeat_interval` — did you mean \
             `heartbeat_interval_ms`?"
        );
    }

    #[test]
    fn sync_with_zero_min_sync_replicas_is_rejected() {
        let found = problems("node_id = 1\nmode = \"SYNC\"\nmin_sync_replicas = 0\n");
        assert_eq!(
            found,
            vec![ConfigProblem {
                field: "min_sync_replicas".into(),
                message: "min_sync_replicas = 0 is not allowed in SYNC mode; set it to at least 1"
                    .into(),
                line: Some(3),
            }]
        );
    }

    #[test]
    fn unknown_keys_are_all_reported_with_suggestions() {
        let found = problems(
            "node_id = 1\nnode = 2\nelection_timeout_max = 4000\nbatchsize = 5\nzzz = 1\n",
        );
        let messages: Vec<&str> = found.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(messages.len(), 4, "{messages:#?}");
        assert_eq!(messages[0], "unknown key `node` — did you mean `node_id`?");
        assert_eq!(
            messages[1],
            "unknown key `election_timeout_max` — did you mean `election_timeout_max_ms`?"
        );
        assert_eq!(
            messages[2],
            "unknown key `batchsize` — did you mean `batch_size`?"
        );
        assert!(
            messages[3].starts_with("unknown key `zzz`; remove it (known keys: node_id, "),
            "{}",
            messages[3]
        );
    }

    #[test]
    fn top_level_key_inside_a_peer_table_is_explained() {
        let found = problems(
            "node_id = 1\nallow_plaintext_dev = true\n[[peers]]\nnode_id = 2\naddress = \"h:1\"\nmode = \"SYNC\"\n",
        );
        assert_eq!(summary(&found), vec![("peers[0].mode", Some(6))]);
        assert!(found[0]
            .message
            .contains("move it above the first [[peers]]"));
    }

    #[test]
    fn missing_node_id_is_required() {
        let found = problems("mode = \"ASYNC\"\n");
        assert_eq!(summary(&found), vec![("node_id", None)]);
        assert!(found[0].message.contains("required"));
    }

    #[test]
    fn type_errors_name_the_field_and_suppress_dependent_checks() {
        // With heartbeat_interval_ms unreadable, its default must not be compared with the
        // (small) election timeout and reported as a second, misleading problem.
        let found = problems(
            "node_id = 1\nheartbeat_interval_ms = true\nelection_timeout_min_ms = 800\n\
             election_timeout_max_ms = 900\nmode = \"sync\"\n",
        );
        assert_eq!(
            summary(&found),
            vec![("heartbeat_interval_ms", Some(2)), ("mode", Some(5))]
        );
        assert_eq!(
            found[0].message,
            "expected a non-negative integer, found boolean true"
        );
        assert_eq!(
            found[1].message,
            r#"expected one of "SYNC", "SEMI_SYNC", "ASYNC", found string "sync" (values are case-sensitive)"#
        );
    }

    #[test]
    fn negative_and_oversized_integers_are_type_problems() {
        let found = problems(
            "node_id = -1\nmin_sync_replicas = 5000000000\ncompression_algorithm = \"lz4\"\n",
        );
        assert_eq!(
            summary(&found),
            vec![
                ("node_id", Some(1)),
                ("min_sync_replicas", Some(2)),
                ("compression_algorithm", Some(3)),
            ]
        );
        assert_eq!(
            found[0].message,
            "expected a non-negative integer, found integer -1"
        );
        assert!(found[1].message.contains("4294967295"));
        assert_eq!(
            found[2].message,
            r#"expected one of "zstd", "none", found string "lz4""#
        );
    }

    #[test]
    fn malformed_peers_keep_their_index() {
        let found = problems(
            "node_id = 1\nallow_plaintext_dev = true\npeers = [ 5, { address = \"a:1\" }, { node_id = 3 } ]\n",
        );
        assert_eq!(
            summary(&found),
            vec![
                ("peers[0]", Some(3)),
                ("peers[1].node_id", Some(3)),
                ("peers[2].address", Some(3)),
            ],
            "{found:#?}"
        );
        let found = problems("node_id = 1\n[peers]\nnode_id = 2\n");
        assert_eq!(summary(&found), vec![("peers", Some(2))]);
    }

    #[test]
    fn syntax_errors_are_parse_errors_with_position() {
        let err = ReplicationConfig::from_toml_str("node_id = 1\nmode = \n").unwrap_err();
        match &err {
            ConfigError::Parse { line, .. } => assert_eq!(*line, Some(2)),
            other => panic!("expected Parse, got {other:?}"),
        }
        assert!(err.to_string().contains("line 2"), "{err}");

        let err = ReplicationConfig::from_toml_str("node_id = 1\nnode_id = 2\n").unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err:?}");

        let err = ReplicationConfig::from_toml_str("\u{0}\u{ff}[[[ garbage").unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err:?}");
    }

    #[test]
    fn line_and_column_count_characters() {
        assert_eq!(line_and_column("ab\ncdé f", 8), (2, 5));
        assert_eq!(line_and_column("ab", 99), (1, 3));
        assert_eq!(line_and_column("", 0), (1, 1));
    }

    #[test]
    fn suggestions_only_for_near_keys() {
        assert_eq!(
            closest("heartbeat_interval", TOP_LEVEL_KEYS),
            Some("heartbeat_interval_ms")
        );
        assert_eq!(closest("Node_ID", TOP_LEVEL_KEYS), Some("node_id"));
        assert_eq!(closest("wal_dir", TOP_LEVEL_KEYS), Some("wal_directory"));
        assert_eq!(closest("adress", PEER_KEYS), Some("address"));
        assert_eq!(closest("colour", PEER_KEYS), None);
        assert_eq!(closest("", TOP_LEVEL_KEYS), None);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }

    #[test]
    fn valid_document_loads() {
        let text = r#"
node_id = 1
mode = "SEMI_SYNC"
min_sync_replicas = 1
cert_path = "/etc/repl/node1.pem"
key_path = "/etc/repl/node1.key"
ca_path = "/etc/repl/ca.pem"

[[peers]]
node_id = 2
address = "10.0.0.2:7400"

[[peers]]
node_id = 3
address = "[fd00::3]:7400"
"#;
        let cfg = ReplicationConfig::from_toml_str(text).unwrap();
        assert_eq!(cfg.mode, ReplicationMode::SemiSync);
        assert_eq!(cfg.peers.len(), 2);
        assert_eq!(cfg.peers[1].address, "[fd00::3]:7400");
        let derived: ReplicationConfig = toml::from_str(text).unwrap();
        assert_eq!(derived, cfg);
    }

    /// Documents built from real keys and a mix of good and bad values reach the deep paths
    /// (type errors, semantic checks) far more often than random text does.
    fn arb_document() -> impl Strategy<Value = String> {
        let keys: Vec<&'static str> = TOP_LEVEL_KEYS
            .iter()
            .copied()
            .chain(["heartbeat", "node", "x"])
            .collect();
        let values = prop::sample::select(vec![
            "0",
            "1",
            "2",
            "-3",
            "3000",
            "9223372036854775807",
            "0xff",
            "1.5",
            "true",
            "false",
            "\"SYNC\"",
            "\"SEMI_SYNC\"",
            "\"ASYNC\"",
            "\"zstd\"",
            "\"none\"",
            "\"absolute_consistency\"",
            "\"127.0.0.1:7400\"",
            "\"host\"",
            "\"\"",
            "[]",
            "[1, 2]",
            "{ node_id = 2, address = \"h:1\" }",
            "[{ node_id = 2, address = \"h:1\" }, { node_id = 2 }]",
            "1979-05-27T07:32:00Z",
        ]);
        let line = (prop::sample::select(keys), values).prop_map(|(k, v)| format!("{k} = {v}"));
        let peer = (
            0u64..4,
            prop::sample::select(vec!["a:1", "b:2", "c", "[::1]:9", ":1"]),
        )
            .prop_map(|(id, addr)| format!("[[peers]]\nnode_id = {id}\naddress = \"{addr}\""));
        (
            prop::collection::vec(line, 0..8),
            prop::collection::vec(peer, 0..3),
        )
            .prop_map(|(lines, peers)| {
                let mut text = lines.join("\n");
                text.push('\n');
                text.push_str(&peers.join("\n"));
                text
            })
    }

    fn check_outcome(text: &str) -> Result<(), TestCaseError> {
        match ReplicationConfig::from_toml_str(text) {
            Ok(cfg) => {
                // Whatever loads is valid and survives a round trip.
                prop_assert!(cfg.validate().is_ok());
                if let Ok(written) = cfg.to_toml_string() {
                    prop_assert_eq!(ReplicationConfig::from_toml_str(&written).unwrap(), cfg);
                }
            }
            Err(ConfigError::Invalid { problems }) => {
                prop_assert!(!problems.is_empty());
                prop_assert!(problems
                    .iter()
                    .all(|p| !p.field.is_empty() && !p.message.is_empty()));
            }
            Err(ConfigError::Parse { message, .. }) => prop_assert!(!message.is_empty()),
            Err(other) => prop_assert!(false, "unexpected error {:?}", other),
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in ".*") {
            check_outcome(&text)?;
        }

        #[test]
        fn never_panics_on_toml_like_text(text in "([a-z_\\[\\]]{0,24} ?= ?[-0-9a-z\"\\[\\]{}., ]{0,16}\n){0,6}") {
            check_outcome(&text)?;
        }

        #[test]
        fn documents_of_known_keys_load_or_explain(text in arb_document()) {
            check_outcome(&text)?;
        }
    }
}
