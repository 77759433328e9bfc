//! Per-host politeness: at most K requests to one host at once, and a minimum
//! gap between the starts of two requests to it, so many feeds on one host are
//! spread out instead of fired together. Runs on tokio's clock (testable paused).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

#[derive(Debug)]
struct HostSlot {
    permits: Arc<Semaphore>,
    next_start: Instant,
}

/// The gate every fetch passes through.
#[derive(Debug)]
pub struct HostGate {
    per_host: usize,
    gap: Duration,
    hosts: Mutex<HashMap<String, HostSlot>>,
}

/// Held for the duration of one fetch.
#[derive(Debug)]
pub struct Pass {
    _host: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

impl HostGate {
    pub fn new(per_host: usize, gap: Duration) -> Self {
        Self {
            per_host: per_host.max(1),
            gap,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HostSlot>> {
        self.hosts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until a request to `host` (as [`host_of`] gives it) may start,
    /// then also takes one of the `global` permits. No global permit is held
    /// while waiting for the host, so a crowded host never holds up the others.
    pub async fn enter(&self, host: String, global: &Arc<Semaphore>) -> Option<Pass> {
        let permits = {
            let mut hosts = self.lock();
            let slot = hosts.entry(host.clone()).or_insert_with(|| HostSlot {
                permits: Arc::new(Semaphore::new(self.per_host)),
                next_start: Instant::now(),
            });
            slot.permits.clone()
        };
        let host_permit = permits.acquire_owned().await.ok()?;
        loop {
            let start = self.lock().get(&host).map(|s| s.next_start)?;
            // A start already due needs no timer: tokio rounds a deadline up
            // to the next millisecond tick and fires it only when its timer
            // driver next runs, so "sleep until now" cost each poll up to a
            // millisecond and a wake-up (a third of a 2,000-feed re-poll).
            if start > Instant::now() {
                tokio::time::sleep_until(start).await;
            }
            let global_permit = global.clone().acquire_owned().await.ok()?;
            let mut hosts = self.lock();
            let slot = hosts.get_mut(&host)?;
            let now = Instant::now();
            if slot.next_start <= now {
                slot.next_start = now + self.gap;
                return Some(Pass {
                    _host: host_permit,
                    _global: global_permit,
                });
            }
            // Another request to this host started meanwhile; wait again.
        }
    }
}

/// The host a URL's requests go to (lower-case; no port, since ports on one
/// host are usually one machine).
pub fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_else(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[tokio::test(start_paused = true)]
    async fn a_request_free_to_start_passes_without_waiting_for_a_timer() {
        // Between two ticks of the timer wheel (1 ms): a timer for "now"
        // would be rounded up to the next tick and fire only when the timer
        // driver next runs (up to a millisecond later, and a wake-up).
        tokio::time::advance(Duration::from_micros(500)).await;
        let gate = HostGate::new(2, Duration::ZERO);
        let global = Arc::new(Semaphore::new(2));
        // Due at once: the pass is ready on the first poll.
        let first = gate
            .enter(host_of("http://host.example/a"), &global)
            .now_or_never();
        assert!(matches!(first, Some(Some(_))));
        let second = gate
            .enter(host_of("http://host.example/b"), &global)
            .now_or_never();
        assert!(matches!(second, Some(Some(_))));
        // Both host permits are held: a third request waits.
        assert!(
            gate.enter(host_of("http://host.example/c"), &global)
                .now_or_never()
                .is_none()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn requests_to_one_host_are_spaced_and_others_are_not_held_up() {
        let gate = Arc::new(HostGate::new(1, Duration::from_secs(2)));
        let global = Arc::new(Semaphore::new(10));
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..5 {
            let (gate, global) = (gate.clone(), global.clone());
            let url = if i < 4 {
                format!("http://busy.example/{i}")
            } else {
                "http://quiet.example/".to_string()
            };
            tasks.spawn(async move {
                let _pass = gate.enter(host_of(&url), &global).await;
                let began = Instant::now() - start;
                tokio::time::sleep(Duration::from_millis(100)).await;
                (url, began)
            });
        }
        let mut busy = Vec::new();
        let mut quiet = None;
        while let Some(Ok((url, began))) = tasks.join_next().await {
            if url.contains("busy") {
                busy.push(began);
            } else {
                quiet = Some(began);
            }
        }
        busy.sort();
        let gaps: Vec<Duration> = busy.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().all(|g| *g >= Duration::from_secs(2)),
            "{busy:?}"
        );
        assert_eq!(quiet, Some(Duration::ZERO));
    }
}
