//! epoll(7): an interest list of (descriptor, open file) pairs whose
//! readiness is each file's own [`OpenFile::poll`] (no copy of it here),
//! looked at when epoll_wait asks; sleepers wait on the pollers' queue
//! (`POLL_WQ`), which every state change of a pipe, tty, socket or
//! eventfd wakes.
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
use core::sync::atomic::{AtomicUsize, Ordering};
use spin::Mutex;

use super::file::{Kind, OpenFile, POLLERR, POLLHUP, POLLIN};

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

struct Item {
    file: Weak<OpenFile>,
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
}

fn key(fd: i32, f: &Arc<OpenFile>) -> (i32, usize) {
    (fd, Arc::as_ptr(f) as usize)
}

impl Epoll {
    pub fn new() -> Arc<Epoll> {
        Arc::new(Epoll {
            items: Mutex::new(BTreeMap::new()),
            cursor: Mutex::new((i32::MIN, 0)),
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
                items.insert(
                    k,
                    Item {
                        file: Arc::downgrade(file),
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
                items.remove(&k).ok_or(Errno::ENOENT)?;
                WATCHES.fetch_sub(1, Ordering::Relaxed);
            }
            _ => return Err(Errno::EINVAL),
        }
        drop(items);
        super::POLL_WQ.wake_all();
        Ok(())
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
            let ready = f.poll() as u32 & (it.events | POLLERR as u32 | POLLHUP as u32);
            if ready == 0 {
                continue;
            }
            if it.events & EPOLLET != 0 {
                let g = f.poll_gen();
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
            items.remove(&k);
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
        let n = self.items.lock().len();
        WATCHES.fetch_sub(n, Ordering::Relaxed);
    }
}
