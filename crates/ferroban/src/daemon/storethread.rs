//! The ban store's own thread: the only owner of the [`Store`] (the SQLite connection). The
//! runtime never touches the database: every use of the store is a message to this thread, so a
//! slow disk (a commit's fsync, a full disk) never holds the control socket or another jail.
//!
//! A [`StoreHandle`] (in [`State`](super::server::State), on the runtime thread) sends closures
//! over a channel; the thread runs them on the store in the order sent. Writes follow the
//! store's batch API on the runtime side ([`StoreHandle::begin_batch`], [`StoreHandle::write`],
//! [`StoreHandle::end_batch_then`]): a batch's writes travel as one message and are one
//! transaction. The end of a batch answers on a oneshot once committed (or once the failure is
//! logged and the writes are kept in memory, as the store does): the jail whose bans those are
//! awaits it before it logs `Ban` and runs the actions, so a ban logged as `Ban` is in the
//! database. Reads answer on a oneshot ([`StoreHandle::ask`]), awaited: also the start-up reads
//! of a jail started or reloaded while the daemon serves (one message per jail); only those of
//! the jails started with the daemon, before it serves, wait for their answer
//! ([`StoreHandle::read`]).
//!
//! The thread ends when the handle is closed ([`StoreHandle::close`], or dropped): what was sent
//! is written, then the store is dropped (SQLite closes the connection and folds its WAL back),
//! then the thread is joined.

use std::sync::{Arc, Mutex, mpsc};

use ferroban_bans::{Store, StoreFault, StoreOptions};
use tokio::sync::oneshot;

use crate::flog;

/// Work for the store thread.
type Job = Box<dyn FnOnce(&mut Store) + Send>;

/// The runtime's side of the store thread.
pub struct StoreHandle {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The writes of the open batch (sent as one job at its outermost end).
    batch: Vec<Job>,
    /// What runs once the open batch is committed (the answers of its ends).
    after: Vec<Job>,
    /// Open batches.
    depth: u32,
    /// The store's options (the runtime's copy: `get dbmaxmatches` does not wait for the thread).
    options: StoreOptions,
    /// The store's fault after the thread's last job (read by `status` without waiting).
    fault: Arc<Mutex<Option<StoreFault>>>,
}

