//! The OOM killer: when a page fault finds no frame, kill the process
//! whose death frees the most, by Linux's rule (`oom_badness` in
//! mm/oom_kill.c): badness = resident pages + page-table pages (+ swap,
//! none here) + oom_score_adj × total pages / 1000; init (pid 1) and
//! processes with oom_score_adj -1000 are never chosen; the largest
//! badness is killed with SIGKILL and logged as Linux logs it.
//!
//! While a victim is still dying (killed, memory not yet released) no
//! second one is chosen: the faulting process waits a tick and retries,
//! as Linux waits for its OOM reaper, so one shortage kills one process.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU32, Ordering};

use super::{signal, Process};

/// The pid of the last victim (0: none yet).
static VICTIM: AtomicU32 = AtomicU32::new(0);

/// Free frames that make a failed page fault worth retrying rather than
/// killing for: a fault takes one frame and up to three page tables; the
/// margin covers other CPUs taking some meanwhile.
const RETRY_FREE: usize = 64;

/// OOM_SCORE_ADJ_MIN: never chosen.
pub const ADJ_MIN: i32 = -1000;
/// OOM_SCORE_ADJ_MAX.
pub const ADJ_MAX: i32 = 1000;

/// What is left and where memory went, for the OOM log lines: free
/// frames, tmpfs data (not owned by any process: no kill frees it), heap.
pub fn memory_summary() -> alloc::string::String {
    let free: usize = (0..crate::frames::torus_count())
        .map(|t| crate::frames::stats(t).0)
        .sum();
    let shmem = crate::fs::with(|fs| fs.usage().bytes_used) / 1024;
    alloc::format!(
        "free frames {free} ({}), tmpfs {shmem} kB, heap {} kB",
        crate::frames::per_torus_free().trim_end(),
        hal::heap::used() / 1024
    )
}

fn total_pages() -> u64 {
    (0..crate::frames::torus_count())
        .map(|t| crate::frames::stats(t).1 as u64)
        .sum()
}

/// (badness, resident pages, page-table pages) of `p`'s process, None
/// for an unkillable one (init, -1000, no memory, already exiting).
pub fn badness(p: &Arc<Process>) -> Option<(i64, u64, u64)> {
    let adj = p.group.oom_score_adj.load(Ordering::Relaxed);
    if p.tgid == 1 || adj == ADJ_MIN || p.is_zombie() {
        return None;
    }
    let mm = p.mm.lock().clone()?;
    let (rss, tables) = mm.lock().resident();
    let points = (rss + tables) as i64 + adj as i64 * total_pages() as i64 / 1000;
    Some((points.max(1), rss, tables))
}

/// /proc/PID/oom_score: badness scaled to 0..=2000 as Linux prints it
/// (1000 + points × 1000 / total pages, adj included).
pub fn score(p: &Arc<Process>) -> i64 {
    let total = total_pages().max(1) as i64;
    match badness(p) {
        None => 0,
        Some((points, _, _)) => (points * 1000 / total).clamp(0, 2000),
    }
}

/// Called when a page fault on behalf of the current process found no
/// memory. Returns true when the fault should be retried (a victim was
/// killed, or an earlier one is still releasing its memory and `may_wait`:
/// then this process yields first); false when nobody can be killed or
/// it cannot wait (a fault inside a user copy runs on an IST stack and
/// must not switch: its syscall gets EFAULT).
pub fn out_of_memory(may_wait: bool) -> bool {
    let last = VICTIM.load(Ordering::Relaxed);
    if last != 0 {
        if let Some(v) = super::lookup(last) {
            if !v.is_zombie() {
                // Still dying: give it time to release its memory.
                if may_wait {
                    super::sched::yield_now();
                }
                return may_wait;
            }
        }
    }
    let victim = super::all()
        .into_iter()
        .filter_map(|p| Some((badness(&p)?, p)))
        .max_by_key(|((points, _, _), p)| (*points, p.tgid));
    // Last chance before a kill, as Linux's __alloc_pages_may_oom tries
    // the free lists once more: the shortage may have been brief (a
    // request that took many frames and gave them back, another victim's
    // exit). Choosing the victim may itself have waited for a process's
    // memory lock, which such a request holds, so look only now. A fault
    // needs one frame and at most three page tables.
    let free = crate::frames::free_above_floor();
    if free >= RETRY_FREE {
        crate::klog!(
            "oom: a page fault found no frame, but {free} are free again: retrying, nobody killed"
        );
        if may_wait {
            super::sched::yield_now();
        }
        return true;
    }
    let Some(((points, rss, tables), v)) = victim else {
        return false;
    };
    crate::klog!(
        "Out of memory: Killed process {} ({}) total-vm:{}kB, anon-rss:{}kB, pgtables:{}kB, oom_score_adj:{}, badness:{} ({})",
        v.tgid,
        v.info.lock().comm,
        v.mm.lock().as_ref().map_or(0, |m| m.lock().mapped() / 1024),
        rss * 4,
        tables * 4,
        v.group.oom_score_adj.load(Ordering::Relaxed),
        points,
        memory_summary()
    );
    VICTIM.store(v.tgid, Ordering::Relaxed);
    signal::send(&v, signal::SIGKILL);
    true
}
