//! Checking client secrets without letting wrong ones buy unbounded work.
//!
//! A confidential client's argon2 hash is checked once per secret, then the SHA-256 digest of
//! the secret it accepted is compared in constant time, so the token endpoint pays no slow hash
//! per request. The slow checks that remain (a first request, a wrong secret) are bounded
//! (hole 2 of the hardening issue): at most [`SLOW_CHECKS`] run at once on the whole server,
//! at most [`MAX_WAITING`] more wait up to [`QUEUE_WAIT`] for a place (so a burst of honest
//! first requests is served, not refused), anything beyond is refused at once, and a client whose secret failed [`FREE_FAILURES`] times in a row waits, doubling up to
//! [`MAX_BACKOFF`], before another wrong secret is hashed. A secret already verified is
//! compared without either bound, so a flood of wrong secrets leaves the right one fast.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Argon2 verifications at once (each takes ~25 ms of one core and 19 MiB).
pub const SLOW_CHECKS: usize = 4;
/// Slow checks that may wait for a place; more are refused at once.
pub const MAX_WAITING: usize = 32;
/// The longest a slow check waits for a place.
pub const QUEUE_WAIT: Duration = Duration::from_secs(2);
/// Verified secrets remembered per client: its current secret and, during a rotation's grace
/// period, the previous one.
pub const PER_CLIENT: usize = 2;
/// Failures in a row a client may have before it must wait.
pub const FREE_FAILURES: u32 = 5;
/// The longest wait after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why a slow check cannot run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// [`SLOW_CHECKS`] are running and [`MAX_WAITING`] are waiting; retry in a moment.
    Busy,
    /// This client failed too often; retry after this long.
    BackOff(Duration),
}

/// The stored hash a secret was verified against, and the digest of that secret.
type Verified = (String, [u8; 32]);

/// Client id -> up to [`PER_CLIENT`] pairs of (the stored hash a secret was verified against,
/// the digest of the accepted secret): during a rotation's grace period a client's old and new
/// deployments both present a secret, and neither evicts the other. A changed stored hash (a
/// new secret) misses, so a rotated secret is verified afresh.
#[derive(Debug)]
pub struct SecretCache {
    verified: RwLock<HashMap<String, Vec<Verified>>>,
    slow: Arc<Semaphore>,
    waiting: Arc<Semaphore>,
    /// Client id -> (failures in a row, no slow check before).
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Default for SecretCache {
    fn default() -> Self {
        Self {
            verified: RwLock::default(),
            slow: Arc::new(Semaphore::new(SLOW_CHECKS)),
            waiting: Arc::new(Semaphore::new(MAX_WAITING)),
            failures: Mutex::default(),
        }
    }
}

impl SecretCache {
    pub fn hit(&self, client_id: &str, stored: &str, presented: &[u8; 32]) -> bool {
        self.verified
            .read()
            .ok()
            .and_then(|m| {
                m.get(client_id).map(|pairs| {
                    pairs
                        .iter()
                        .any(|(s, d)| s == stored && bool::from(d.ct_eq(presented)))
                })
            })
            .unwrap_or(false)
    }

    pub fn remember(&self, client_id: &str, stored: String, presented: [u8; 32]) {
        if let Ok(mut m) = self.verified.write() {
            let pairs = m.entry(client_id.to_string()).or_default();
            pairs.retain(|(s, _)| *s != stored);
            pairs.insert(0, (stored, presented));
            pairs.truncate(PER_CLIENT);
        }
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(client_id);
    }

