//! Advisory file locks: fcntl record locks (POSIX and OFD) and flock(2).
//!
//! The rules are `vfs::locks` (host-tested); here is the table that holds
//! them per inode, the blocking waits and the syscall layouts.
//!
//! Owners: a POSIX lock belongs to the descriptor table of the process
//! that took it (threads share it, fork gets a new one: Linux's
//! `current->files`), and goes when that process closes *any* descriptor
//! of the file or the table goes at exit ([`release_posix`], called by
//! `FdTable`). OFD and flock locks belong to the open file description and
//! go with its last reference ([`release_ofd`], called by `OpenFile`'s
//! drop). Both kinds of owner are numbers from [`new_owner`], so they never
//! collide.
//!
//! Kernel memory is bounded: at most [`MAX_LOCKS`] records exist at once
//! (a request that would need more gets ENOLCK), an inode's entry exists
//! only while it has locks or sleepers, and the wait-for map has one
//! entry per sleeping owner.

use abi::{Errno, KResult};
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;
use vfs::locks::{would_deadlock, FlockLocks, LockType, RangeLock, RangeLocks, OFFSET_MAX};

use super::file::OpenFile;
use crate::proc::sched::WaitQueue;
use crate::uaccess;

/// Most lock records (range locks and flock holders) at once, all
/// processes together: well under 1 MiB of heap (a BTreeMap entry
/// each).
pub const MAX_LOCKS: usize = 10_000;
/// How far the deadlock check follows the chain of waiting owners (Linux
/// uses 10 too).
const MAX_DEADLOCK_DEPTH: usize = 10;

const F_GETLK: u64 = 5;
const F_SETLK: u64 = 6;
const F_SETLKW: u64 = 7;
const F_OFD_GETLK: u64 = 36;
const F_OFD_SETLK: u64 = 37;
const F_OFD_SETLKW: u64 = 38;
const F_RDLCK: i16 = 0;
const F_WRLCK: i16 = 1;
const F_UNLCK: i16 = 2;

pub const LOCK_SH: u64 = 1;
pub const LOCK_EX: u64 = 2;
pub const LOCK_NB: u64 = 4;
pub const LOCK_UN: u64 = 8;

/// Which file a lock is on: the file system (0 for the tmpfs, the
/// disk's device number with bit 32 set for an ext4 mount) and the inode
/// number in it, so inode numbers of different file systems never share
/// a lock table entry.
pub type LockKey = (u64, u64);

static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

/// A fresh lock owner (a descriptor table or an open file description).
pub fn new_owner() -> u64 {
    NEXT_OWNER.fetch_add(1, Ordering::Relaxed)
}

/// One inode's locks and the processes waiting for them.
struct InodeLocks {
    posix: RangeLocks,
    flock: FlockLocks,
    /// Sleepers in F_SETLKW/flock; woken whenever a lock goes or shrinks.
    /// A sleeper holds a clone, which keeps this entry in the table.
    wq: Arc<WaitQueue>,
}

struct Table {
    inodes: BTreeMap<LockKey, InodeLocks>,
    /// Records in all inodes (bounded by MAX_LOCKS).
    records: usize,
    /// Which owner each sleeping POSIX owner waits for (deadlock check).
    waits: BTreeMap<u64, u64>,
}

static TABLE: Mutex<Table> = Mutex::new(Table {
    inodes: BTreeMap::new(),
    records: 0,
    waits: BTreeMap::new(),
});

/// Runs `f` on the table. Interrupts stay off while it is held: the
/// sleepers' readiness checks take it with interrupts off, and a holder
/// never waits for anything, so nobody spins long.
fn with<R>(f: impl FnOnce(&mut Table) -> R) -> R {
    hal::cpu::without_interrupts(|| f(&mut TABLE.lock()))
}

impl Table {
    fn entry(&mut self, ino: LockKey) -> &mut InodeLocks {
        self.inodes.entry(ino).or_insert_with(|| InodeLocks {
            posix: RangeLocks::new(),
            flock: FlockLocks::new(),
            wq: Arc::new(WaitQueue::new()),
        })
    }

    /// Drops `ino`'s entry once it has no lock and no sleeper.
    fn tidy(&mut self, ino: LockKey) {
        if let Some(e) = self.inodes.get(&ino) {
            if e.posix.is_empty() && e.flock.is_empty() && Arc::strong_count(&e.wq) == 1 {
                self.inodes.remove(&ino);
            }
        }
    }

    fn budget(&self) -> usize {
        MAX_LOCKS.saturating_sub(self.records)
    }

    fn account(&mut self, delta: isize) {
        self.records = self.records.saturating_add_signed(delta);
    }
}

/// A record-lock request, resolved to absolute bytes.
#[derive(Clone, Copy)]
struct Request {
    ino: LockKey,
    owner: u64,
    pid: i32,
    ty: Option<LockType>,
    start: u64,
    end: u64,
    /// A POSIX (not OFD) lock: only those take part in deadlock checks.
    posix: bool,
}

enum Attempt {
    Done(Arc<WaitQueue>),
    Blocked(RangeLock),
}

