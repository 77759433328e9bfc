//! Where fetched documents are parsed and identified: threads of their own,
//! one per core, at a lower priority than the rest of the process (11 nice
//! levels lower on Linux, at most 19).
//!
//! Parsing, keying, hashing and fingerprinting are CPU work, while the
//! store's writer thread, the one serial stage of ingest, saves what they
//! produce. When they ran on tokio's blocking threads, every fetched document
//! was parsed at once (up to `2 × concurrency` of them): the writer was one
//! runnable thread among dozens and got a share of a core to match, and the
//! parsers then filled the queue in front of it and sat waiting, so on two
//! cores about a fifth of a cold ingest's CPU time went idle. One parser per
//! core keeps the cores busy, and their lower priority lets the writer (and
//! the threads that answer HTTP requests) run first whenever they are ready.
//! `bench/notes.md` (fifth round) has the figures.

use std::cell::Cell;
use std::num::NonZeroUsize;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use tokio::runtime::{Handle, Runtime};

/// The parse threads, shared by every poll of a [`super::Poller`]: a
/// runtime whose worker threads only ever run parse jobs, each to its end, so
/// at most one job per thread at a time.
#[derive(Debug, Clone)]
pub struct ParseThreads {
    jobs: Handle,
    _pool: Arc<Pool>,
    counts: Arc<Counts>,
}

/// Owns the runtime, and shuts it down when the last handle is dropped.
#[derive(Debug)]
struct Pool(Option<Runtime>);

impl Drop for Pool {
    fn drop(&mut self) {
        // Dropping a runtime waits for its threads, which is not allowed on
        // an async thread (where the last poller is often dropped).
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    busy: AtomicUsize,
    most: AtomicUsize,
    entered: AtomicU64,
}

/// How many nice levels lower than the thread that starts them the parse
/// threads run (Linux caps the result at 19). Lowering a thread's priority
/// needs no privilege.
const PARSE_NICE_STEP: i32 = 11;

impl ParseThreads {
    /// `threads` parse threads (at least one).
    pub fn new(threads: usize) -> std::io::Result<Self> {
        install_quiet_hook();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("newsriver-parse")
            .on_thread_start(lower_priority)
            .build()?;
        Ok(Self {
            jobs: runtime.handle().clone(),
            _pool: Arc::new(Pool(Some(runtime))),
            counts: Arc::default(),
        })
    }

    /// One parse thread per core this process may use.
    pub fn per_core() -> std::io::Result<Self> {
        Self::new(std::thread::available_parallelism().map_or(2, NonZeroUsize::get))
    }

    /// Runs `work` on a parse thread once one is free; a panic in `work`
    /// comes back as the error. The caller's runtime counts the wait as a
    /// blocking task of its own (a thread of its blocking pool sleeps on the
    /// result), so a paused test clock does not move on while a document is
    /// parsed, as with `tokio::task::spawn_blocking`.
    pub async fn run<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, Crashed> {
        let counts = self.counts.clone();
        let (done, outcome) = std::sync::mpsc::sync_channel(1);
        let job = async move {
            let busy = counts.busy.fetch_add(1, Ordering::AcqRel) + 1;
            counts.most.fetch_max(busy, Ordering::AcqRel);
            counts.entered.fetch_add(1, Ordering::Relaxed);
            let _finished = Finished(&counts.busy);
            let _ = done.send(quietly(work));
        };
        drop(self.jobs.spawn(job));
        match tokio::task::spawn_blocking(move || outcome.recv()).await {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(panic))) => Err(Crashed(panic_message(panic.as_ref()))),
            Ok(Err(_)) => Err(Crashed("the parse threads have stopped".into())),
            Err(e) => Err(Crashed(e.to_string())),
        }
    }

    /// The most documents that were ever being parsed at once.
    pub fn most_at_once(&self) -> usize {
        self.counts.most.load(Ordering::Acquire)
    }

    /// Parse jobs started.
    pub fn entered(&self) -> u64 {
        self.counts.entered.load(Ordering::Relaxed)
    }
}

