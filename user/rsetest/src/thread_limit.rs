//! 10,000 threads in one process: the kernel creates them or answers
//! EAGAIN at its limit (never a panic), they all run to the end when
//! released, and the kernel's memory comes back afterwards.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::util::{check, meminfo_kib, sys};

const WANT: usize = 10_000;

pub fn run(_: &[String]) -> Result<(), String> {
    let slab0 = meminfo_kib("Slab")?;
    let gate = Arc::new(AtomicU32::new(0));
    let mut handles = Vec::new();
    let mut stopped = None;
    while handles.len() < WANT {
        let g = gate.clone();
        let spawned = std::thread::Builder::new()
            .stack_size(16 * 1024)
            .spawn(move || {
                while g.load(Ordering::Acquire) == 0 {
                    let _ = sys(
                        libc::SYS_futex,
                        [g.as_ptr() as i64, libc::FUTEX_WAIT as i64 | 128, 0, 0, 0, 0],
                    );
                }
            });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                stopped = Some(e);
                break;
            }
        }
    }
    let made = handles.len();
    gate.store(1, Ordering::Release);
    let _ = sys(
        libc::SYS_futex,
        [
            gate.as_ptr() as i64,
            libc::FUTEX_WAKE as i64 | 128,
            i32::MAX as i64,
            0,
            0,
            0,
        ],
    );
    let mut joined = 0;
    for h in handles {
        if h.join().is_ok() {
            joined += 1;
        }
    }
    check(
        made >= 1000,
        format_args!("{made} threads created (at least 1000)"),
    )?;
    if let Some(e) = &stopped {
        check(
            e.raw_os_error() == Some(libc::EAGAIN),
            format_args!("creation stopped at the limit with EAGAIN ({e})"),
        )?;
    } else {
        check(true, format_args!("all {WANT} created"))?;
    }
    check(
        joined == made,
        format_args!("all {made} ran to the end and were joined ({joined})"),
    )?;
    let again = std::thread::spawn(|| 7).join();
    check(again.is_ok_and(|v| v == 7), "a new thread works afterwards")?;
    // Exited threads' kernel stacks and records are freed by the
    // scheduler shortly after: give it a moment. 8 MiB of slack (Linux's
    // slab caches keep ~4 MiB of freed objects after this run); a leak of
    // the threads' kernel stacks alone would be 10,000 × 32 KiB.
    let mut slab = meminfo_kib("Slab")?;
    for _ in 0..50 {
        if slab <= slab0 + 8192 {
            break;
        }
        crate::util::sleep_ms(20);
        slab = meminfo_kib("Slab")?;
    }
    check(
        slab <= slab0 + 8192,
        format_args!("kernel memory back near its baseline: Slab {slab0} kB -> {slab} kB"),
    )
}
