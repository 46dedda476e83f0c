//! An address space shared by CLONE_VM goes when its last user goes, even
//! when two users exit at the same moment on two CPUs (each then sees the
//! other's reference). Free memory after many such rounds must come back.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::say;
use crate::shared_vm::{clone_vm_with, mmap_pages, mmap_stack, raw};
use crate::util::{check, spawn, wait_quiet};

/// Rounds by default (`vm_exit_leak N` runs N).
const ROUNDS: usize = 600;
/// Pages each round's address space touches (what a leak would lose).
const PAGES: u64 = 128;

/// Shared by the sharers (CLONE_VM shares statics): the clone says it
/// runs, then both exit when told, so the two exits overlap.
static STARTED: AtomicU64 = AtomicU64::new(0);
static GO: AtomicU64 = AtomicU64::new(0);

/// The CPU the clone runs on, when there are two: the sharers' exits can
/// only overlap on two CPUs (a CPU does not preempt a task in the kernel).
static CLONE_CPU: AtomicU64 = AtomicU64::new(u64::MAX);

extern "C" fn quit_together(_: u64) -> i32 {
    let cpu = CLONE_CPU.load(Ordering::SeqCst);
    if cpu != u64::MAX {
        crate::shared_vm::pin_raw(cpu as usize);
    }
    STARTED.store(1, Ordering::SeqCst);
    while GO.load(Ordering::SeqCst) == 0 {
        std::hint::spin_loop();
    }
    0
}

pub fn run(args: &[String]) -> Result<(), String> {
    let rounds = args.first().and_then(|a| a.parse().ok()).unwrap_or(ROUNDS);
    // One round first, so that lazily built kernel state is counted in
    // the baseline rather than as a leak.
    let round = || -> Result<(), String> {
        let pid = spawn(|| {
            if crate::util::cpus() >= 2 {
                crate::util::pin(0, 0)?;
                CLONE_CPU.store(1, Ordering::SeqCst);
            }
            let p = mmap_pages(PAGES)?;
            for i in 0..PAGES {
                // SAFETY: our own fresh mapping.
                unsafe { *((p + i * 4096) as *mut u64) = i };
            }
            let stack = mmap_stack()?;
            clone_vm_with(0, quit_together, 0, stack, 0)?;
            let t0 = std::time::Instant::now();
            while STARTED.load(Ordering::SeqCst) == 0 && t0.elapsed().as_millis() < 500 {
                std::hint::spin_loop();
            }
            // Exit together with the clone: no wait, no libc.
            GO.store(1, Ordering::SeqCst);
            raw(231, 0, 0, 0, 0);
            Ok(())
        })?;
        wait_quiet(pid, "forked sharer")
    };
    round()?;
    // Reap the CLONE_VM grandchildren reparented to init meanwhile: they
    // are init's business; give it a moment.
    crate::util::sleep_ms(100);
    let before = crate::util::meminfo_kib("MemFree")?;
    for _ in 0..rounds {
        round()?;
    }
    crate::util::sleep_ms(300);
    let after = crate::util::meminfo_kib("MemFree")?;
    let lost = before.saturating_sub(after);
    let per_round = (PAGES + 16) * 4;
    // Lazily grown kernel state may take a few pages; a single leaked
    // address space takes more than half a MiB. (The race is narrow: the
    // old kernel leaked about one address space in 600 rounds here, and in
    // every round with `inject.mm_release_us` holding the window open.)
    say!("ok: MemFree {before} kB before {rounds} rounds, {after} kB after");
    check(
        lost < per_round / 2,
        format_args!(
            "{lost} kB lost over {rounds} rounds of two CLONE_VM sharers exiting together \
             (a leaked address space is about {per_round} kB)"
        ),
    )
}
