//! `repl-bench`: macro benchmarks of the replication engine.
//!
//! `repl-bench list` names the scenarios; `repl-bench SCENARIO [options]` runs one and
//! `repl-bench all` runs every one. Results go to stdout, one JSON object per metric:
//! `{"scenario": ..., "metric": ..., "value": ..., "unit": ..., "samples": [...]}`, where
//! `value` is the median of the `--repeat` runs in `samples`. Progress goes to stderr.

use std::process::ExitCode;

use clap::Parser;
use replication_bench::report::Reporter;
use replication_bench::scenarios::{self, Options, Scenario, SCENARIOS};
use replication_bench::BenchError;

#[derive(Debug, Parser)]
#[command(
    name = "repl-bench",
    about = "Macro benchmarks of the replication engine"
)]
struct Cli {
    /// `list`, `all`, or the name of a scenario (see `list`).
    scenario: String,
    #[command(flatten)]
    opts: Options,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let selected: Vec<&Scenario> = match cli.scenario.as_str() {
        "list" => {
            for s in SCENARIOS {
                println!("{:<18} {}", s.name, s.summary);
            }
            return ExitCode::SUCCESS;
        }
        "all" => SCENARIOS.iter().collect(),
        name => match scenarios::find(name) {
            Some(s) => vec![s],
            None => {
                let names: Vec<_> = SCENARIOS.iter().map(|s| s.name).collect();
                eprintln!(
                    "repl-bench: unknown scenario `{name}`; use `list`, `all` or one of: {}",
                    names.join(", ")
                );
                return ExitCode::from(2);
            }
        },
    };
    if let Err(e) = cli.opts.check() {
        eprintln!("repl-bench: {e}");
        return ExitCode::from(2);
    }
    let mut reporter = Reporter::new(std::io::stdout().lock());
    for s in selected {
        eprintln!("[{}] start; load average {}", s.name, load_average());
        let mut sink = |m| {
            reporter
                .emit(&m)
                .map_err(|e| BenchError::io("stdout".as_ref(), e))
        };
        if let Err(e) = (s.run)(&cli.opts, &mut sink) {
            eprintln!("repl-bench: scenario {} failed: {e}", s.name);
            return ExitCode::FAILURE;
        }
        eprintln!("[{}] done; load average {}", s.name, load_average());
    }
    ExitCode::SUCCESS
}

/// The 1/5/15-minute load averages, to tell how busy the shared machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
