//! A process interrupted by signals again and again while it waits
//! (nanosleep, poll, a read on an empty pipe) must not make the kernel
//! keep anything per interruption: each wait ends with its registration
//! taken out of the queue it slept on.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::util::{check, errname, fork, meminfo_kib, status_str, wait};

extern "C" fn on_usr1(_: i32) {}

const WAITS: u32 = 45_000;

pub fn run(args: &[String]) -> Result<(), String> {
    let waits: u32 = args.first().and_then(|a| a.parse().ok()).unwrap_or(WAITS);
    let page = crate::util::mmap_shared(4096).map_err(errname)?;
    // SAFETY: a live shared page, used as one atomic word.
    let done = unsafe { &*(page as *const AtomicU32) };
    let (r, _w) = crate::util::pipe()?;
    let slab_before = meminfo_kib("Slab")?;
    // Installed before the fork, so the child has it from its first
    // instruction. No SA_RESTART: every wait ends with EINTR.
    crate::util::handle(libc::SIGUSR1, on_usr1 as *const () as libc::sighandler_t, 0)?;
    let pid = fork()?;
    if pid == 0 {
        let mut k = 0u32;
        while k < waits {
            let r = match k % 3 {
                0 => {
                    let ts = libc::timespec {
                        tv_sec: 100,
                        tv_nsec: 0,
                    };
                    // SAFETY: valid timespec; no remainder wanted.
                    unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) }
                }
                1 => {
                    let mut p = libc::pollfd {
                        fd: r,
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(&mut p, 1, 100_000) }
                }
                _ => {
                    let mut b = 0u8;
                    // SAFETY: one-byte buffer; the pipe stays empty.
                    unsafe { libc::read(r, (&mut b as *mut u8).cast(), 1) as i32 }
                }
            };
            if r == -1 && crate::util::errno() == libc::EINTR {
                k += 1;
                done.store(k, Ordering::SeqCst);
            } else {
                crate::util::child_exit(3);
            }
        }
        crate::util::child_exit(0);
    }
    let t0 = Instant::now();
    while done.load(Ordering::SeqCst) < waits && t0.elapsed() < Duration::from_secs(300) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, libc::SIGUSR1) };
        // SAFETY: plain call.
        unsafe { libc::sched_yield() };
    }
    let got = done.load(Ordering::SeqCst);
    if got < waits {
        // SAFETY: ending our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let st = wait(pid)?;
    check(
        got == waits && libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        format_args!(
            "{got} of {waits} interrupted waits, child {}",
            status_str(st)
        ),
    )?;
    let slab_after = meminfo_kib("Slab")?;
    let grew = slab_after.saturating_sub(slab_before);
    check(
        grew < 256,
        format_args!("kernel objects (Slab) grew by {grew} kB over {waits} interrupted waits"),
    )?;
    Ok(())
}
