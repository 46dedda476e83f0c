//! epoll(7): an interest list of (descriptor, open file) pairs whose
//! readiness is each file's own [`OpenFile::poll`] (no copy of it here),
//! looked at when epoll_wait asks.
//!
//! **Sleeping.** A file that can name its watchers (a pipe, an eventfd,
//! an AF_INET socket: [`crate::net::socket::Socket::watchers`]) is told of
//! the instance at EPOLL_CTL_ADD and wakes the instance's own queue when
//! its readiness may have changed. An instance all of whose items are
//! such files sleeps on its own queue (with its deadline on [`TIMED`],
//! which the tick wakes when one is due), so traffic on other sockets,
//! pipes or the tty does not wake it; one watching any other kind sleeps
//! on the pollers' queue (`POLL_WQ`), which every state change of a pipe,
//! tty, socket or eventfd wakes. An item holds its file's watcher list,
//! and leaves it when it goes (DEL, its file closed, the instance
//! closed), so the lists hold no more entries than there are items.
//!
//! Level-triggered items are reported while ready. Edge-triggered ones
//! (EPOLLET) are reported when ready and their file's
//! [`OpenFile::poll_gen`] moved since the last report: new data, a
//! drained peer queue, a hang-up. EPOLLONESHOT disables an item after
//! one report until EPOLL_CTL_MOD. EPOLLEXCLUSIVE is accepted (every
//! waiter is woken and re-checks, which is correct, only less frugal).
//!
//! Items hold their file weakly: closing the last descriptor of a file
//! closes it as on Linux, and its item goes at the next look.

use abi::{Errno, KResult};
use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{fence, AtomicUsize, Ordering};
use spin::Mutex;

use super::file::{Kind, OpenFile, POLLERR, POLLHUP, POLLIN};
use crate::proc::sched::{Deadlines, WaitQueue};

pub const EPOLL_CTL_ADD: u32 = 1;
pub const EPOLL_CTL_DEL: u32 = 2;
pub const EPOLL_CTL_MOD: u32 = 3;

pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;

/// Linux's limit on nesting epoll instances in each other.
const MAX_NESTS: usize = 4;

/// Watches held by every epoll instance together (Linux bounds them per
/// user by max_user_watches): ENOSPC beyond.
const MAX_WATCHES: usize = 65_536;
static WATCHES: AtomicUsize = AtomicUsize::new(0);

/// Timed sleepers on their instance's own queue: the tick wakes them
/// when the earliest deadline in [`TIMED_DUE`] is due ([`expire`]).
static TIMED: WaitQueue = WaitQueue::new();
static TIMED_DUE: Deadlines = Deadlines::new();

/// From the timer's deferred work: wakes the timed sleepers when one's
/// deadline is due (they re-check and note theirs again).
pub fn expire(now: u64) {
    if TIMED_DUE.take_due(now) {
        TIMED.wake_all();
    }
}

/// The epoll instances watching a file that wakes them itself, by
/// their sleepers' queues: one entry per item (the same instance may
/// watch a file through two descriptors), keyed by the instance's
/// address. An entry leaves with its item (EPOLL_CTL_DEL, or the
/// instance's end); the list ends with the file.
#[derive(Default)]
pub struct Watchers {
    list: Mutex<Vec<(usize, Arc<WaitQueue>)>>,
    /// `list.len()`, stored under its lock and read without it: most
    /// changes of a pipe or eventfd find nobody watching.
    len: AtomicUsize,
}

impl Watchers {
    pub fn new() -> Arc<Watchers> {
        Arc::new(Watchers {
            list: Mutex::new(Vec::new()),
            len: AtomicUsize::new(0),
        })
    }

    fn add(&self, ep: &Epoll) {
        let mut w = self.list.lock();
        w.push((ep as *const Epoll as usize, ep.wq.clone()));
        self.len.store(w.len(), Ordering::Relaxed);
        drop(w);
        // Pairs with the fence in `wake`: the instance looks at the file
        // after this, so either it sees a change or the changer sees it.
        fence(Ordering::SeqCst);
    }

    fn remove(&self, ep: &Epoll) {
        let id = ep as *const Epoll as usize;
        let mut w = self.list.lock();
        if let Some(i) = w.iter().position(|x| x.0 == id) {
            w.swap_remove(i);
        }
        self.len.store(w.len(), Ordering::Relaxed);
    }

    /// The file's readiness may have changed: wakes the instances'
    /// sleepers. Inlined: with nobody watching it is a fence and a load.
    #[inline]
    pub fn wake(&self) {
        fence(Ordering::SeqCst);
        if self.len.load(Ordering::Relaxed) != 0 {
            self.wake_listed();
        }
    }