    /// A place for one slow check of `client_id`'s secret, held while it runs. Waits up to
    /// [`QUEUE_WAIT`] when all places are taken; the caller should look in the cache again
    /// once admitted, since a request it waited behind may have verified the same secret.
    pub async fn admit(&self, client_id: &str) -> Result<OwnedSemaphorePermit, Refused> {
        self.backing_off(client_id, Instant::now())?;
        let permit = match self.slow.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let _queued = self
                    .waiting
                    .clone()
                    .try_acquire_owned()
                    .map_err(|_| Refused::Busy)?;
                tokio::time::timeout(QUEUE_WAIT, self.slow.clone().acquire_owned())
                    .await
                    .map_err(|_| Refused::Busy)?
                    .map_err(|_| Refused::Busy)?
            }
        };
        // Failures may have been counted while this one waited.
        self.backing_off(client_id, Instant::now())?;
        Ok(permit)
    }

    /// `Err(BackOff)` while `client_id` must wait after its failures.
    pub fn backing_off(&self, client_id: &str, now: Instant) -> Result<(), Refused> {
        match self
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(client_id)
        {
            Some((_, until)) if *until > now => Err(Refused::BackOff(*until - now)),
            _ => Ok(()),
        }
    }

    /// Counts a wrong secret: past [`FREE_FAILURES`] in a row, the next slow check waits 1 s,
    /// then 2 s, 4 s … up to [`MAX_BACKOFF`].
    pub fn failed(&self, client_id: &str, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (n, until) = failures.entry(client_id.to_string()).or_insert((0, now));
        *n += 1;
        if *n > FREE_FAILURES {
            let doublings = (*n - FREE_FAILURES - 1).min(5);
            *until = now + Duration::from_secs(1u64 << doublings).min(MAX_BACKOFF);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_clients_old_and_new_secrets_are_both_remembered_and_a_third_evicts_the_oldest() {
        let c = SecretCache::default();
        let (old, new, newer) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        c.remember("app", "hash-old".into(), old);
        c.remember("app", "hash-new".into(), new);
        assert!(c.hit("app", "hash-old", &old));
        assert!(c.hit("app", "hash-new", &new));
        // A digest only matches the stored hash it was verified against.
        assert!(!c.hit("app", "hash-new", &old));
        assert!(!c.hit("other", "hash-new", &new));
        c.remember("app", "hash-newer".into(), newer);
        assert!(!c.hit("app", "hash-old", &old), "only two are kept");
        assert!(c.hit("app", "hash-new", &new));
        assert!(c.hit("app", "hash-newer", &newer));
    }

    #[test]
    fn failures_past_the_free_ones_back_off_doubling_and_a_success_forgets_them() {
        let c = SecretCache::default();
        let t = Instant::now();
        for _ in 0..FREE_FAILURES {
            c.failed("app", t);
        }
        assert!(
            c.backing_off("app", t).is_ok(),
            "the free failures cost nothing"
        );
        c.failed("app", t);
        assert_eq!(
            c.backing_off("app", t),
            Err(Refused::BackOff(Duration::from_secs(1)))
        );
        assert!(
            c.backing_off("other", t).is_ok(),
            "another client is not held back"
        );
        let later = t + Duration::from_secs(1);
        assert!(c.backing_off("app", later).is_ok());
        c.failed("app", later);
        assert_eq!(
            c.backing_off("app", later),
            Err(Refused::BackOff(Duration::from_secs(2)))
        );
        for _ in 0..20 {
            c.failed("app", later);
        }
        assert_eq!(
            c.backing_off("app", later),
            Err(Refused::BackOff(MAX_BACKOFF))
        );
        c.remember("app", "hash".into(), [0; 32]);
        assert!(c.backing_off("app", later).is_ok());
    }

    #[tokio::test]
    async fn so_many_checks_run_so_many_wait_and_the_rest_are_refused_at_once() {
        let c = Arc::new(SecretCache::default());
        let held: Vec<_> = hold(&c, SLOW_CHECKS).await;
        let waiters: Vec<_> = (0..MAX_WAITING)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.admit("app").await.is_ok() })
            })
            .collect();
        // Let every waiter take its place in the queue.
        while c.waiting.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(c.admit("other").await.unwrap_err(), Refused::Busy);
        drop(held);
        for w in waiters {
            assert!(w.await.unwrap(), "a waiter is admitted once places free up");
        }
        assert!(c.admit("other").await.is_ok());
    }

    async fn hold(c: &SecretCache, n: usize) -> Vec<OwnedSemaphorePermit> {
        let mut held = Vec::new();
        for _ in 0..n {
            held.push(c.admit("app").await.unwrap());
        }
        held
    }
}