fn attempt(t: &mut Table, r: &Request) -> KResult<Attempt> {
    let budget = t.budget();
    let e = t.entry(r.ino);
    if let Some(ty) = r.ty {
        if let Some(c) = e.posix.conflict(r.owner, ty, r.start, r.end) {
            return Ok(Attempt::Blocked(c));
        }
    }
    let delta = e
        .posix
        .set(r.owner, r.pid, r.ty, r.start, r.end, budget)
        .map_err(|_| Errno::ENOLCK);
    let wq = e.wq.clone();
    match delta {
        Ok(d) => {
            t.account(d);
            Ok(Attempt::Done(wq))
        }
        Err(err) => Err(err),
    }
}

/// F_SETLK (`wait` false: EAGAIN on conflict) and F_SETLKW.
fn set(r: Request, wait: bool) -> KResult<()> {
    let res = if wait {
        set_wait(&r)
    } else {
        match with(|t| attempt(t, &r)) {
            Ok(Attempt::Done(wq)) => {
                wq.wake_all();
                Ok(())
            }
            Ok(Attempt::Blocked(_)) => Err(Errno::EAGAIN),
            Err(e) => Err(e),
        }
    };
    // Every queue clone is gone now, so an empty entry can go.
    with(|t| t.tidy(r.ino));
    res
}

fn set_wait(r: &Request) -> KResult<()> {
    let wq = with(|t| t.entry(r.ino).wq.clone());
    let res = wq.wait_until(|| {
        with(|t| match attempt(t, r) {
            Ok(Attempt::Done(_)) => {
                t.waits.remove(&r.owner);
                Some(Ok(()))
            }
            Ok(Attempt::Blocked(c)) => {
                if r.posix && would_deadlock(&t.waits, r.owner, c.owner, MAX_DEADLOCK_DEPTH) {
                    t.waits.remove(&r.owner);
                    return Some(Err(Errno::EDEADLK));
                }
                if r.posix {
                    t.waits.insert(r.owner, c.owner);
                }
                None
            }
            Err(e) => Some(Err(e)),
        })
    });
    with(|t| {
        t.waits.remove(&r.owner);
    });
    if matches!(res, Ok(Ok(()))) {
        wq.wake_all();
    }
    res?
}

/// The lock that would stop `r` (F_GETLK).
fn test(r: &Request) -> Option<RangeLock> {
    let ty = r.ty?;
    with(|t| {
        t.inodes
            .get(&r.ino)
            .and_then(|e| e.posix.conflict(r.owner, ty, r.start, r.end))
    })
}

/// Drops `owner`'s POSIX locks on `ino` (a descriptor of it closed).
pub fn release_posix(owner: u64, ino: LockKey) {
    release(owner, ino, false);
}

/// Drops the OFD and flock locks of the open file description `owner`.
pub fn release_ofd(owner: u64, ino: LockKey) {
    release(owner, ino, true);
}

fn release(owner: u64, ino: LockKey, flock_too: bool) {
    let wq = with(|t| {
        let e = t.inodes.get_mut(&ino)?;
        let mut n = e.posix.remove_owner(owner);
        if flock_too {
            n += e.flock.remove(owner);
        }
        let wq = (n > 0).then(|| e.wq.clone());
        t.records = t.records.saturating_sub(n);
        wq
    });
    if let Some(wq) = wq {
        wq.wake_all();
        drop(wq);
        with(|t| t.tidy(ino));
    }
}

// struct flock (x86_64): l_type i16 @0, l_whence i16 @2, l_start i64 @8,
// l_len i64 @16, l_pid i32 @24; 32 bytes.
const FLOCK_SIZE: usize = 32;

/// fcntl(2)'s lock commands on `f`; `files_owner` is the caller's
/// descriptor table (the POSIX owner). Returns None for other commands.
pub fn fcntl(f: &Arc<OpenFile>, files_owner: u64, cmd: u64, arg: u64) -> Option<KResult<u64>> {
    let ofd = match cmd {
        F_GETLK | F_SETLK | F_SETLKW => false,
        F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW => true,
        _ => return None,
    };
    Some(fcntl_lock(f, files_owner, cmd, arg, ofd))
}

