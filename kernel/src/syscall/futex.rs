//! futex(2): FUTEX_WAIT, FUTEX_WAKE and their BITSET forms with timeouts,
//! FUTEX_REQUEUE/CMP_REQUEUE and FUTEX_WAKE_OP; what glibc's locks,
//! condition variables, pthread_join and CLONE_CHILD_CLEARTID need.
//! Robust lists (owner death) are in proc/robust.rs.
//!
//! A waiter exists only while its process sleeps here: a bucket lists
//! the sleeping processes, and what each waits for is in the process
//! itself ([`Slot`]; a process sleeps on one word at a time), so a call
//! that does not sleep (the word changed, a bad address) leaves nothing
//! behind and a wait or wake allocates nothing (a heap allocation and
//! free per wait were a third of a futex ping-pong's instructions). Waiters are keyed as Linux keys them: a word in private memory
//! by (address space, address), so a wake in one process never reaches
//! another's waiter at the same address; a word in a MAP_SHARED mapping
//! by the physical location of the word, which every mapper shares.

use abi::{Errno, KResult};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use spin::Mutex;

use crate::proc::sched::{self, Deadlines};
use crate::proc::Process;
use crate::uaccess;

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
const FUTEX_WAKE_OP: u64 = 5;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;
const FUTEX_PRIVATE_FLAG: u64 = 128;
const FUTEX_CLOCK_REALTIME: u64 = 256;
const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Key {
    /// (address space, user address).
    Private(usize, u64),
    /// Physical address of the word.
    Shared(u64),
}

/// What a process sleeping in FUTEX_WAIT waits for. Written by the
/// waiter before it lists itself in its key's bucket; read by wakers
/// under that bucket's lock.
pub struct Slot {
    /// Changed only by a requeue, under both buckets' locks.
    key: Mutex<Key>,
    bitset: AtomicU32,
    /// ns on the monotonic clock, u64::MAX for none.
    deadline: AtomicU64,
    /// Set by the waker that took the process out of its bucket.
    woken: AtomicBool,
}

impl Slot {
    pub const fn new() -> Slot {
        Slot {
            key: Mutex::new(Key::Shared(0)),
            bitset: AtomicU32::new(0),
            deadline: AtomicU64::new(u64::MAX),
            woken: AtomicBool::new(false),
        }
    }
}

impl Default for Slot {
    fn default() -> Self {
        Slot::new()
    }
}

const BUCKETS: usize = 64;
static TABLE: [Mutex<Vec<Arc<Process>>>; BUCKETS] = [const { Mutex::new(Vec::new()) }; BUCKETS];
/// The earliest deadline of a timed waiter ([`expire`]).
static DUE: Deadlines = Deadlines::new();

/// Waiters queued in all buckets (/proc/kobjects).
pub fn waiters() -> usize {
    TABLE.iter().map(|b| b.lock().len()).sum()
}

fn bucket(k: Key) -> &'static Mutex<Vec<Arc<Process>>> {
    let h = match k {
        Key::Private(mm, a) => (mm as u64 >> 4) ^ (a >> 2),
        Key::Shared(pa) => pa >> 2,
    };
    // Fibonacci hashing: the words of one lock array spread over buckets.
    &TABLE[(h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize % BUCKETS]
}

/// The key of the word at `uaddr` for the current process. The word must
/// be present (read it first): a shared word is keyed by its frame.
fn key_of(uaddr: u64, private: bool) -> KResult<Key> {
    let me = sched::current();
    let mm = me.mm();
    let mm_id = Arc::as_ptr(&mm) as usize;
    if private {
        return Ok(Key::Private(mm_id, uaddr));
    }
    let m = mm.lock();
    let vma = m.vmas.find(uaddr).ok_or(Errno::EFAULT)?;
    if !vma.shared {
        return Ok(Key::Private(mm_id, uaddr));
    }
    let pa = m.frame_at(uaddr & !0xfff).ok_or(Errno::EFAULT)?;
    Ok(Key::Shared(pa + (uaddr & 0xfff)))
}

