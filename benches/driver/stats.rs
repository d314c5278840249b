//! Latency samples and the one-line JSON summary every run prints.

use std::time::Duration;

use serde_json::{Value, json};

/// Latencies of one kind of request, in microseconds.
#[derive(Debug, Default)]
pub struct Samples {
    micros: Vec<u64>,
    pub errors: u64,
}

impl Samples {
    pub fn record(&mut self, d: Duration) {
        self.micros.push(d.as_micros() as u64);
    }

    pub fn merge(&mut self, other: Samples) {
        self.micros.extend(other.micros);
        self.errors += other.errors;
    }

    pub fn ok(&self) -> u64 {
        self.micros.len() as u64
    }

    /// The `q` quantile (0..=1) in milliseconds; nearest rank.
    fn quantile_ms(sorted: &[u64], q: f64) -> f64 {
        if sorted.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1] as f64 / 1000.0
    }

    /// `{ok, errors, per_s, p50_ms, p99_ms, max_ms}` over `elapsed`.
    pub fn summary(&mut self, elapsed: Duration) -> Value {
        self.micros.sort_unstable();
        let s = &self.micros;
        json!({
            "ok": s.len(),
            "errors": self.errors,
            "seconds": round(elapsed.as_secs_f64(), 3),
            "per_s": round(s.len() as f64 / elapsed.as_secs_f64(), 1),
            "p50_ms": round(Self::quantile_ms(s, 0.50), 3),
            "p99_ms": round(Self::quantile_ms(s, 0.99), 3),
            "max_ms": round(s.last().map_or(f64::NAN, |m| *m as f64 / 1000.0), 3),
        })
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}
