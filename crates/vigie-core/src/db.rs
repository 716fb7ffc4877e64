//! The embedded SQLite store: one writer thread that group-commits, a pool of readers, and
//! numbered migrations run at open.
//!
//! Why a single writer with group commit: SQLite allows one writer at a time, and with
//! `synchronous=FULL` each commit costs an fsync. Concurrent requests hand their write to the
//! writer thread as a closure; it runs every closure queued at that moment inside one
//! transaction (each in its own savepoint, so one failing write does not undo the others),
//! commits once, then answers each caller. A caller is answered only after the commit that
//! holds its write: acknowledged means durable.
//!
//! Architecture invariant: no SQLite connection is used on an async thread, and no lock on a
//! connection is held across an `.await`.
use crate::error::StoreError;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// How hard a commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `synchronous=FULL`: every commit is fsynced; survives power loss. The default.
    Full,
    /// `synchronous=NORMAL`: survives a process crash, may lose the last commits on power loss.
    Normal,
}

/// Tuning for [`Store::open`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Fsync policy of commits.
    pub durability: Durability,
    /// The most writes grouped into one transaction; 1 disables group commit.
    pub max_batch: usize,
    /// Page cache of the writer connection, in KiB.
    pub cache_kib: i64,
    /// Read connections kept open.
    pub readers: usize,
    /// Checkpoint the WAL from a background thread (true), or let the committing writer do it
    /// when the WAL passes 1,000 pages (false, the default). Measured on the firewall's write
    /// path (BENCHMARKS.md): background checkpoints give ~10 % more throughput and a lower p99,
    /// but the checkpoint's fsync of the database file stalls the WAL's and doubles p99.9. The
    /// inline firewall wants the steadier tail; a throughput-bound consumer may choose otherwise.
    pub background_checkpoints: bool,
    /// Run on every connection opened (the writer and each reader), e.g. to register the SQL
    /// functions a half's queries call.
    pub on_connect: Option<fn(&Connection) -> rusqlite::Result<()>>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            durability: Durability::Full,
            max_batch: 512,
            cache_kib: 65_536,
            readers: 8,
            background_checkpoints: false,
            on_connect: None,
        }
    }
}

/// One schema migration, applied once, in list order, and recorded by name.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Stable, unique name (e.g. `core_001_auth`); never renamed once released.
    pub name: &'static str,
    /// The SQL, run as one batch inside a transaction.
    pub sql: &'static str,
}

/// Observers of the writer's work, exported as Prometheus metrics.
#[derive(Clone, Default)]
pub struct StoreMetrics {
    /// Writes per committed transaction.
    pub batch_size: Option<Histogram>,
    /// Seconds from BEGIN to the end of COMMIT.
    pub commit_seconds: Option<Histogram>,
    /// Transactions that failed to commit.
    pub commit_failures: Counter,
}

type Reply = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// A write waiting for the writer thread: either run inside the batch's transaction (and
/// answered after its commit), or answered with an error without running.
trait Job: Send {
    fn run(self: Box<Self>, conn: &Connection) -> Reply;
    fn abort(self: Box<Self>, err: StoreError);
}

struct WriteJob<F, T, E> {
    f: F,
    tx: oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> Job for WriteJob<F, T, E>
where
    F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Reply {
        let WriteJob { f, tx } = *self;
        let result = in_savepoint(conn, f);
        Box::new(move |commit: Result<(), &StoreError>| {
            let out = match (result, commit) {
                (Err(e), _) => Err(e),
                (Ok(v), Ok(())) => Ok(v),
                (Ok(_), Err(e)) => Err(E::from(StoreError::Commit(e.to_string()))),
            };
            let _ = tx.send(out);
        })
    }

    fn abort(self: Box<Self>, err: StoreError) {
        let _ = self.tx.send(Err(E::from(err)));
    }
}

enum Command {
    Write(Box<dyn Job>),
    Close(std::sync::mpsc::Sender<()>),
}