/// Wakes at most `n` waiters on `k` whose bitset meets `bitset`; returns
/// how many.
fn wake_key(k: Key, n: u32, bitset: u32) -> u32 {
    // The first few on the stack (a lock's or a join's wake takes one),
    // more only for a broadcast; all under one hold of the bucket lock,
    // so that the count is of the waiters there at the wake, as on Linux.
    const ON_STACK: usize = 4;
    let mut first: [Option<Arc<Process>>; ON_STACK] = [const { None }; ON_STACK];
    let mut rest: Vec<Arc<Process>> = Vec::new();
    let woken = hal::cpu::without_interrupts(|| {
        let mut b = bucket(k).lock();
        let (mut i, mut woken) = (0, 0);
        while i < b.len() && woken < n {
            let f = &b[i].futex;
            if *f.key.lock() != k || f.bitset.load(Ordering::Relaxed) & bitset == 0 {
                i += 1;
                continue;
            }
            // Out of memory for a long broadcast: the rest stay listed,
            // and the count says how many were woken.
            if woken as usize >= ON_STACK && rest.try_reserve(1).is_err() {
                break;
            }
            let p = b.swap_remove(i);
            p.futex.woken.store(true, Ordering::Release);
            match first.get_mut(woken as usize) {
                Some(slot) => *slot = Some(p),
                None => rest.push(p),
            }
            woken += 1;
        }
        woken
    });
    // Outside the bucket lock: waking takes run-queue locks.
    for p in first.iter().flatten().chain(rest.iter()) {
        sched::wake(p);
    }
    woken
}

/// Wakes one waiter on the current process's word at `addr` (the
/// CLONE_CHILD_CLEARTID wake of an exiting process, as Linux does it:
/// not private).
pub fn wake_addr(addr: u64, n: u32) {
    if let Ok(k) = key_of(addr, false) {
        wake_key(k, n, FUTEX_BITSET_MATCH_ANY);
    }
}

/// From the timer's deferred work: wakes timed waiters whose deadline has
/// passed (only when the earliest one is due).
pub fn expire(now: u64) {
    if !DUE.take_due(now) {
        return;
    }
    for b in &TABLE {
        let due: Vec<Arc<Process>> = hal::cpu::without_interrupts(|| {
            let b = b.lock();
            b.iter()
                .filter_map(|p| {
                    let d = p.futex.deadline.load(Ordering::Relaxed);
                    if d <= now {
                        Some(p.clone())
                    } else {
                        if d != u64::MAX {
                            DUE.note(d);
                        }
                        None
                    }
                })
                .collect()
        });
        for p in &due {
            sched::wake(p);
        }
    }
}

fn remove(me: &Arc<Process>) {
    // A requeue may move the waiter between our look at its key and our
    // taking that bucket's lock: look again until the key holds still.
    hal::cpu::without_interrupts(|| loop {
        let k = *me.futex.key.lock();
        let mut b = bucket(k).lock();
        if let Some(i) = b.iter().position(|x| Arc::ptr_eq(x, me)) {
            b.swap_remove(i);
            return;
        }
        if *me.futex.key.lock() == k {
            return;
        }
    });
}

/// Wakes up to `n` waiters on `from` and moves up to `m` more to `to`;
/// returns (woken, moved).
fn requeue(from: Key, to: Key, n: u32, m: u32) -> (u32, u32) {
    let woken = wake_key(from, n, FUTEX_BITSET_MATCH_ANY);
    if m == 0 || from == to {
        return (woken, 0);
    }
    let moved = hal::cpu::without_interrupts(|| {
        let (a, b) = (bucket(from), bucket(to));
        if core::ptr::eq(a, b) {
            let g = a.lock();
            let mut moved = 0;
            for p in g.iter() {
                let mut k = p.futex.key.lock();
                if moved < m && *k == from {
                    *k = to;
                    moved += 1;
                }
            }
            return moved;
        }
        // Two buckets are locked in address order, so two requeues in
        // opposite directions cannot deadlock.
        let (mut src, mut dst) = if (a as *const _ as usize) < (b as *const _ as usize) {
            let src = a.lock();
            (src, b.lock())
        } else {
            let dst = b.lock();
            (a.lock(), dst)
        };
        let mut moved = 0;
        let mut i = 0;
        while i < src.len() && moved < m {
            if *src[i].futex.key.lock() != from {
                i += 1;
                continue;
            }
            // No room in the target bucket: the rest stay where they are.
            if dst.try_reserve(1).is_err() {
                break;
            }
            let p = src.swap_remove(i);
            *p.futex.key.lock() = to;
            dst.push(p);
            moved += 1;
        }
        moved
    });
    (woken, moved)
}

