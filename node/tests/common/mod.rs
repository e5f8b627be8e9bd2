//! Helpers shared by the multi-process tests (`daemon.rs`, `cluster.rs`): reading samples out
//! of a `/metrics` exposition and checking it with `promtool`.

// Each test crate includes this module and uses part of it.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

/// Pipes the exposition into `promtool check metrics`; `None` when promtool is not installed.
pub fn promtool_check(text: &str) -> Option<(bool, String)> {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), said))
}

/// Asserts that `promtool check metrics` accepts `text` (a note instead when promtool is not
/// installed).
pub fn assert_promtool_accepts(text: &str) {
    match promtool_check(text) {
        Some((ok, said)) => {
            assert!(ok, "promtool check metrics failed:\n{said}\n{text}");
            eprintln!("promtool check metrics: passed");
        }
        None => eprintln!(
            "note: promtool is not installed (Debian package `prometheus`); \
             skipped `promtool check metrics`"
        ),
    }
}

/// The value of the sample of metric `name` that carries every label in `labels`
/// (`key="value"` each; label order in the exposition is not fixed), if there is one.
pub fn try_sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split(['{', ' ']).next() == Some(name) && labels.iter().all(|x| l.contains(x)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// [`try_sample`], panicking with the exposition when there is no such sample.
pub fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    try_sample(text, name, labels)
        .unwrap_or_else(|| panic!("no sample {name} with {labels:?} in:\n{text}"))
}
