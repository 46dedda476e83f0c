//! Processes that run on another machine of the cluster, with a deputy at
//! home (MOSIX's "home node"; docs/architecture.md, "Moving a process").
//!
//! `echo "move PID M[.T]" > /proc/braid` on the process's home machine
//! asks for a move; the process itself carries it out at its next return
//! to user mode ([`at_return`]): it stops, copies its registers, FPU state
//! and every page to machine M (stop-and-copy, `image`) over a TCP
//! connection of its own (`chan`), and stays at home as its own deputy
//! (`home`): frozen in the kernel, owning its pid, descriptors, cwd,
//! credentials, parent and children. Machine M runs the copy as a guest
//! process (`guest`) that answers getpid & co. with the home's ids and
//! sends every other system call home, with the pages it changed since
//! the last one; the deputy writes them into the home's memory, runs the
//! call through the normal syscall path as the process, and answers with
//! the registers and the pages the call (or a signal's delivery) changed,
//! and the mappings. `move PID home` brings it back; so do execve, a
//! clone that shares memory, a shared mapping, and any signal the guest
//! takes. If its machine leaves the view or the connection breaks, the
//! process goes on at home from its last system call (`home::resume`):
//! the deputy's registers and the home's memory are a checkpoint taken at
//! every answer.

mod chan;
mod guest;
mod home;
mod image;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;

use crate::proc::{Pid, Process};

/// Message kinds (`chan`).
pub(crate) mod kind {
    /// Home → guest machine: the whole process.
    pub const MOVE: u8 = 1;
    /// The guest runs (its local pid).
    pub const MOVE_OK: u8 = 2;
    /// The guest could not be built (errno).
    pub const MOVE_ERR: u8 = 3;
    /// Guest → home: a system call, with registers and changed pages.
    pub const SYSCALL: u8 = 4;
    /// Home → guest: the call's result: registers, mappings, pages.
    pub const RET: u8 = 5;
    /// Guest → home: the process comes back (registers, pages).
    pub const HOME: u8 = 6;
    /// Home → guest: come back at the next return to user mode.
    pub const RECALL: u8 = 7;
    /// Home → guest: stop (the process exited, was killed, or continues
    /// at home).
    pub const END: u8 = 8;
}

/// Counters /proc/braid prints.
pub struct Stats {
    pub moves_out: AtomicU64,
    pub moves_back: AtomicU64,
    pub moves_in: AtomicU64,
    pub move_failed: AtomicU64,
    pub forwarded: AtomicU64,
    pub served: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub pages_sent: AtomicU64,
    pub corrupt: AtomicU64,
    pub unexpected: AtomicU64,
    pub killed: AtomicU64,
    pub resumed: AtomicU64,
    /// Processes that came home ahead of this machine's clock and waited.
    pub clock_waits: AtomicU64,
}

pub static STATS: Stats = Stats {
    moves_out: AtomicU64::new(0),
    moves_back: AtomicU64::new(0),
    moves_in: AtomicU64::new(0),
    move_failed: AtomicU64::new(0),
    forwarded: AtomicU64::new(0),
    served: AtomicU64::new(0),
    bytes_sent: AtomicU64::new(0),
    bytes_received: AtomicU64::new(0),
    pages_sent: AtomicU64::new(0),
    corrupt: AtomicU64::new(0),
    unexpected: AtomicU64::new(0),
    killed: AtomicU64::new(0),
    resumed: AtomicU64::new(0),
    clock_waits: AtomicU64::new(0),
};

/// A process of this machine running on another one.
pub struct Deputy {
    pub pid: Pid,
    pub machine: usize,
    pub remote_pid: AtomicU32,
    /// `move PID home` (or a signal) asked for it back.
    pub recall: AtomicBool,
    /// Its machine left the view: the process goes on here.
    pub lost: AtomicBool,
    /// The guest came home (its connection closes by design).
    pub closing: AtomicBool,
    pub syscalls: AtomicU64,
    pub since: u64,
    /// The process's CLOCK_MONOTONIC when its guest sent the last state
    /// this machine took in (`home::clock_passes`).
    pub clock: AtomicU64,
    /// The connection to its guest (taken by whoever ends it).
    pub chan: Mutex<Option<chan::Chan>>,
}