/// Sleeps while the word at `uaddr` holds `val`, until a wake that meets
/// `bitset`, the `deadline` or a signal.
fn wait(uaddr: u64, val: u32, private: bool, bitset: u32, deadline: u64) -> KResult<u64> {
    if !uaddr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    // Fault the word in (a shared one is keyed by its frame), then
    // register, then compare: a waker that changes the word after our
    // comparison finds us registered.
    uaccess::read_u32(uaddr)?;
    let key = key_of(uaddr, private)?;
    let me = sched::current();
    let w = &me.futex;
    // Not listed anywhere now (its last wait ended unlisted), so no waker
    // or requeue looks at the slot while it is filled in.
    *w.key.lock() = key;
    w.bitset.store(bitset, Ordering::Relaxed);
    w.deadline.store(deadline, Ordering::Relaxed);
    w.woken.store(false, Ordering::Relaxed);
    hal::cpu::without_interrupts(|| {
        let mut b = bucket(key).lock();
        b.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
        b.push(me.clone());
        Ok::<(), Errno>(())
    })?;
    match uaccess::read_u32(uaddr) {
        Ok(v) if v == val => {}
        Ok(_) => {
            remove(&me);
            return Err(Errno::EAGAIN);
        }
        Err(e) => {
            remove(&me);
            return Err(e);
        }
    }
    let r = sched::block_until(|| {
        if w.woken.load(Ordering::Acquire) {
            return Some(Ok(0));
        }
        if deadline != u64::MAX {
            DUE.note(deadline);
            if hal::time::now_ns() >= deadline {
                return Some(Err(Errno::ETIMEDOUT));
            }
        }
        None
    });
    // Woken by a FUTEX_WAKE: it took us out. Otherwise (timeout, signal)
    // we leave now.
    if !w.woken.load(Ordering::Acquire) {
        remove(&me);
    }
    match r {
        Ok(r) => r,
        // A wake that raced with the signal still counts as a wake.
        Err(_) if w.woken.load(Ordering::Acquire) => Ok(0),
        Err(e) => Err(e),
    }
}

/// The bitset of an operation: any waiter for the plain forms, `val3`
/// for the BITSET ones (EINVAL if empty).
fn bitset_of(plain: bool, val3: u64) -> KResult<u32> {
    match (plain, val3 as u32) {
        (true, _) => Ok(FUTEX_BITSET_MATCH_ANY),
        (false, 0) => Err(Errno::EINVAL),
        (false, b) => Ok(b),
    }
}