fn fcntl_lock(f: &Arc<OpenFile>, files_owner: u64, cmd: u64, arg: u64, ofd: bool) -> KResult<u64> {
    let mut raw = [0u8; FLOCK_SIZE];
    uaccess::copy_in(arg, &mut raw)?;
    let l_type = i16::from_le_bytes([raw[0], raw[1]]);
    let whence = i16::from_le_bytes([raw[2], raw[3]]);
    let l_start = i64::from_le_bytes(raw[8..16].try_into().unwrap_or_default());
    let l_len = i64::from_le_bytes(raw[16..24].try_into().unwrap_or_default());
    let l_pid = i32::from_le_bytes(raw[24..28].try_into().unwrap_or_default());
    // OFD requests must leave l_pid zero (Linux: EINVAL otherwise).
    if ofd && l_pid != 0 {
        return Err(Errno::EINVAL);
    }
    let ty = match l_type {
        F_RDLCK => Some(LockType::Read),
        F_WRLCK => Some(LockType::Write),
        F_UNLCK => None,
        _ => return Err(Errno::EINVAL),
    };
    let getlk = cmd == F_GETLK || cmd == F_OFD_GETLK;
    if getlk && ty.is_none() {
        return Err(Errno::EINVAL);
    }
    let ino = f.lock_key().ok_or(Errno::EINVAL)?;
    // Setting a lock needs the matching access (EBADF), testing does not.
    if !getlk {
        match ty {
            Some(LockType::Read) if !f.readable() => return Err(Errno::EBADF),
            Some(LockType::Write) if !f.writable() => return Err(Errno::EBADF),
            _ => {}
        }
    }
    let base: i64 = match whence {
        0 => 0,
        1 => *f.pos.lock() as i64,
        2 => f.size()? as i64,
        _ => return Err(Errno::EINVAL),
    };
    let (start, end) = range(base, l_start, l_len)?;
    let owner = if ofd { f.lock_owner() } else { files_owner };
    let me = crate::proc::sched::current();
    let r = Request {
        ino,
        owner,
        pid: if ofd { -1 } else { me.tgid as i32 },
        ty,
        start,
        end,
        posix: !ofd,
    };
    if getlk {
        let mut out = raw;
        match test(&r) {
            Some(c) => {
                let ty = match c.ty {
                    LockType::Read => F_RDLCK,
                    LockType::Write => F_WRLCK,
                };
                out[0..2].copy_from_slice(&ty.to_le_bytes());
                out[2..4].copy_from_slice(&0i16.to_le_bytes());
                out[8..16].copy_from_slice(&(c.start as i64).to_le_bytes());
                let len = if c.end == OFFSET_MAX {
                    0
                } else {
                    (c.end - c.start + 1) as i64
                };
                out[16..24].copy_from_slice(&len.to_le_bytes());
                out[24..28].copy_from_slice(&c.pid.to_le_bytes());
            }
            None => out[0..2].copy_from_slice(&F_UNLCK.to_le_bytes()),
        }
        uaccess::copy_out(arg, &out)?;
        return Ok(0);
    }
    set(r, cmd == F_SETLKW || cmd == F_OFD_SETLKW)?;
    Ok(0)
}

/// Linux's `flock_to_posix_lock`: the inclusive byte range of a request
/// whose `l_start` counts from `base`.
fn range(base: i64, l_start: i64, l_len: i64) -> KResult<(u64, u64)> {
    let max = OFFSET_MAX as i64;
    if base < 0 {
        return Err(Errno::EOVERFLOW);
    }
    if l_start > max - base {
        return Err(Errno::EOVERFLOW);
    }
    let mut start = base + l_start;
    if start < 0 {
        return Err(Errno::EINVAL);
    }
    let end;
    if l_len > 0 {
        if l_len - 1 > max - start {
            return Err(Errno::EOVERFLOW);
        }
        end = start + l_len - 1;
    } else if l_len < 0 {
        end = start - 1;
        start = start.checked_add(l_len).ok_or(Errno::EINVAL)?;
        if start < 0 {
            return Err(Errno::EINVAL);
        }
    } else {
        end = max;
    }
    Ok((start as u64, end as u64))
}

/// flock(2) on an open file.
pub fn flock(f: &Arc<OpenFile>, op: u64) -> KResult<u64> {
    let nb = op & LOCK_NB != 0;
    let ty = match op & !LOCK_NB {
        LOCK_SH => Some(LockType::Read),
        LOCK_EX => Some(LockType::Write),
        LOCK_UN => None,
        _ => return Err(Errno::EINVAL),
    };
    // Any file with an inode; others (pipes, devices) have nothing to
    // lock here and succeed, as a lock nobody else can see.
    let Some(ino) = f.lock_key() else {
        return Ok(0);
    };
    let owner = f.lock_owner();
    // A conversion is not atomic, as on Linux: the old lock goes first
    // (and its waiters wake), then the new one is asked for.
    let (held, wq) = with(|t| {
        let e = t.entry(ino);
        let held = e.flock.held(owner);
        let wq = e.wq.clone();
        if held.is_some() && held != ty {
            e.flock.remove(owner);
            t.records = t.records.saturating_sub(1);
        }
        (held, wq)
    });
    let finish = |wq: Arc<WaitQueue>, r: KResult<u64>| {
        wq.wake_all();
        drop(wq);
        with(|t| t.tidy(ino));
        r
    };
    let Some(ty) = ty else {
        return finish(wq, Ok(0));
    };
    if held == Some(ty) {
        return finish(wq, Ok(0));
    }
    let try_take = || {
        with(|t| {
            let full = t.budget() == 0;
            let e = t.entry(ino);
            if e.flock.conflict(owner, ty).is_some() {
                return None;
            }
            if full {
                return Some(Err(Errno::ENOLCK));
            }
            let d = e.flock.set(owner, ty);
            t.account(d);
            Some(Ok(0))
        })
    };
    let r = if nb {
        try_take().unwrap_or(Err(Errno::EAGAIN))
    } else {
        wq.wait_until(try_take).and_then(|r| r)
    };
    finish(wq, r)
}
