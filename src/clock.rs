//! Time: where it comes from (an injected [`Clock`], so expiry of codes, tokens and keys is
//! tested without sleeping) and how it is written for people and for JSON.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where time comes from, so expiry is tested without sleeping.
pub trait Clock: Send + Sync + 'static {
    /// Unix seconds, UTC.
    fn now(&self) -> i64;

    /// A monotonic reading with sub-second precision (time since the process started), for
    /// what counts short intervals: the rate limits.
    fn elapsed(&self) -> Duration;
}

/// The process's start, the origin of [`Clock::elapsed`].
fn process_start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    fn elapsed(&self) -> Duration {
        process_start().elapsed()
    }
}

/// A clock tests move by hand: real time plus an offset, or, once frozen, only the offset
/// moves it, so a test decides exactly how much time passes between two requests.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset: AtomicI64,
    /// Since [`OffsetClock::freeze`]: the real time (Unix seconds) and the monotonic reading
    /// (nanoseconds) it stopped at.
    frozen: Mutex<Option<(i64, Duration)>>,
}

impl OffsetClock {
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }

    /// Stops real time for this clock: from now on it moves only by [`OffsetClock::advance`].
    pub fn freeze(&self) {
        let mut frozen = self.frozen.lock().unwrap_or_else(|e| e.into_inner());
        frozen.get_or_insert((SystemClock.now(), SystemClock.elapsed()));
    }

    fn real(&self) -> (i64, Duration) {
        let frozen = *self.frozen.lock().unwrap_or_else(|e| e.into_inner());
        frozen.unwrap_or_else(|| (SystemClock.now(), SystemClock.elapsed()))
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> i64 {
        self.real().0 + self.offset.load(Ordering::SeqCst)
    }

    fn elapsed(&self) -> Duration {
        let offset = self.offset.load(Ordering::SeqCst).max(0) as u64;
        self.real().1 + Duration::from_secs(offset)
    }
}

/// A Unix time as people read it, in UTC: "3 March 2025, 14:05 UTC".
pub fn readable_utc(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{} {} {}, {:02}:{:02} UTC",
            t.day(),
            t.month(),
            t.year(),
            t.hour(),
            t.minute()
        ),
        Err(_) => secs.to_string(),
    }
}

/// A Unix time as RFC 3339 in UTC, for `<time datetime>` and the JSON export.
pub fn rfc3339_utc(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => secs.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(readable_utc(1_741_010_700), "3 March 2025, 14:05 UTC");
        assert_eq!(rfc3339_utc(1_741_010_700), "2025-03-03T14:05:00Z");
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
    }
}