/// A handle to one SQLite database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: mpsc::Sender<Command>,
    readers: Mutex<Vec<Connection>>,
    max_readers: usize,
    /// What a new reader is opened with (its `on_connect`).
    reader_opts: StoreOptions,
    commits: Arc<AtomicU64>,
    committed: tokio::sync::watch::Receiver<u64>,
    checkpointer: Checkpointer,
    /// Commands in the writer's channel: counted once a send has completed and uncounted when
    /// the writer takes them, so [`Store::queued`] never counts a command that is not in the
    /// channel yet (a send reserves its slot before it places the command).
    queue: Arc<QueueCount>,
}

#[derive(Default)]
struct QueueCount {
    placed: AtomicU64,
    taken: AtomicU64,
}

impl QueueCount {
    fn len(&self) -> usize {
        // `placed` first: the count is then at most what the channel held when `placed` was
        // read (what the writer takes meanwhile only lowers it).
        let placed = self.placed.load(Ordering::Acquire);
        let taken = self.taken.load(Ordering::Acquire);
        placed.saturating_sub(taken) as usize
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.checkpointer.stop();
    }
}

/// Copies the WAL back into the database in the background (PASSIVE checkpoints: they never
/// block the writer), every [`CHECKPOINT_EVERY`].
struct Checkpointer {
    stop: Arc<(Mutex<bool>, std::sync::Condvar)>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(40);

impl Checkpointer {
    fn start(conn: Connection) -> Result<Checkpointer, StoreError> {
        let stop = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("vigie-sqlite-checkpoint".into())
            .spawn(move || {
                let (lock, wake) = &*flag;
                loop {
                    let Ok(guard) = lock.lock() else { return };
                    let Ok((stopped, _)) = wake.wait_timeout_while(guard, CHECKPOINT_EVERY, |stopped| !*stopped) else { return };
                    if *stopped {
                        return;
                    }
                    drop(stopped);
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        tracing::warn!(error = %e, "background WAL checkpoint failed; the writer's auto-checkpoint takes over");
                    }
                }
            })
            .map_err(io("cannot start the database checkpoint thread"))?;
        Ok(Checkpointer { stop, thread: Mutex::new(Some(thread)) })
    }

    fn none() -> Checkpointer {
        Checkpointer { stop: Arc::new((Mutex::new(true), std::sync::Condvar::new())), thread: Mutex::new(None) }
    }

    /// Stops the thread and waits for it.
    fn stop(&self) {
        let (lock, wake) = &*self.stop;
        if let Ok(mut stopped) = lock.lock() {
            *stopped = true;
        }
        wake.notify_all();
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.inner.path).finish()
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
    move |source| StoreError::Io { context: context.into(), source }
}

/// Creates `dir` (and its parents) if missing; a directory Vigie creates is readable by its
/// owner only, since it holds the databases and the master key.
pub fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(io(format!("cannot create the data directory {}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(format!("cannot restrict {}", dir.display())))?;
    }
    Ok(())
}

fn open_connection(path: &Path, opts: &StoreOptions, read_only: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let sync = match opts.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous={sync}; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-{};",
        if read_only { 16_384 } else { opts.cache_kib }
    ))?;
    conn.set_prepared_statement_cache_capacity(64);
    if let Some(f) = opts.on_connect {
        f(&conn)?;
    }
    Ok(conn)
}

