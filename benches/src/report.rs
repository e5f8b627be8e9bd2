//! Output of the macro benchmarks: one JSON object per line on stdout, one line per metric.

use std::io::Write;

use serde_json::Value;

/// One measured figure. `value` is the median of `samples` (one per repetition).
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub scenario: &'static str,
    pub metric: String,
    pub value: f64,
    pub unit: &'static str,
    pub samples: Vec<f64>,
}

impl Metric {
    /// A metric from the per-repetition samples; the value is their median.
    pub fn from_samples(
        scenario: &'static str,
        metric: impl Into<String>,
        unit: &'static str,
        samples: Vec<f64>,
    ) -> Metric {
        Metric {
            scenario,
            metric: metric.into(),
            value: median(&samples),
            unit,
            samples,
        }
    }

    /// The JSON line: `{"scenario", "metric", "value", "unit"}` plus `samples`, the value of
    /// each repetition, so a reader can judge the spread.
    pub fn to_json_line(&self) -> String {
        // Built by hand to keep the fields in this order (serde_json's map sorts keys).
        let num = |x: f64| Value::from(round_sig(x)).to_string();
        let samples: Vec<String> = self.samples.iter().map(|&x| num(x)).collect();
        format!(
            "{{\"scenario\":{},\"metric\":{},\"value\":{},\"unit\":{},\"samples\":[{}]}}",
            Value::from(self.scenario),
            Value::from(self.metric.as_str()),
            num(self.value),
            Value::from(self.unit),
            samples.join(",")
        )
    }
}

/// Writes metrics to stdout as they are produced, so a long run that fails later still leaves
/// the figures it measured.
pub struct Reporter<W: Write> {
    out: W,
}

impl<W: Write> Reporter<W> {
    pub fn new(out: W) -> Self {
        Reporter { out }
    }

    pub fn emit(&mut self, m: &Metric) -> std::io::Result<()> {
        writeln!(self.out, "{}", m.to_json_line())?;
        self.out.flush()
    }
}

/// Median; the mean of the two middle values for an even count. NaN for no samples.
pub fn median(samples: &[f64]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Four significant digits: more would be noise on a shared 2-core machine.
fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = 4 - 1 - x.abs().log10().floor() as i32;
    if digits >= 0 {
        let f = 10f64.powi(digits);
        (x * f).round() / f
    } else {
        let f = 10f64.powi(-digits);
        (x / f).round() * f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn json_line_has_the_four_fields() {
        let m = Metric::from_samples("clock", "hlc_now", "ns/op", vec![21.456, 20.0, 25.0]);
        let v: serde_json::Value = serde_json::from_str(&m.to_json_line()).unwrap();
        assert_eq!(v["scenario"], "clock");
        assert_eq!(v["metric"], "hlc_now");
        assert_eq!(v["value"], 21.46);
        assert_eq!(v["unit"], "ns/op");
        assert_eq!(v["samples"].as_array().unwrap().len(), 3);
        assert!(!m.to_json_line().contains('\n'));
        assert!(m
            .to_json_line()
            .starts_with("{\"scenario\":\"clock\",\"metric\":"));
    }

    #[test]
    fn rounding_keeps_four_significant_digits() {
        assert_eq!(round_sig(1_234_567.0), 1_235_000.0);
        assert_eq!(round_sig(0.0012345), 0.001235);
        assert_eq!(round_sig(0.0), 0.0);
    }
}
