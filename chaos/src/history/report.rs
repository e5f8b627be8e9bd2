//! The report of a chaos run: one entry per check, rendered as text whose last line,
//! `violations: N`, is what a script or CI log search looks for.

use std::fmt;

/// How a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No violation.
    Pass,
    /// At least one violation.
    Fail,
    /// No violation found, but the check could not finish (search budget): not a pass.
    Inconclusive,
}

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// A short stable name (`linearizable`, `acknowledged_writes_survive`, ...).
    pub name: String,
    /// How it ended.
    pub verdict: Verdict,
    /// How many violations it found (0 unless `verdict` is `Fail`).
    pub violations: usize,
    /// One line (or an indented block) per violation, or notes on a pass.
    pub details: Vec<String>,
}

impl CheckResult {
    /// A result from its violation count: `Fail` when there are any, else `Inconclusive` when
    /// the check could not finish, else `Pass`.
    pub fn new(
        name: impl Into<String>,
        violations: usize,
        inconclusive: bool,
        details: Vec<String>,
    ) -> Self {
        let verdict = match (violations, inconclusive) {
            (0, false) => Verdict::Pass,
            (0, true) => Verdict::Inconclusive,
            _ => Verdict::Fail,
        };
        CheckResult {
            name: name.into(),
            verdict,
            violations,
            details,
        }
    }

    /// Whether the check passed.
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }
}

/// Every check of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The checks, in the order they were added.
    pub checks: Vec<CheckResult>,
}

impl Report {
    /// An empty report.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a check result.
    pub fn push(&mut self, check: CheckResult) -> &mut Self {
        self.checks.push(check);
        self
    }

    /// The total number of violations over all checks.
    pub fn violations(&self) -> usize {
        self.checks.iter().map(|c| c.violations).sum()
    }

    /// True when every check passed (no violation, nothing inconclusive).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(CheckResult::passed)
    }
}

impl fmt::Display for Report {
    /// ```text
    /// PASS linearizable
    ///   3 keys linearizable
    /// FAIL one_leader_per_term (1)
    ///   term 7: leaders 1, 3
    /// checks: 2, inconclusive: 0
    /// violations: 1
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            match c.verdict {
                Verdict::Pass => writeln!(f, "PASS {}", c.name)?,
                Verdict::Fail => writeln!(f, "FAIL {} ({})", c.name, c.violations)?,
                Verdict::Inconclusive => writeln!(f, "INCONCLUSIVE {}", c.name)?,
            }
            for d in &c.details {
                for line in d.lines() {
                    writeln!(f, "  {line}")?;
                }
            }
        }
        let inconclusive = self
            .checks
            .iter()
            .filter(|c| c.verdict == Verdict::Inconclusive)
            .count();
        writeln!(
            f,
            "checks: {}, inconclusive: {inconclusive}",
            self.checks.len()
        )?;
        write!(f, "violations: {}", self.violations())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_ends_with_the_violation_count() {
        let mut r = Report::new();
        r.push(CheckResult::new("a", 0, false, vec!["fine".into()]))
            .push(CheckResult::new(
                "b",
                2,
                false,
                vec!["x\ny".into(), "z".into()],
            ))
            .push(CheckResult::new("c", 0, true, vec![]));
        let text = r.to_string();
        assert_eq!(
            text,
            "PASS a\n  fine\nFAIL b (2)\n  x\n  y\n  z\nINCONCLUSIVE c\n\
             checks: 3, inconclusive: 1\nviolations: 2"
        );
        assert!(!r.passed());
        assert_eq!(r.violations(), 2);
    }

    #[test]
    fn an_inconclusive_check_is_not_a_pass() {
        let mut r = Report::new();
        r.push(CheckResult::new("a", 0, true, vec![]));
        assert!(!r.passed());
        assert_eq!(r.violations(), 0);
        assert!(Report::new().passed());
    }
}
