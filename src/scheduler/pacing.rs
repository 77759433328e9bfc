//! How long to wait before the next poll: adaptive intervals, what the feed and
//! the server ask for, Retry-After, skipHours/skipDays, and moved feeds.

use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};

use super::Policy;
use crate::fetch::{CacheHints, Redirect, RetryAfter};
use crate::model::{FeedHints, MovedTo, ParsedEntry, Skip};
use crate::store::Moved;

/// The window over which the publishing rate is measured.
const RATE_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

impl Policy {
    /// The interval a feed's own document suggests: from its publishing rate
    /// (the average gap between entries dated within the last week, counted
    /// up to now), kept between `min_interval` and
    /// `max_interval`, then lengthened (never shortened) by `<ttl>` and
    /// `sy:updatePeriod`. With `adaptive` off, the configured interval.
    pub fn adaptive_interval(
        &self,
        configured: Duration,
        previous: Option<Duration>,
        entries: &[ParsedEntry],
        hints: &FeedHints,
        now: DateTime<Utc>,
    ) -> Duration {
        let mut interval = if self.adaptive {
            let mut dates: Vec<DateTime<Utc>> = entries
                .iter()
                .filter_map(|e| e.published.or(e.updated))
                .filter(|d| *d <= now)
                .collect();
            // Feeds that stamp the time of the request (or one date) on every
            // item say nothing about how often they publish.
            if let Some(newest) = dates.iter().max().copied()
                && dates.len() >= 3
                && dates.iter().filter(|d| **d == newest).count() * 2 > dates.len()
            {
                dates.clear();
            }
            let recent: Vec<&DateTime<Utc>> = dates
                .iter()
                .filter(|d| (now - **d).to_std().is_ok_and(|age| age <= RATE_WINDOW))
                .collect();
            let estimate = if dates.is_empty() {
                // Nothing to measure: keep what we had.
                previous.unwrap_or(configured)
            } else if let Some(oldest) = recent.iter().min() {
                // The average gap between publications, measured from the
                // oldest recent entry up to now: a document holding only the
                // last 30 of a busy feed's items still reads as busy, and a
                // burst long ago reads as quiet.
                let span = (now - **oldest).to_std().unwrap_or_default();
                span / recent.len() as u32
            } else {
                self.max_interval
            };
            estimate.clamp(self.min_interval, self.max_interval.max(self.min_interval))
        } else {
            configured
        };
        let asked = hints.ttl.max(hints.update_period);
        if let Some(asked) = asked {
            interval = interval.max(asked.min(self.ceiling(configured)));
        }
        interval
    }

    /// The longest any request may push a feed's interval: polling never stops.
    fn ceiling(&self, configured: Duration) -> Duration {
        self.max_interval.max(configured)
    }

    /// Delay before the next poll after a success: the interval, lengthened by
    /// the server's caching headers, jittered.
    pub fn success_delay(
        &self,
        interval: Duration,
        configured: Duration,
        cache: &CacheHints,
        now: DateTime<Utc>,
        rng: &mut impl rand::Rng,
    ) -> Duration {
        let mut base = interval;
        if let Some(wait) = cache.wait(now) {
            base = base.max(wait.min(self.ceiling(configured)));
        }
        self.jittered(base, rng)
    }

    /// Wait asked by a 429/503 `Retry-After`: honoured, but at most
    /// `max_retry_after` and at least `min_interval`.
    pub fn retry_after(&self, retry_after: &RetryAfter, now: DateTime<Utc>) -> Duration {
        retry_after
            .delay_from(now)
            .min(self.max_retry_after)
            .max(self.min_interval.min(self.max_retry_after))
    }