    #[inline(never)]
    fn wake_listed(&self) {
        for (_, q) in self.list.lock().iter() {
            q.wake_all();
        }
    }
}

/// The watcher list of `file`, if it wakes its epoll instances itself.
fn watchers_of(file: &OpenFile) -> Option<Arc<Watchers>> {
    match &file.kind {
        Kind::PipeRead(p) | Kind::PipeWrite(p) => Some(p.watchers()),
        Kind::EventFd(e) => Some(e.watchers()),
        _ => file.socket().and_then(|s| s.watchers()),
    }
}

struct Item {
    file: Weak<OpenFile>,
    /// The watcher list of the file, which wakes the instance itself
    /// ([`Watchers`]); None: the file does not (the instance sleeps on the
    /// pollers' queue). Held here, not reached through the file, so that
    /// the item leaves it even after its file is gone.
    watch: Option<Arc<Watchers>>,
    events: u32,
    data: u64,
    /// The file's poll_gen at the last report (EPOLLET), None before one.
    reported: Option<u64>,
    /// EPOLLONESHOT fired.
    disabled: bool,
}

/// One epoll instance.
pub struct Epoll {
    /// Keyed by (descriptor, open file address), as Linux keys (fd, file).
    items: Mutex<BTreeMap<(i32, usize), Item>>,
    /// Where the next look starts, so a short `maxevents` does not
    /// starve the items after the first ones (Linux rotates its list).
    cursor: Mutex<(i32, usize)>,
    /// Sleepers when every item's file wakes the instance itself.
    wq: Arc<WaitQueue>,
    /// Items whose file does not (any: sleep on `POLL_WQ`).
    foreign: AtomicUsize,
}

fn key(fd: i32, f: &Arc<OpenFile>) -> (i32, usize) {
    (fd, Arc::as_ptr(f) as usize)
}

impl Epoll {
    pub fn new() -> Arc<Epoll> {
        Arc::new(Epoll {
            items: Mutex::new(BTreeMap::new()),
            cursor: Mutex::new((i32::MIN, 0)),
            wq: Arc::new(WaitQueue::new()),
            foreign: AtomicUsize::new(0),
        })
    }

