//! Load diffusion between machines: a machine with more runnable work per
//! CPU than its share moves CPU-bound processes of its own to the
//! machines below theirs, as the tori of one machine diffuse load between
//! CPUs.
//!
//! Every [`PERIOD_NS`], CPU 0 compares the rosters' loads (runnable
//! weight of each machine's tori that are up, fresh ones only): with
//! `total` the load of the view and `cap` its CPUs, a machine's share is
//! `total · its CPUs / cap`. This machine moves `floor(excess / 1024)`
//! processes (at most [`MAX_MOVES`] a round), each to a machine whose
//! deficit is a whole nice-0 task or more, largest first. Whole tasks
//! only, so two machines never trade one task back and forth (2 tasks on
//! 2 CPUs of one machine and 1 on another stay). Where they go is
//! `braid::placement::plan_moves`, property-tested on the host. Candidates are this
//! machine's own single-threaded processes (not init, not a guest of
//! another machine, not away already) that used at least half a CPU in
//! each of the last two periods: a short burst does not move anyone.
//! After moving, the balancer waits a period more, so the rosters show
//! the moves before the next decision. `cluster.balance=0` on the kernel
//! command line turns it off, `balance off|on` written to /proc/braid
//! turns it off or on (moves by hand still work).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use braid::placement::plan_moves;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use spin::Mutex;

use crate::proc::Pid;

/// How often the balancer looks.
const PERIOD_NS: u64 = 1_000_000_000;
/// Rosters older than this are not trusted (a machine sends one every
/// 200 ms).
const FRESH_NS: u64 = 600_000_000;
/// Most processes moved in one round.
const MAX_MOVES: usize = 4;

static ENABLED: AtomicBool = AtomicBool::new(true);
static NEXT: AtomicU64 = AtomicU64::new(0);
/// Moves the balancer asked for, and rounds that asked for any.
pub static MOVES: AtomicU64 = AtomicU64::new(0);
pub static ROUNDS: AtomicU64 = AtomicU64::new(0);

/// CPU time per process at the last look, and how many looks in a row
/// found it busy.
static SEEN: Mutex<BTreeMap<Pid, (u64, u32)>> = Mutex::new(BTreeMap::new());

/// Reads `cluster.balance=0` (from `cluster::init`).
pub fn init(cmdline: &str) {
    if crate::cmdline::get(cmdline, "cluster.balance") == Some("0") {
        ENABLED.store(false, Ordering::Release);
    }
}

/// `balance on|off` written to /proc/braid.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Release);
}

/// Whether the balancer runs (for /proc/braid).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

/// CPU 0's boundary.
pub fn step(now: u64) {
    let next = NEXT.load(Ordering::Relaxed);
    if now < next || !ENABLED.load(Ordering::Acquire) {
        return;
    }
    NEXT.store(now + PERIOD_NS, Ordering::Relaxed);
    let busy = busy_processes(now, next);
    let Some((me, _, _)) = super::machines() else {
        return;
    };
    let loads = super::machine_loads(now, FRESH_NS);
    let targets = plan_moves(me, &loads, busy.len().min(MAX_MOVES));
    if targets.is_empty() {
        return;
    }
    let mut moved = 0;
    for (p, m) in busy.iter().zip(targets) {
        crate::klog!(
            "cluster: balance: process {} ({}) moves to machine {m}",
            p.pid,
            p.info.lock().comm
        );
        super::migrate::start_move(p, m, None);
        moved += 1;
    }
    MOVES.fetch_add(moved, Ordering::Relaxed);
    ROUNDS.fetch_add(1, Ordering::Relaxed);
    // Let the moves happen and the rosters show them.
    NEXT.store(now + 2 * PERIOD_NS, Ordering::Relaxed);
}

/// This machine's processes that may move and were busy (half a CPU or
/// more) in each of the last two periods, busiest first.
fn busy_processes(now: u64, last: u64) -> Vec<alloc::sync::Arc<crate::proc::Process>> {
    let period = now.saturating_sub(last).max(1);
    let mut seen = SEEN.lock();
    let mut next = BTreeMap::new();
    let mut busy = Vec::new();
    for p in crate::proc::all() {
        if !p.is_leader() || p.is_zombie() || p.is_dead_process() {
            continue;
        }
        if super::migrate::movable(&p).is_err() || super::migrate::move_pending(p.pid) {
            continue;
        }
        let cpu = crate::proc::cputime::thread_ns(&p);
        let (before, streak) = seen.get(&p.pid).copied().unwrap_or((cpu, 0));
        let used = cpu.saturating_sub(before);
        let streak = if last != 0 && used * 2 >= period {
            streak + 1
        } else {
            0
        };
        next.insert(p.pid, (cpu, streak));
        if streak >= 2 {
            busy.push((used, p));
        }
    }
    *seen = next;
    busy.sort_by_key(|b| core::cmp::Reverse(b.0));
    busy.into_iter().map(|(_, p)| p).collect()
}