    /// `now + delay`, moved later out of any skipped hour or day (UTC).
    pub fn next_time(&self, now: DateTime<Utc>, delay: Duration, skip: Skip) -> DateTime<Utc> {
        let mut at = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::days(365));
        if skip == Skip::default() {
            return at;
        }
        for _ in 0..24 * 8 {
            let hour_skipped = skip.hours & (1 << at.hour()) != 0;
            let day_skipped = skip.days & (1 << at.weekday().num_days_from_monday()) != 0;
            if !hour_skipped && !day_skipped {
                break;
            }
            // The start of the next hour.
            let next = at + chrono::Duration::hours(1);
            at = next
                .with_minute(0)
                .and_then(|t| t.with_second(0))
                .unwrap_or(next);
        }
        at
    }

    /// What a successful fetch's redirects mean for the feed's address. Only a
    /// chain that starts with permanent redirects names a candidate; it is
    /// adopted once seen `redirect_confirmations` times in a row over at least
    /// `redirect_confirm_period`. A direct answer or a temporary redirect
    /// clears any candidate.
    pub fn track_move(
        &self,
        moved: Option<&MovedTo>,
        redirects: &[Redirect],
        now: DateTime<Utc>,
    ) -> Moved {
        let target = redirects
            .iter()
            .take_while(|r| r.is_permanent())
            .last()
            .map(|r| r.to.clone());
        let Some(url) = target else {
            return if moved.is_some() {
                Moved::Clear
            } else {
                Moved::Keep
            };
        };
        let (seen, since) = match moved {
            Some(m) if m.url == url => (m.seen.saturating_add(1), m.since),
            _ => (1, now),
        };
        let long_enough = (now - since)
            .to_std()
            .is_ok_and(|d| d >= self.redirect_confirm_period);
        if seen >= self.redirect_confirmations && long_enough {
            Moved::Adopt { url }
        } else {
            Moved::Set { url, seen, since }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn policy() -> Policy {
        Policy {
            jitter: 0.0,
            ..Policy::default()
        }
    }

    fn entry(age: chrono::Duration, now: DateTime<Utc>) -> ParsedEntry {
        ParsedEntry {
            published: Some(now - age),
            ..Default::default()
        }
    }

    #[test]
    fn interval_follows_the_publishing_rate_within_bounds() {
        let p = policy();
        let now = Utc::now();
        let cfg = Duration::from_secs(1800);
        let none = FeedHints::default();
        // One every 10 h, newest 10 h ago: 10 h.
        let steady: Vec<_> = (1..30)
            .map(|i| entry(chrono::Duration::hours(10 * i), now))
            .collect();
        assert_eq!(
            p.adaptive_interval(cfg, None, &steady, &none, now),
            Duration::from_secs(10 * 3600)
        );
        // Only the last 30 of a busy feed's items: still busy (floored).
        let last_30: Vec<_> = (0..30)
            .map(|i| entry(chrono::Duration::seconds(i * 20), now))
            .collect();
        assert_eq!(
            p.adaptive_interval(cfg, None, &last_30, &none, now),
            p.min_interval
        );
        // A burst of three two days ago, nothing since: quiet (16 h, capped).
        let burst: Vec<_> = (0..3)
            .map(|i| {
                entry(
                    chrono::Duration::hours(48) + chrono::Duration::minutes(i),
                    now,
                )
            })
            .collect();
        assert_eq!(
            p.adaptive_interval(cfg, None, &burst, &none, now),
            p.max_interval
        );
        // 7 a week → 24 h, capped at max_interval (12 h).
        let slow: Vec<_> = (0..7)
            .map(|i| entry(chrono::Duration::days(i), now))
            .collect();
        assert_eq!(
            p.adaptive_interval(cfg, None, &slow, &none, now),
            p.max_interval
        );
        // 10 000 a week → floored at min_interval.
        let busy: Vec<_> = (0..10_000)
            .map(|i| entry(chrono::Duration::seconds(i * 60), now))
            .collect();
        assert_eq!(
            p.adaptive_interval(cfg, None, &busy, &none, now),
            p.min_interval
        );
        // One every 30 min, newest 30 min ago → 30 min.
        let half_hourly: Vec<_> = (1..300)
            .map(|i| entry(chrono::Duration::minutes(30 * i), now))
            .collect();
        assert_eq!(
            p.adaptive_interval(cfg, None, &half_hourly, &none, now),
            Duration::from_secs(1800)
        );
        // Undated entries: the previous interval stays.
        let undated = vec![ParsedEntry::default()];
        assert_eq!(
            p.adaptive_interval(cfg, Some(Duration::from_secs(999)), &undated, &none, now),
            Duration::from_secs(999)
        );
        // Every item stamped with the same time: no rate to read.
        let stamped: Vec<_> = (0..30)
            .map(|_| entry(chrono::Duration::zero(), now))
            .collect();
        assert_eq!(
            p.adaptive_interval(cfg, Some(Duration::from_secs(999)), &stamped, &none, now),
            Duration::from_secs(999)
        );
        assert_eq!(p.adaptive_interval(cfg, None, &stamped, &none, now), cfg);
        // Old entries only: the longest interval.
        let stale = vec![entry(chrono::Duration::days(60), now)];
        assert_eq!(
            p.adaptive_interval(cfg, None, &stale, &none, now),
            p.max_interval
        );
    }

    #[test]
    fn feed_and_server_hints_only_lengthen() {
        let p = policy();
        let now = Utc::now();
        let cfg = Duration::from_secs(1800);
        let busy: Vec<_> = (0..10_000)
            .map(|i| entry(chrono::Duration::seconds(i * 60), now))
            .collect();
        let ttl = FeedHints {
            ttl: Some(Duration::from_secs(3600)),
            ..Default::default()
        };
        assert_eq!(
            p.adaptive_interval(cfg, None, &busy, &ttl, now),
            Duration::from_secs(3600)
        );
        // A short ttl does not shorten.
        let short = FeedHints {
            ttl: Some(Duration::from_secs(60)),
            update_period: Some(Duration::from_secs(120)),
            ..Default::default()
        };
        let half_hourly: Vec<_> = (1..300)
            .map(|i| entry(chrono::Duration::minutes(30 * i), now))
            .collect();
        assert_eq!(
            p.adaptive_interval(cfg, None, &half_hourly, &short, now),
            Duration::from_secs(1800)
        );
        // A huge one is capped: the feed is still polled.
        let huge = FeedHints {
            update_period: Some(Duration::from_secs(365 * 86400)),
            ..Default::default()
        };
        assert_eq!(
            p.adaptive_interval(cfg, None, &half_hourly, &huge, now),
            p.max_interval
        );
        let mut rng = rand::rng();
        let cache = CacheHints {
            max_age: Some(Duration::from_secs(7200)),
            ..Default::default()
        };
        assert_eq!(
            p.success_delay(cfg, cfg, &cache, now, &mut rng),
            Duration::from_secs(7200)
        );
        let expires = CacheHints {
            expires: Some(now + chrono::Duration::seconds(60)),
            ..Default::default()
        };
        assert_eq!(p.success_delay(cfg, cfg, &expires, now, &mut rng), cfg);
    }

    #[test]
    fn skipped_hours_and_days_push_the_poll_later() {
        let p = policy();
        // A Saturday, 22:30 UTC.
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 22, 30, 0).unwrap();
        let skip = Skip {
            hours: 1 << 23,
            days: 1 << 6, // Sunday
        };
        let at = p.next_time(now, Duration::from_secs(3600), skip);
        assert_eq!(at, Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap());
        let plain = p.next_time(now, Duration::from_secs(60), Skip::default());
        assert_eq!(plain, now + chrono::Duration::seconds(60));
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let p = policy();
        let now = Utc::now();
        assert_eq!(
            p.retry_after(&RetryAfter::Seconds(7200), now),
            Duration::from_secs(7200)
        );
        assert_eq!(
            p.retry_after(&RetryAfter::Seconds(10 * 86400), now),
            p.max_retry_after
        );
        assert_eq!(p.retry_after(&RetryAfter::Seconds(1), now), p.min_interval);
        let at = now + chrono::Duration::seconds(3 * 3600);
        assert_eq!(
            p.retry_after(&RetryAfter::At(at), now),
            Duration::from_secs(3 * 3600)
        );
    }

    #[test]
    fn permanent_redirects_are_adopted_only_when_confirmed_over_a_day() {
        let p = policy();
        let t0 = Utc::now();
        let moved = |s| {
            vec![Redirect {
                status: s,
                to: "http://new.example/feed".into(),
            }]
        };
        let m1 = p.track_move(None, &moved(301), t0);
        let Moved::Set { url, seen, since } = m1 else {
            panic!("{m1:?}")
        };
        assert_eq!((seen, since), (1, t0));
        let mut state = MovedTo { url, seen, since };
        // Seen many times within an hour: not yet.
        for _ in 0..5 {
            match p.track_move(
                Some(&state),
                &moved(308),
                t0 + chrono::Duration::minutes(30),
            ) {
                Moved::Set { seen, .. } => state.seen = seen,
                other => panic!("adopted too early: {other:?}"),
            }
        }
        let later = t0 + chrono::Duration::hours(25);
        assert_eq!(
            p.track_move(Some(&state), &moved(301), later),
            Moved::Adopt {
                url: "http://new.example/feed".into()
            }
        );
        // A temporary redirect never moves the feed, and clears a candidate.
        assert_eq!(p.track_move(None, &moved(302), later), Moved::Keep);
        assert_eq!(p.track_move(Some(&state), &moved(307), later), Moved::Clear);
        // Only twice over two days: not yet (three confirmations needed).
        let twice = MovedTo {
            seen: 1,
            ..state.clone()
        };
        assert!(matches!(
            p.track_move(Some(&twice), &moved(301), later),
            Moved::Set { seen: 2, .. }
        ));
    }
}