    /// Whether `other` is this instance or watches it, `depth` levels
    /// down at most (ELOOP when nesting would make a cycle or go deeper).
    fn reaches(&self, target: &Epoll, depth: usize) -> KResult<bool> {
        if core::ptr::eq(self, target) {
            return Ok(true);
        }
        if depth > MAX_NESTS {
            return Err(Errno::ELOOP);
        }
        let inner: Vec<Arc<OpenFile>> = self
            .items
            .lock()
            .values()
            .filter_map(|i| i.file.upgrade())
            .collect();
        for f in inner {
            if let Kind::Epoll(e) = &f.kind {
                if e.reaches(target, depth + 1)? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// epoll_ctl(2) on this instance: `file` is what `fd` refers to.
    pub fn ctl(
        &self,
        op: u32,
        fd: i32,
        file: &Arc<OpenFile>,
        events: u32,
        data: u64,
    ) -> KResult<()> {
        if let Kind::Epoll(inner) = &file.kind {
            if op == EPOLL_CTL_ADD && inner.reaches(self, 1)? {
                return Err(Errno::ELOOP);
            }
        }
        // Only regular files and directories are refused by Linux (they
        // are always ready); ours that have no readiness of their own are
        // the same.
        if matches!(file.kind, Kind::Inode(_) | Kind::Proc(_) | Kind::ProcDir(_)) {
            return Err(Errno::EPERM);
        }
        let k = key(fd, file);
        let mut items = self.items.lock();
        match op {
            EPOLL_CTL_ADD => {
                if items.contains_key(&k) {
                    return Err(Errno::EEXIST);
                }
                if WATCHES.fetch_add(1, Ordering::Relaxed) >= MAX_WATCHES {
                    WATCHES.fetch_sub(1, Ordering::Relaxed);
                    return Err(Errno::ENOSPC);
                }
                let watch = watchers_of(file);
                match &watch {
                    Some(w) => w.add(self),
                    None => {
                        self.foreign.fetch_add(1, Ordering::AcqRel);
                    }
                }
                items.insert(
                    k,
                    Item {
                        file: Arc::downgrade(file),
                        watch,
                        events,
                        data,
                        reported: None,
                        disabled: false,
                    },
                );
            }
            EPOLL_CTL_MOD => {
                let it = items.get_mut(&k).ok_or(Errno::ENOENT)?;
                // EPOLLEXCLUSIVE may only be given with ADD.
                if it.events & EPOLLEXCLUSIVE != 0 || events & EPOLLEXCLUSIVE != 0 {
                    return Err(Errno::EINVAL);
                }
                it.events = events;
                it.data = data;
                it.reported = None;
                it.disabled = false;
            }
            EPOLL_CTL_DEL => {
                let it = items.remove(&k).ok_or(Errno::ENOENT)?;
                WATCHES.fetch_sub(1, Ordering::Relaxed);
                self.forget(&it);
            }
            _ => return Err(Errno::EINVAL),
        }
        drop(items);
        super::POLL_WQ.wake_all();
        self.wq.wake_all();
        Ok(())
    }

    /// An item leaves: its file stops waking the instance, or the
    /// foreign count drops.
    fn forget(&self, it: &Item) {
        match &it.watch {
            Some(w) => w.remove(self),
            None => {
                self.foreign.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// epoll_wait's sleep: until `check` reports something, the deadline
    /// (ns) passes, or a signal (EINTR). On the instance's own queue
    /// when every item's file wakes it, on the pollers' queue otherwise
    /// (decided again at every turn: an item added meanwhile wakes both).
    pub fn wait(&self, deadline: Option<u64>, mut check: impl FnMut() -> usize) -> KResult<usize> {
        loop {
            let own = self.foreign.load(Ordering::Acquire) == 0;
            let q = if own { &self.wq } else { &super::POLL_WQ };
            let since = q.wakes();
            let n = check();
            if n > 0 || deadline.is_some_and(|d| hal::time::now_ns() >= d) {
                return Ok(n);
            }
            if own {
                self.wq
                    .wait_for_wake_until_also(since, deadline, &TIMED_DUE, &TIMED)?;
            } else {
                super::POLL_WQ.wait_for_wake_until(since, deadline, &super::POLL_DEADLINES)?;
            }
        }
    }

    /// The ready items, at most `max`, as (events, data); edge-triggered
    /// and one-shot items are marked reported.
    pub fn collect(&self, max: usize) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        let mut items = self.items.lock();
        let start = *self.cursor.lock();
        let mut dead = Vec::new();
        let mut last = None;
        let keys: Vec<(i32, usize)> = items
            .range(start..)
            .map(|(k, _)| *k)
            .chain(items.range(..start).map(|(k, _)| *k))
            .collect();
        for k in keys {
            if out.len() >= max {
                break;
            }
            let Some(it) = items.get_mut(&k) else {
                continue;
            };
            let Some(f) = it.file.upgrade() else {
                dead.push(k);
                continue;
            };
            if it.disabled {
                continue;
            }
            // The generation before the look: a change during it moves
            // the count past what is recorded, and is reported next time.
            let g = f.poll_gen();
            let ready = f.poll() as u32 & (it.events | POLLERR as u32 | POLLHUP as u32);
            if ready == 0 {
                continue;
            }
            if it.events & EPOLLET != 0 {
                if it.reported == Some(g) {
                    continue;
                }
                it.reported = Some(g);
            }
            if it.events & EPOLLONESHOT != 0 {
                it.disabled = true;
            }
            out.push((ready, it.data));
            last = Some(k);
        }
        for k in dead {
            if let Some(it) = items.remove(&k) {
                self.forget(&it);
            }
            WATCHES.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some((fd, p)) = last {
            *self.cursor.lock() = (fd, p.wrapping_add(1));
        }
        out
    }

    /// The instance's own readiness (an epoll fd in poll or another
    /// epoll): readable when an item would be reported.
    pub fn poll(&self) -> u16 {
        let items = self.items.lock();
        let any = items.values().any(|it| {
            if it.disabled {
                return false;
            }
            let Some(f) = it.file.upgrade() else {
                return false;
            };
            let ready = f.poll() as u32 & (it.events | POLLERR as u32 | POLLHUP as u32);
            ready != 0 && (it.events & EPOLLET == 0 || it.reported != Some(f.poll_gen()))
        });
        if any {
            POLLIN
        } else {
            0
        }
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        let items = core::mem::take(&mut *self.items.lock());
        WATCHES.fetch_sub(items.len(), Ordering::Relaxed);
        // The files' lists stop naming the instance (they would keep its
        // queue until the file goes).
        for it in items.values() {
            if let Some(w) = &it.watch {
                w.remove(self);
            }
        }
    }
}