fn migrate(conn: &mut Connection, migrations: &[Migration]) -> Result<(), StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)")?;
    for m in migrations {
        let done: bool = conn.query_row("SELECT EXISTS(SELECT 1 FROM schema_migrations WHERE name = ?1)", [m.name], |r| r.get(0))?;
        if done {
            continue;
        }
        let wrap = |source| StoreError::Migration { name: m.name.to_string(), source };
        let tx = conn.transaction().map_err(wrap)?;
        tx.execute_batch(m.sql).map_err(wrap)?;
        tx.execute(
            "INSERT INTO schema_migrations (name, applied_at) VALUES (?1, ?2)",
            rusqlite::params![m.name, chrono::Utc::now().timestamp_micros()],
        )
        .map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        tracing::info!(migration = m.name, "applied migration");
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database at `path`, runs the migrations not yet applied,
    /// and starts the writer thread. Parent directories are created.
    pub fn open(path: &Path, opts: StoreOptions, migrations: &[Migration], metrics: StoreMetrics) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        let mut conn = open_connection(path, &opts, false)?;
        migrate(&mut conn, migrations)?;
        // Checkpoints run on their own thread (below) so a commit never waits for one; the
        // writer's own auto-checkpoint stays as a safety valve should that thread fall behind.
        let checkpointer = if opts.background_checkpoints {
            conn.execute_batch("PRAGMA wal_autocheckpoint=16384; PRAGMA journal_size_limit=67108864;")?;
            Checkpointer::start(open_connection(path, &opts, false)?)?
        } else {
            Checkpointer::none()
        };
        let (tx, rx) = mpsc::channel(4096);
        let max_batch = opts.max_batch.max(1);
        let commits = Arc::new(AtomicU64::new(0));
        let counter = commits.clone();
        let (signal, committed) = tokio::sync::watch::channel(0u64);
        let queue = Arc::new(QueueCount::default());
        let taken = queue.clone();
        std::thread::Builder::new()
            .name("vigie-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, max_batch, metrics, counter, signal, taken))
            .map_err(io("cannot start the database writer thread"))?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: tx,
                readers: Mutex::new(Vec::new()),
                max_readers: opts.readers.max(1),
                reader_opts: opts.clone(),
                commits,
                committed,
                checkpointer,
                queue,
            }),
        })
    }

    /// Runs `f` inside the next group-committed transaction and returns its result once that
    /// transaction has committed. If `f` fails, its changes are rolled back alone.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, E>>();
        self.send(Command::Write(Box::new(WriteJob { f, tx }))).await.map_err(|_| E::from(StoreError::Closed))?;
        // A dropped reply means the writer thread died mid-batch (a panic); nothing of the write
        // was committed.
        rx.await.map_err(|_| E::from(StoreError::Commit("the database writer failed; see the log".into())))?
    }

    async fn send(&self, cmd: Command) -> Result<(), StoreError> {
        self.inner.writer.send(cmd).await.map_err(|_| StoreError::Closed)?;
        self.inner.queue.placed.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Writes (and a close) waiting for the writer thread. Never more than are in its queue:
    /// when this says `n`, at least `n` commands are there, in the order they were sent.
    pub fn queued(&self) -> usize {
        self.inner.queue.len()
    }

    /// Transactions committed since the store was opened.
    pub fn commits(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }

    /// A signal that changes after every committed transaction (its value is the count of
    /// commits), so a consumer of what writes produce (the webhook dispatcher reading the
    /// outbox) wakes when there is something new instead of polling. Changes seen together
    /// coalesce: a slow consumer is woken once for many commits.
    pub fn commit_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.committed.clone()
    }

    /// Runs `f` on a read connection off the async threads. Reads see every committed write.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.clone();
        match tokio::task::spawn_blocking(move || store.read_blocking(f)).await {
            Ok(r) => r,
            Err(e) => Err(E::from(StoreError::Commit(format!("read task failed: {e}")))),
        }
    }

    /// The blocking form of [`Store::read`], for command-line tools and tests.
    pub fn read_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E>,
        E: From<StoreError>,
    {
        let pooled = self.inner.readers.lock().ok().and_then(|mut v| v.pop());
        let conn = match pooled {
            Some(c) => c,
            None => open_connection(&self.inner.path, &self.inner.reader_opts, true).map_err(E::from)?,
        };
        let out = f(&conn);
        if let Ok(mut v) = self.inner.readers.lock()
            && v.len() < self.inner.max_readers
        {
            v.push(conn);
        }
        out
    }

    /// Finishes the queued writes, stops the writer thread and waits for it.
    pub async fn close(&self) {
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || inner.checkpointer.stop()).await;
        let (tx, rx) = std::sync::mpsc::channel();
        if self.send(Command::Close(tx)).await.is_ok() {
            let _ = tokio::task::spawn_blocking(move || rx.recv()).await;
        }
    }
}