/// A process of another machine running here.
pub struct Guest {
    pub local: Pid,
    pub home: usize,
    pub home_pid: Pid,
    pub home_ppid: Pid,
    /// The connection to its home (taken by whoever ends it).
    pub chan: Mutex<Option<chan::Chan>>,
    /// Its home wants it back at its next return to user mode.
    pub recall: AtomicBool,
    /// Its home said it ended (or its home is gone): it dies.
    pub ended: AtomicBool,
    /// Its thread is waiting for an answer (the boundary leaves its
    /// channel alone).
    pub in_call: AtomicBool,
    pub mirror: Mutex<image::Mirror>,
    pub syscalls: AtomicU64,
    /// How much later than this machine's its home's monotonic clock
    /// reads (ns): what the guest's monotonic clocks add, in its own
    /// vvar page (`vvar`) and in clock_gettime. Only
    /// ever raised, so the guest's clock never goes back.
    pub clock_shift: AtomicI64,
    pub vvar: Option<OwnedFrame>,
}

/// One reference to a frame, put back when dropped.
pub struct OwnedFrame(pub u64);

impl Drop for OwnedFrame {
    fn drop(&mut self) {
        crate::mm::refcount::put(self.0);
    }
}

/// Moves asked for and not yet started: pid → (machine, torus).
static PENDING: Mutex<BTreeMap<Pid, (usize, Option<usize>)>> = Mutex::new(BTreeMap::new());
/// Processes the return path must look at: pending moves and recalled
/// guests (one load on the common path).
static ATTENTION: AtomicUsize = AtomicUsize::new(0);
static DEPUTIES: Mutex<BTreeMap<Pid, Arc<Deputy>>> = Mutex::new(BTreeMap::new());
static GUESTS: Mutex<BTreeMap<Pid, Arc<Guest>>> = Mutex::new(BTreeMap::new());
/// Guests on this machine (the syscall path's one load).
static N_GUESTS: AtomicUsize = AtomicUsize::new(0);
static READY: AtomicBool = AtomicBool::new(false);
static NEXT_TICK: AtomicU64 = AtomicU64::new(0);

/// Opens the listener (from `cluster::init`).
pub fn init() {
    if !chan::reserve_ports() {
        crate::klog!(
            "cluster: TCP ports {}.. are taken; processes cannot move",
            chan::PORT
        );
        return;
    }
    if guest::listen() {
        READY.store(true, Ordering::Release);
    }
}

/// `move PID M[.T]` / `move PID home` from /proc/braid.
pub fn request(arg: &str) -> abi::KResult<()> {
    use abi::Errno;
    if !READY.load(Ordering::Acquire) {
        return Err(Errno::ENOSYS);
    }
    let (pid, to) = arg.trim().split_once(' ').ok_or(Errno::EINVAL)?;
    let pid: Pid = pid.trim().parse().map_err(|_| Errno::EINVAL)?;
    let to = to.trim();
    let (me, peers, members) = super::machines().ok_or(Errno::ENOSYS)?;
    let (target, torus) = if to == "home" {
        (me, None)
    } else {
        let (m, t) = match to.split_once('.') {
            Some((m, t)) => (m, Some(parse_torus(t).ok_or(Errno::EINVAL)?)),
            None => (to, None),
        };
        let m: usize = m.parse().map_err(|_| Errno::EINVAL)?;
        if m >= peers || t.is_some_and(|t| t >= 64) || (m == me && t.is_some()) {
            return Err(Errno::EINVAL);
        }
        if m != me && members & (1 << m) == 0 {
            return Err(Errno::EHOSTUNREACH);
        }
        (m, t)
    };
    let p = crate::proc::lookup(pid).ok_or(Errno::ESRCH)?;
    if !p.is_leader() || p.is_zombie() || p.is_dead_process() {
        return Err(Errno::ESRCH);
    }
    if let Some(d) = DEPUTIES.lock().get(&pid).cloned() {
        if target == d.machine {
            return Err(Errno::EALREADY);
        }
        if target != me {
            // From one remote machine to another: through home (it
            // comes back, and `at_return` starts the next move).
            queue_move(pid, target, torus);
        }
        d.recall.store(true, Ordering::Release);
        chan::WQ.wake_all();
        return Ok(());
    }
    if target == me {
        return Err(Errno::EINVAL); // already home
    }
    movable(&p)?;
    start_move(&p, target, torus);
    Ok(())
}