/// futex(uaddr, op, val, timeout, uaddr2, val3).
pub fn futex(uaddr: u64, op: u64, val: u64, timeout: u64, uaddr2: u64, val3: u64) -> KResult<u64> {
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    if op & FUTEX_CLOCK_REALTIME != 0 && cmd != FUTEX_WAIT_BITSET {
        return Err(Errno::ENOSYS);
    }
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = bitset_of(cmd == FUTEX_WAIT, val3)?;
            // FUTEX_WAIT's timeout is relative; FUTEX_WAIT_BITSET's is an
            // absolute time on CLOCK_MONOTONIC, or CLOCK_REALTIME with
            // FUTEX_CLOCK_REALTIME.
            let deadline = match timeout {
                0 => u64::MAX,
                t if cmd == FUTEX_WAIT => {
                    hal::time::now_ns().saturating_add(super::time::get_timespec(t)?)
                }
                t => crate::clock::abs_to_monotonic(
                    if op & FUTEX_CLOCK_REALTIME != 0 { 0 } else { 1 },
                    super::time::get_timespec(t)?,
                ),
            };
            wait(uaddr, val as u32, private, bitset, deadline)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = bitset_of(cmd == FUTEX_WAKE, val3)?;
            if !uaddr.is_multiple_of(4) {
                return Err(Errno::EINVAL);
            }
            // A shared word is keyed by its frame: it must be present.
            if !private {
                uaccess::read_u32(uaddr)?;
            }
            let n = (val as u32).min(i32::MAX as u32);
            Ok(u64::from(wake_key(key_of(uaddr, private)?, n, bitset)))
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            // val: how many to wake; the timeout argument: how many to move.
            let (n, m) = (val as i32, timeout as i32);
            if n < 0 || m < 0 || !uaddr.is_multiple_of(4) || !uaddr2.is_multiple_of(4) {
                return Err(Errno::EINVAL);
            }
            let cur = uaccess::read_u32(uaddr)?;
            uaccess::read_u32(uaddr2)?;
            if cmd == FUTEX_CMP_REQUEUE && cur != val3 as u32 {
                return Err(Errno::EAGAIN);
            }
            let (from, to) = (key_of(uaddr, private)?, key_of(uaddr2, private)?);
            let (woken, moved) = requeue(from, to, n as u32, m as u32);
            // Linux returns woken + moved for both (futex(2) says only
            // the woken for REQUEUE; the kernel counts both).
            Ok(u64::from(woken + moved))
        }
        FUTEX_WAKE_OP => {
            let (n, n2) = (
                (val as u32).min(i32::MAX as u32),
                (timeout as u32).min(i32::MAX as u32),
            );
            if !uaddr.is_multiple_of(4) {
                return Err(Errno::EINVAL);
            }
            let op = WakeOp::decode(val3 as u32)?;
            let old = uaccess::update_u32(uaddr2, |v| op.apply(v))?;
            if !private {
                uaccess::read_u32(uaddr)?;
            }
            let mut woken = wake_key(key_of(uaddr, private)?, n, FUTEX_BITSET_MATCH_ANY);
            if op.compare(old) {
                woken += wake_key(key_of(uaddr2, private)?, n2, FUTEX_BITSET_MATCH_ANY);
            }
            Ok(u64::from(woken))
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// FUTEX_WAKE_OP's encoded operation: `*uaddr2 = op(*uaddr2, oparg)`,
/// then a second wake if `cmp(old, cmparg)`.
struct WakeOp {
    op: u32,
    oparg: u32,
    cmp: u32,
    cmparg: u32,
}

impl WakeOp {
    fn decode(v: u32) -> KResult<WakeOp> {
        let (op, cmp) = ((v >> 28) & 0xf, (v >> 24) & 0xf);
        // FUTEX_OP_OPARG_SHIFT (8): the argument is 1 << oparg.
        let raw = sign_extend12((v >> 12) & 0xfff);
        let oparg = if op & 8 != 0 {
            if raw > 31 {
                return Err(Errno::EINVAL);
            }
            1u32 << raw
        } else {
            raw
        };
        if op & 7 > 4 || cmp > 5 {
            return Err(Errno::ENOSYS);
        }
        Ok(WakeOp {
            op: op & 7,
            oparg,
            cmp,
            cmparg: sign_extend12(v & 0xfff),
        })
    }

    fn apply(&self, v: u32) -> u32 {
        match self.op {
            0 => self.oparg,                 // SET
            1 => v.wrapping_add(self.oparg), // ADD
            2 => v | self.oparg,             // OR
            3 => v & !self.oparg,            // ANDN
            _ => v ^ self.oparg,             // XOR
        }
    }

    fn compare(&self, old: u32) -> bool {
        let (a, b) = (old as i32, self.cmparg as i32);
        match self.cmp {
            0 => a == b,
            1 => a != b,
            2 => a < b,
            3 => a <= b,
            4 => a > b,
            _ => a >= b,
        }
    }
}

/// A 12-bit field as Linux reads it (sign-extended).
fn sign_extend12(v: u32) -> u32 {
    (((v << 20) as i32) >> 20) as u32
}