/// Locks `m`, also after a panic of another holder.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl StoreHandle {
    /// Starts the thread that owns `store`.
    pub fn spawn(mut store: Store) -> StoreHandle {
        let fault = Arc::new(Mutex::new(store.fault()));
        let options = store.options().clone();
        let (tx, rx) = mpsc::channel::<Job>();
        let f = fault.clone();
        let thread = std::thread::Builder::new()
            .name("ferroban-store".into())
            .spawn(move || {
                for job in rx {
                    job(&mut store);
                    let now = store.fault();
                    let mut g = lock(&f);
                    if *g != now {
                        *g = now;
                    }
                }
                // The senders are gone: the store closes here (its connection, its WAL).
                drop(store);
            })
            .expect("cannot start the store thread");
        StoreHandle {
            tx: Some(tx),
            thread: Some(thread),
            batch: Vec::new(),
            after: Vec::new(),
            depth: 0,
            options,
            fault,
        }
    }

    /// Sends `job` to the thread (after what was sent before).
    fn send(&self, job: Job) {
        if let Some(tx) = &self.tx {
            // The thread only ends with the handle.
            let _ = tx.send(job);
        }
    }

    /// Runs `f` on the store thread, after what was sent before; nothing waits for it.
    pub fn run(&self, f: impl FnOnce(&mut Store) + Send + 'static) {
        self.send(Box::new(f));
    }

    /// Runs `f` on the store thread, after what was sent before; its answer comes on the
    /// receiver (to be awaited, never blocked on, on the runtime).
    pub fn ask<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> R + Send + 'static,
    ) -> oneshot::Receiver<R> {
        let (tx, rx) = oneshot::channel();
        self.run(move |s| {
            let _ = tx.send(f(s));
        });
        rx
    }

    /// Runs `f` on the store thread and waits for its answer (the calling thread blocks): only
    /// for the reads that start a jail (its positions, cursor, history and bans) at daemon
    /// start, before the control socket serves; later, [`ask`](Self::ask).
    pub fn read<R: Send + 'static>(&self, f: impl FnOnce(&mut Store) -> R + Send + 'static) -> R {
        let (tx, rx) = mpsc::sync_channel(1);
        self.run(move |s| {
            let _ = tx.send(f(s));
        });
        rx.recv().expect("the store thread answers")
    }

    /// Starts a batch: until the matching end, writes are one transaction. Batches nest; only
    /// the outermost end sends them.
    pub fn begin_batch(&mut self) {
        self.depth += 1;
    }

    /// Whether a batch is open.
    pub fn in_batch(&self) -> bool {
        self.depth > 0
    }

    /// A write: in the open batch, else a transaction of its own, sent now.
    pub fn write(&mut self, f: impl FnOnce(&mut Store) + Send + 'static) {
        if self.depth > 0 {
            self.batch.push(Box::new(f));
        } else {
            self.send(Box::new(move |s: &mut Store| {
                s.begin_batch();
                f(s);
                end_batch(s);
            }));
        }
    }

    /// Ends a batch; `after` (a read) runs on the store once the outermost batch is committed
    /// (or its failure logged and its writes kept in memory) and answers on the receiver. The
    /// outermost end sends the batch's writes as one transaction.
    pub fn end_batch_then<R: Send + 'static>(
        &mut self,
        after: impl FnOnce(&mut Store) -> R + Send + 'static,
    ) -> oneshot::Receiver<R> {
        let (tx, rx) = oneshot::channel();
        self.after.push(Box::new(move |s| {
            let _ = tx.send(after(s));
        }));
        self.end_batch();
        rx
    }

    /// Ends a batch; nothing waits for it (the jobs sent later run after it). The outermost
    /// end sends the batch's writes as one transaction (nothing when there is nothing to do).
    pub fn end_batch(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        if self.depth == 0 && !(self.batch.is_empty() && self.after.is_empty()) {
            let writes = std::mem::take(&mut self.batch);
            let after = std::mem::take(&mut self.after);
            self.run(move |s| {
                if !writes.is_empty() {
                    s.begin_batch();
                    for w in writes {
                        w(s);
                    }
                    end_batch(s);
                }
                for a in after {
                    a(s);
                }
            });
        }
    }

    /// Why the store could not write after its last use; `None` while it writes.
    pub fn fault(&self) -> Option<StoreFault> {
        lock(&self.fault).clone()
    }

    /// The options in force.
    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    /// Changes `dbpurgeage` / `dbmaxmatches`; the store takes them on its thread (a failure
    /// there is logged).
    pub fn set_options(&mut self, opts: StoreOptions) {
        self.options = opts.clone();
        self.run(move |s| {
            if let Err(e) = s.set_options(opts) {
                flog!(Error, "database", "{e}");
            }
        });
    }

    /// Writes what was sent, closes the store and joins its thread (at exit).
    pub fn close(mut self) {
        self.join();
    }

    fn join(&mut self) {
        if self.depth > 0 {
            // A batch left open is written all the same.
            self.depth = 1;
            self.end_batch();
        }
        self.tx = None;
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            flog!(Error, "database", "the store thread panicked");
        }
    }
}

impl Drop for StoreHandle {
    fn drop(&mut self) {
        self.join();
    }
}

/// Ends the store's batch; a failed commit is logged (the store keeps its writes in memory and
/// writes them when it can).
fn end_batch(s: &mut Store) {
    if let Err(e) = s.end_batch() {
        flog!(
            Error,
            "database",
            "{e}; bans stay enforced and are kept in memory until the database can be written again"
        );
    }
}
