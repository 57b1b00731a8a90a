//! The ban store's own thread: it writes a read slice's bans and positions in one transaction
//! while the runtime serves the other jails and the control socket.
//!
//! A [`StoreHandle`] sends batches ([`StoreHandle::commit`]) over a channel; the thread takes
//! them in the order sent (a jail's batches stay in order), writes each in one transaction and
//! answers on its oneshot once committed (or once the failure is logged and the writes are kept
//! in memory, as [`State::end_store_batch`](super::server::State::end_store_batch) does). The
//! sender awaits the answer before it logs `Ban` and runs the actions: a ban logged as `Ban` is
//! in the database.
//!
//! The uses not moved yet lock the store on the runtime thread ([`StoreHandle::lock`]): the lock
//! first waits for the batches already sent, so every write keeps the order it was asked in.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};

use ferroban_bans::{LogPosition, Store, StoreFault};
use tokio::sync::oneshot;

use super::jail::StoreWrite;
use crate::flog;

/// A batch: one transaction.
pub struct Batch {
    /// The jail whose writes these are.
    pub jail: String,
    /// Its bans and unbans.
    pub writes: Vec<StoreWrite>,
    /// Its read positions.
    pub positions: Vec<LogPosition>,
}

enum Msg {
    Batch(Batch, oneshot::Sender<()>),
    /// Answers once every earlier message is done.
    Flush(mpsc::SyncSender<()>),
    /// Runs on the thread (tests: hold the thread).
    Run(Box<dyn FnOnce(&mut Store) + Send>),
}

/// The runtime's side of the store thread.
pub struct StoreHandle {
    store: Arc<Mutex<Store>>,
    tx: mpsc::Sender<Msg>,
    /// Messages sent and not yet done.
    pending: Arc<AtomicUsize>,
    /// The store's fault after its last use (read by `status` without waiting for the thread).
    fault: Arc<Mutex<Option<StoreFault>>>,
}

/// The store locked on the runtime thread; its fault is noted when the lock ends.
pub struct StoreGuard<'a> {
    store: MutexGuard<'a, Store>,
    fault: &'a Mutex<Option<StoreFault>>,
}

impl std::ops::Deref for StoreGuard<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

impl std::ops::DerefMut for StoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut Store {
        &mut self.store
    }
}

impl Drop for StoreGuard<'_> {
    fn drop(&mut self) {
        *lock(self.fault) = self.store.fault();
    }
}

/// Locks `m`, also after a panic of another holder.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The handle's store locked, if there is one: for the uses not moved to the thread.
pub fn locked(h: &Option<StoreHandle>) -> Option<StoreGuard<'_>> {
    h.as_ref().map(StoreHandle::lock)
}

impl StoreHandle {
    /// Starts the thread that owns `store`.
    pub fn spawn(store: Store) -> StoreHandle {
        let fault = Arc::new(Mutex::new(store.fault()));
        let store = Arc::new(Mutex::new(store));
        let pending = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel::<Msg>();
        let (s, p, f) = (store.clone(), pending.clone(), fault.clone());
        std::thread::Builder::new()
            .name("ferroban-store".into())
            .spawn(move || {
                for msg in rx {
                    match msg {
                        Msg::Batch(b, done) => {
                            let mut st = lock(&s);
                            write_batch(&mut st, &b);
                            *lock(&f) = st.fault();
                            drop(st);
                            p.fetch_sub(1, Ordering::AcqRel);
                            let _ = done.send(());
                        }
                        Msg::Flush(done) => {
                            p.fetch_sub(1, Ordering::AcqRel);
                            let _ = done.send(());
                        }
                        Msg::Run(f) => {
                            f(&mut lock(&s));
                            p.fetch_sub(1, Ordering::AcqRel);
                        }
                    }
                }
            })
            .expect("cannot start the store thread");
        StoreHandle {
            store,
            tx,
            pending,
            fault,
        }
    }

    fn send(&self, m: Msg) -> bool {
        self.pending.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(m).is_err() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Sends `b` to be written in one transaction; the answer comes once it is committed (or
    /// its failure logged and its writes kept in memory).
    pub fn commit(&self, b: Batch) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Batch(b, tx));
        rx
    }

    /// The store on the runtime thread, once the batches sent before are written (blocks).
    pub fn lock(&self) -> StoreGuard<'_> {
        if self.pending.load(Ordering::Acquire) > 0 {
            let (tx, rx) = mpsc::sync_channel(1);
            if self.send(Msg::Flush(tx)) {
                let _ = rx.recv();
            }
        }
        StoreGuard {
            store: lock(&self.store),
            fault: &self.fault,
        }
    }

    /// Whether the runtime thread holds a batch open ([`Store::in_batch`]), without waiting for
    /// the thread: a batch is opened on the runtime thread only with nothing sent before it,
    /// and nothing is sent until it ends.
    pub fn in_batch(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
            && self.store.try_lock().is_ok_and(|s| s.in_batch())
    }

    /// Why the store could not write at its last use; `None` while it writes.
    pub fn fault(&self) -> Option<StoreFault> {
        lock(&self.fault).clone()
    }

    /// Runs `f` on the store thread, after what was sent before (tests: hold the thread on a
    /// barrier).
    pub fn run_on_thread(&self, f: impl FnOnce(&mut Store) + Send + 'static) {
        self.send(Msg::Run(Box::new(f)));
    }
}

/// Writes `b` in one transaction; a failure is logged (the store keeps the writes).
fn write_batch(store: &mut Store, b: &Batch) {
    store.begin_batch();
    super::jailtask::write_to(store, &b.jail, &b.writes);
    for p in &b.positions {
        if let Err(e) = store.set_position(&b.jail, p) {
            flog!(Error, "database", "[{}] {e}", b.jail);
        }
    }
    if let Err(e) = store.end_batch() {
        flog!(
            Error,
            "database",
            "{e}; bans stay enforced and are kept in memory until the database can be written again"
        );
    }
}