/// Whether process `p` of this machine can move to another one now: Err
/// says why not.
pub(crate) fn movable(p: &Process) -> abi::KResult<()> {
    use abi::Errno;
    if p.pid == 1 {
        return Err(Errno::EPERM);
    }
    if GUESTS.lock().values().any(|g| g.local == p.pid) {
        return Err(Errno::ENOSYS); // a guest moves only home, from its home
    }
    if DEPUTIES.lock().contains_key(&p.pid) {
        return Err(Errno::EALREADY);
    }
    if p.group.live.load(Ordering::Acquire) != 1 || p.group.threads.lock().len() != 1 {
        return Err(Errno::EBUSY); // threads: not yet
    }
    if let Some(mm) = p.mm.lock().clone() {
        if !image::mirrorable(&mm.lock()) {
            return Err(Errno::EBUSY); // shared memory stays here
        }
    }
    Ok(())
}

/// Asks `p` to move to `machine` at its next return to user mode.
pub(crate) fn start_move(p: &Arc<Process>, machine: usize, torus: Option<usize>) {
    queue_move(p.pid, machine, torus);
    crate::proc::sched::notify(p, crate::proc::work::SIGNALS);
}

fn queue_move(pid: Pid, machine: usize, torus: Option<usize>) {
    let mut q = PENDING.lock();
    if q.insert(pid, (machine, torus)).is_none() {
        ATTENTION.fetch_add(1, Ordering::AcqRel);
    }
}

/// Whether `pid` has a move asked for and not yet started.
pub(crate) fn move_pending(pid: Pid) -> bool {
    ATTENTION.load(Ordering::Acquire) != 0 && PENDING.lock().contains_key(&pid)
}

/// A torus of a machine: its number or its letter (`1.B` is torus 1).
fn parse_torus(t: &str) -> Option<usize> {
    let c = t.as_bytes();
    t.parse::<usize>()
        .ok()
        .or_else(|| (c.len() == 1 && c[0].is_ascii_uppercase()).then(|| usize::from(c[0] - b'A')))
}

/// Whether `p` has migration work at its next return to user mode (the
/// scheduler raises the return path's work bit for it).
/// Inlined: every context switch asks, and almost always nothing moves.
#[inline(always)]
pub fn wants_attention(p: &Process) -> bool {
    ATTENTION.load(Ordering::Acquire) != 0 && attention_for(p)
}

#[cold]
#[inline(never)]
fn attention_for(p: &Process) -> bool {
    PENDING.lock().contains_key(&p.pid)
        || GUESTS
            .lock()
            .get(&p.pid)
            .is_some_and(|g| g.recall.load(Ordering::Acquire))
}

/// The return path to user mode, before signal delivery: starts a move
/// asked for (and serves the process from home until it comes back), or
/// sends a recalled guest home.
pub fn at_return(frame: &mut hal::idt::TrapFrame) {
    if ATTENTION.load(Ordering::Acquire) == 0 && N_GUESTS.load(Ordering::Acquire) == 0 {
        return;
    }
    let pid = crate::proc::sched::with_current(|me| me.pid);
    if N_GUESTS.load(Ordering::Acquire) != 0 {
        let g = GUESTS.lock().get(&pid).cloned();
        if let Some(g) = g {
            guest::at_return(&g, frame);
            return;
        }
    }
    // A move asked for while the process was away (to a third machine)
    // is found here again when it is back.
    loop {
        let req = {
            let mut q = PENDING.lock();
            let r = q.remove(&pid);
            if r.is_some() {
                ATTENTION.fetch_sub(1, Ordering::AcqRel);
            }
            r
        };
        let Some((machine, torus)) = req else {
            return;
        };
        home::run(frame, machine, torus);
    }
}

/// The syscall entry: true when the current process is a guest and the
/// call was handled (sent home, or ended the guest).
/// Inlined: every syscall asks, and a machine with no guest answers with
/// one load.
#[inline(always)]
pub fn guest_syscall(frame: &mut hal::idt::TrapFrame) -> bool {
    N_GUESTS.load(Ordering::Acquire) != 0 && guest_syscall_slow(frame)
}