thread_local! {
    /// Set while a parse job runs on this thread.
    static IN_PARSE_JOB: Cell<bool> = const { Cell::new(false) };
}

/// Runs a job, catching a panic. The panic hook stays silent for it: the
/// caller records it on the feed and logs one line with the feed's URL,
/// instead of the default message and backtrace.
fn quietly<R>(work: impl FnOnce() -> R) -> std::thread::Result<R> {
    IN_PARSE_JOB.with(|f| f.set(true));
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(work));
    IN_PARSE_JOB.with(|f| f.set(false));
    outcome
}

/// Wraps the process's panic hook (once) so that panics inside parse jobs
/// are not printed; every other panic is, as before.
fn install_quiet_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_PARSE_JOB.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// A parse job that panicked (or could not run), with the panic's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crashed(pub String);

impl std::fmt::Display for Crashed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Counts a job as finished, also when it panics.
struct Finished<'a>(&'a AtomicUsize);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Lowers the calling thread's priority by [`PARSE_NICE_STEP`]. On Linux the
/// nice value belongs to the thread, not the process; a thread a parse
/// thread starts inherits it (parse jobs start none). Elsewhere it would
/// belong to the whole process, so it is left alone.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::process::nice(PARSE_NICE_STEP) {
        tracing::warn!(%error, "a parse thread keeps the process's priority; ingest may be slower while the cores are busy");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's nice value, from /proc (Linux).
    fn nice() -> Option<i32> {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
        let fields = stat.get(stat.rfind(')')? + 2..)?;
        fields.split(' ').nth(16)?.parse().ok()
    }

    #[tokio::test]
    async fn documents_are_parsed_on_threads_of_lower_priority() {
        let threads = ParseThreads::new(1).unwrap();
        let caller = nice();
        let parser = threads.run(nice).await.unwrap();
        if cfg!(target_os = "linux") {
            let (caller, parser) = (caller.unwrap(), parser.unwrap());
            assert_eq!(parser, (caller + PARSE_NICE_STEP).min(19));
            // Only the parse thread was lowered.
            assert_eq!(nice(), Some(caller));
        }
        let name = threads
            .run(|| std::thread::current().name().map(str::to_string))
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("newsriver-parse"));
    }

    #[tokio::test]
    async fn two_threads_parse_two_documents_at_once_and_no_more() {
        let threads = ParseThreads::new(2).unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        // Each job waits (up to 5 s) until a second one has started: with
        // one thread the first would give up; all three at once would make
        // `most_at_once` 3.
        let job = |started: Arc<AtomicUsize>| {
            move || {
                started.fetch_add(1, Ordering::SeqCst);
                let give_up = std::time::Instant::now() + std::time::Duration::from_secs(5);
                while started.load(Ordering::SeqCst) < 2 && std::time::Instant::now() < give_up {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                started.load(Ordering::SeqCst) >= 2
            }
        };
        let (a, b, c) = tokio::join!(
            threads.run(job(started.clone())),
            threads.run(job(started.clone())),
            threads.run(job(started.clone())),
        );
        assert_eq!((a, b, c), (Ok(true), Ok(true), Ok(true)));
        assert_eq!(threads.most_at_once(), 2);
        assert_eq!(threads.entered(), 3);
    }

    #[tokio::test]
    async fn a_panicking_parse_is_an_error_and_the_threads_go_on() {
        let threads = ParseThreads::new(1).unwrap();
        let crashed = threads
            .run(|| -> u32 { panic!("malformed beyond belief") })
            .await;
        assert_eq!(crashed, Err(Crashed("malformed beyond belief".into())));
        assert_eq!(threads.run(|| 7).await, Ok(7));
        assert_eq!(threads.entered(), 2);
    }
}