fn in_savepoint<T, E, F>(conn: &Connection, f: F) -> Result<T, E>
where
    F: FnOnce(&Connection) -> Result<T, E>,
    E: From<StoreError>,
{
    // If the savepoint itself cannot be opened, released or rolled back, this write's effects
    // can no longer be told apart from the others': the whole transaction is rolled back, and
    // the batch fails (run_batch sees the connection back in autocommit).
    let abandon = |e: rusqlite::Error| {
        tracing::error!(error = %e, "a savepoint failed; rolling back the whole write transaction");
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        E::from(e.into())
    };
    conn.execute_batch("SAVEPOINT w").map_err(abandon)?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("RELEASE w").map_err(abandon)?;
            Ok(v)
        }
        Err(e) => {
            if let Err(re) = conn.execute_batch("ROLLBACK TO w; RELEASE w") {
                abandon(re);
            }
            Err(e)
        }
    }
}

fn writer_loop(
    conn: Connection,
    mut rx: mpsc::Receiver<Command>,
    max_batch: usize,
    metrics: StoreMetrics,
    commits: Arc<AtomicU64>,
    signal: tokio::sync::watch::Sender<u64>,
    queue: Arc<QueueCount>,
) {
    let took = |cmd| {
        queue.taken.fetch_add(1, Ordering::AcqRel);
        cmd
    };
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    let mut closing: Option<std::sync::mpsc::Sender<()>> = None;
    while closing.is_none() {
        match rx.blocking_recv().map(took) {
            Some(Command::Write(job)) => batch.push(job),
            Some(Command::Close(done)) => closing = Some(done),
            None => break,
        }
        while batch.len() < max_batch && closing.is_none() {
            match rx.try_recv().map(took) {
                Ok(Command::Write(job)) => batch.push(job),
                Ok(Command::Close(done)) => closing = Some(done),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        let started = Instant::now();
        let n = batch.len();
        let (replies, outcome) = run_batch(&conn, &mut batch);
        match &outcome {
            Ok(()) => {
                let n = commits.fetch_add(1, Ordering::Relaxed) + 1;
                signal.send_replace(n);
            }
            Err(e) => {
                metrics.commit_failures.inc();
                tracing::error!(error = %e, writes = n, "a write transaction failed; none of its writes were stored");
            }
        }
        if let Some(h) = &metrics.batch_size {
            h.observe(n as f64);
        }
        if let Some(h) = &metrics.commit_seconds {
            h.observe(started.elapsed().as_secs_f64());
        }
        for reply in replies {
            reply(outcome.as_ref().map(|_| ()));
        }
    }
    // Writes queued behind the close are refused without running: acknowledged means durable,
    // and refused means not stored.
    rx.close();
    while let Ok(cmd) = rx.try_recv().map(took) {
        if let Command::Write(job) = cmd {
            job.abort(StoreError::Closed);
        }
    }
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        tracing::warn!(error = %e, "the final WAL checkpoint failed; SQLite replays the WAL at the next open, nothing is lost");
    }
    drop(conn);
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Runs one batch in one transaction. A job whose failure makes SQLite roll back the whole
/// transaction (or that panics) ends the batch: the jobs after it are refused without running,
/// and every job that ran is told the transaction failed.
fn run_batch(conn: &Connection, batch: &mut Vec<Box<dyn Job>>) -> (Vec<Reply>, Result<(), StoreError>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let msg = format!("the transaction could not start: {e}");
        for job in batch.drain(..) {
            job.abort(StoreError::Commit(msg.clone()));
        }
        return (Vec::new(), Err(StoreError::Commit(msg)));
    }
    let mut replies = Vec::with_capacity(batch.len());
    let mut lost: Option<String> = None;
    for job in batch.drain(..) {
        if let Some(why) = &lost {
            job.abort(StoreError::Commit(why.clone()));
            continue;
        }
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(conn))) {
            Ok(reply) => replies.push(reply),
            Err(_) => lost = Some("a write in the same transaction panicked; nothing was stored".into()),
        }
        if lost.is_none() && conn.is_autocommit() {
            lost = Some("a write in the same transaction made the database roll it back; nothing was stored".into());
        }
    }
    let outcome = match lost {
        Some(why) => Err(StoreError::Commit(why)),
        None => conn.execute_batch("COMMIT").map_err(StoreError::from),
    };
    if outcome.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    (replies, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &[Migration] = &[Migration { name: "t_001", sql: "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)" }];

    fn open(dir: &Path) -> Store {
        Store::open(&dir.join("t.db"), StoreOptions::default(), M, StoreMetrics::default()).expect("open")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_commit_and_a_failing_one_is_rolled_back_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let mut tasks = Vec::new();
        for i in 0..200 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.write(move |c| {
                    c.execute("INSERT INTO t (k, v) VALUES (?1, ?2)", rusqlite::params![format!("k{}", i % 150), i])
                        .map_err(StoreError::from)
                })
                .await
            }));
        }
        let mut ok = 0;
        let mut dup = 0;
        for t in tasks {
            match t.await.expect("join") {
                Ok(_) => ok += 1,
                Err(StoreError::Sqlite(e)) if StoreError::is_unique_violation(&e) => dup += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!((ok, dup), (150, 50));
        let n: i64 =
            store.read_blocking(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).map_err(StoreError::from)).expect("count");
        assert_eq!(n, 150);
        store.close().await;
        assert!(matches!(store.write(|_| Ok::<_, StoreError>(())).await, Err(StoreError::Closed)));
    }

    /// Holds the writer thread inside a job until the returned sender is used, so the test can
    /// queue writes behind it and know they will form one batch.
    async fn hold_writer(store: &Store) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<Result<(), StoreError>>) {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = oneshot::channel::<()>();
        let s = store.clone();
        let held = tokio::spawn(async move {
            s.write(move |_| {
                let _ = started_tx.send(());
                let _ = wait.recv();
                Ok::<_, StoreError>(())
            })
            .await
        });
        started.await.expect("the writer ran the holding job");
        (release, held)
    }

    async fn until_queued(store: &Store, n: usize) {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while store.queued() < n {
            assert!(Instant::now() < deadline, "only {} of {n} writes queued", store.queued());
            tokio::task::yield_now().await;
        }
    }

    fn insert(store: &Store, k: &'static str) -> tokio::task::JoinHandle<Result<usize, StoreError>> {
        let s = store.clone();
        tokio::spawn(async move { s.write(move |c| c.execute("INSERT INTO t (k, v) VALUES (?1, 1)", [k]).map_err(StoreError::from)).await })
    }

    fn count(store: &Store) -> i64 {
        store.read_blocking(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).map_err(StoreError::from)).expect("count")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_queued_together_share_one_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let before = store.commits();
        let (release, held) = hold_writer(&store).await;
        let keys = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        let writes: Vec<_> = keys.iter().map(|k| insert(&store, k)).collect();
        until_queued(&store, keys.len()).await;
        release.send(()).expect("release");
        held.await.expect("join").expect("held write");
        for w in writes {
            w.await.expect("join").expect("write");
        }
        assert_eq!(store.commits() - before, 2, "the ten queued writes shared one commit");
        assert_eq!(count(&store), 10);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_that_rolls_back_its_transaction_fails_the_whole_batch_and_nothing_is_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        store
            .write(|c| {
                c.execute_batch("CREATE TRIGGER boom BEFORE INSERT ON t WHEN NEW.k = 'boom' BEGIN SELECT RAISE(ROLLBACK, 'boom'); END;")
                    .map_err(StoreError::from)
            })
            .await
            .expect("trigger");
        let (release, held) = hold_writer(&store).await;
        let writes = [insert(&store, "before"), insert(&store, "boom"), insert(&store, "after")];
        until_queued(&store, 3).await;
        release.send(()).expect("release");
        let _ = held.await.expect("join");
        for w in writes {
            assert!(w.await.expect("join").is_err(), "a write of the rolled-back batch reported success");
        }
        assert_eq!(count(&store), 0);
        insert(&store, "later").await.expect("join").expect("the writer recovers");
        assert_eq!(count(&store), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_write_fails_its_batch_and_the_writer_keeps_working() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let (release, held) = hold_writer(&store).await;
        let ok = insert(&store, "x");
        let s = store.clone();
        let boom = tokio::spawn(async move { s.write(|_| -> Result<(), StoreError> { panic!("injected panic in a write") }).await });
        until_queued(&store, 2).await;
        release.send(()).expect("release");
        let _ = held.await.expect("join");
        assert!(ok.await.expect("join").is_err());
        assert!(boom.await.expect("join").is_err());
        assert_eq!(count(&store), 0);
        insert(&store, "y").await.expect("join").expect("the writer survived");
        assert_eq!(count(&store), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_queued_behind_close_are_refused_and_not_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let (release, held) = hold_writer(&store).await;
        let early = insert(&store, "early");
        until_queued(&store, 1).await;
        let s = store.clone();
        let closing = tokio::spawn(async move { s.close().await });
        until_queued(&store, 2).await;
        let late = insert(&store, "late");
        until_queued(&store, 3).await;
        release.send(()).expect("release");
        held.await.expect("join").expect("held write");
        early.await.expect("join").expect("a write queued before the close is stored");
        assert!(matches!(late.await.expect("join"), Err(StoreError::Closed)));
        closing.await.expect("join");
        let store = open(dir.path());
        let keys: Vec<String> = store
            .read_blocking(|c| {
                c.prepare("SELECT k FROM t")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>().map_err(StoreError::from)
            })
            .expect("keys");
        assert_eq!(keys, ["early"]);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_data_dir_the_store_creates_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("nested").join("data");
        let store = Store::open(&data.join("t.db"), StoreOptions::default(), M, StoreMetrics::default()).expect("open");
        let mode = std::fs::metadata(&data).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn background_checkpoints_copy_the_wal_into_the_database_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let opts = StoreOptions { background_checkpoints: true, ..StoreOptions::default() };
        let store = Store::open(&path, opts, M, StoreMetrics::default()).expect("open");
        let before = std::fs::metadata(&path).expect("meta").len();
        store
            .write(|c| {
                for i in 0..2000 {
                    c.execute("INSERT INTO t (k, v) VALUES (?1, ?2)", rusqlite::params![format!("key-{i:05}-{}", "x".repeat(200)), i])?;
                }
                Ok::<_, StoreError>(())
            })
            .await
            .expect("write");
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::metadata(&path).expect("meta").len() <= before + 100_000 {
            assert!(Instant::now() < deadline, "no checkpoint copied the WAL into the database");
            tokio::task::yield_now().await;
        }
        store.close().await;
    }

    #[tokio::test]
    async fn migrations_run_once_across_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        store.write(|c| c.execute("INSERT INTO t VALUES ('a', 1)", []).map_err(StoreError::from)).await.expect("insert");
        store.close().await;
        let store = open(dir.path());
        let n: i64 =
            store.read_blocking(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).map_err(StoreError::from)).expect("count");
        assert_eq!(n, 1);
    }
}