#[cold]
#[inline(never)]
fn guest_syscall_slow(frame: &mut hal::idt::TrapFrame) -> bool {
    let pid = crate::proc::sched::with_current(|me| me.pid);
    let g = GUESTS.lock().get(&pid).cloned();
    match g {
        Some(g) => guest::syscall(&g, frame),
        None => false,
    }
}

/// A process exits: a deputy tells its guest to stop; a guest's
/// connection closes (unless it had already come home or ended, the
/// process then goes on at home from its last call: a guest killed here
/// is a lost copy, not a dead process).
pub fn on_exit(p: &Process) {
    if ATTENTION.load(Ordering::Acquire) != 0 && PENDING.lock().remove(&p.pid).is_some() {
        ATTENTION.fetch_sub(1, Ordering::AcqRel);
    }
    if N_GUESTS.load(Ordering::Acquire) != 0 {
        let g = GUESTS.lock().remove(&p.pid);
        if let Some(g) = g {
            N_GUESTS.fetch_sub(1, Ordering::AcqRel);
            if g.recall.load(Ordering::Acquire) {
                ATTENTION.fetch_sub(1, Ordering::AcqRel);
            }
            guest::exited(&g);
        }
    }
    home::on_exit(p.pid);
}

/// Whether `pid` is a guest (its zombie is reaped by the kernel: its
/// parent is at home).
pub fn is_guest_pid(pid: Pid) -> bool {
    guest::ended_pid(pid)
}

/// Machine `m` left the view: processes here that run there go on here
/// from their last system call, and guests from there end.
pub fn machine_gone(m: usize) {
    for d in DEPUTIES.lock().values() {
        if d.machine == m {
            d.lost.store(true, Ordering::Release);
        }
    }
    for g in GUESTS.lock().values() {
        if g.home == m {
            guest::end(g);
        }
    }
    chan::WQ.wake_all();
}

/// CPU 0's boundary: accepts incoming moves, watches guests' channels for
/// their home's word, wakes sleepers now and then (a deputy notices a
/// broken connection that way), removes closed sockets.
pub fn service(now: u64) {
    if !READY.load(Ordering::Acquire) {
        return;
    }
    if now < NEXT_TICK.load(Ordering::Relaxed) {
        // A move being received is read at every boundary (its socket's
        // window sets the copy's pace); the rest waits for the tick.
        guest::receive_moves(now);
        return;
    }
    NEXT_TICK.store(now + chan::TICK_NS, Ordering::Relaxed);
    guest::service();
    chan::sweep(now);
    chan::WQ.wake_all();
}

/// The migration part of /proc/braid.
pub fn report() -> String {
    if !READY.load(Ordering::Acquire) {
        return String::new();
    }
    let s = &STATS;
    let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut out = format!(
        "migrate moves_out {} moves_back {} moves_in {} move_failed {} forwarded {} served {} bytes_sent {} bytes_received {} pages_sent {} corrupt {} unexpected {} killed {} resumed {} clock_waits {}\n",
        l(&s.moves_out),
        l(&s.moves_back),
        l(&s.moves_in),
        l(&s.move_failed),
        l(&s.forwarded),
        l(&s.served),
        l(&s.bytes_sent),
        l(&s.bytes_received),
        l(&s.pages_sent),
        l(&s.corrupt),
        l(&s.unexpected),
        l(&s.killed),
        l(&s.resumed),
        l(&s.clock_waits),
    );
    let now = hal::time::now_ns();
    for d in DEPUTIES.lock().values() {
        out += &format!(
            "remote {} machine {} remote_pid {} syscalls {} for_ms {}\n",
            d.pid,
            d.machine,
            d.remote_pid.load(Ordering::Relaxed),
            d.syscalls.load(Ordering::Relaxed),
            now.saturating_sub(d.since) / 1_000_000
        );
    }
    for g in GUESTS.lock().values() {
        out += &format!(
            "guest {} home {} home_pid {} syscalls {}\n",
            g.local,
            g.home,
            g.home_pid,
            g.syscalls.load(Ordering::Relaxed)
        );
    }
    out
}
