//! Time: where it comes from (an injected [`Clock`], so expiry of codes, tokens and keys is
//! tested without sleeping) and how it is written for people and for JSON.

use std::sync::atomic::{AtomicI64, Ordering};

/// Where time comes from, so expiry is tested without sleeping.
pub trait Clock: Send + Sync + 'static {
    /// Unix seconds, UTC.
    fn now(&self) -> i64;
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }
}

/// A clock tests move by hand: real time plus an offset.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset: AtomicI64,
}

impl OffsetClock {
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> i64 {
        SystemClock.now() + self.offset.load(Ordering::SeqCst)
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
