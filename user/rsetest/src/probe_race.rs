//! The kernel's check that a read buffer is writable (before a pipe or
//! tty read consumes anything) must not write the buffer: a CLONE_VM
//! sharer on another CPU counting in that very word would lose counts to
//! a read-and-write-back.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::say;
use crate::shared_vm::{clone_vm_with, mmap_pages, mmap_stack, pin_raw, raw};
use crate::util::{check, cpus, status_str, wait};

static STOP: AtomicU64 = AtomicU64::new(0);
static COUNTED: AtomicU64 = AtomicU64::new(0);

/// The child: counts in the word at `word` until told to stop.
extern "C" fn counter(word: u64) -> i32 {
    if cpus() > 1 {
        pin_raw(1);
    }
    // SAFETY: `word` is a live page of the shared memory.
    let w = unsafe { &*(word as *const AtomicU32) };
    let mut n = 0u64;
    while STOP.load(Ordering::Relaxed) == 0 {
        w.fetch_add(1, Ordering::Relaxed);
        n += 1;
    }
    COUNTED.store(n, Ordering::SeqCst);
    0
}

pub fn run(_: &[String]) -> Result<(), String> {
    if cpus() > 1 {
        pin_raw(0);
    }
    let page = mmap_pages(1)?;
    let stack = mmap_stack()?;
    let (r, _w) = crate::util::pipe()?;
    // SAFETY: setting O_NONBLOCK on our own descriptor.
    unsafe { libc::fcntl(r, libc::F_SETFL, libc::O_NONBLOCK) };
    let pid = clone_vm_with(0, counter, page, stack, 0)?;
    let t0 = Instant::now();
    let mut reads = 0u64;
    while t0.elapsed() < Duration::from_secs(2) {
        // An empty non-blocking pipe: EAGAIN after the buffer check.
        let n = raw(0, r as u64, page, 4, 0);
        if n != -(libc::EAGAIN as i64) {
            STOP.store(1, Ordering::SeqCst);
            return Err(format!("read of an empty O_NONBLOCK pipe returned {n}"));
        }
        reads += 1;
    }
    STOP.store(1, Ordering::SeqCst);
    let st = wait(pid)?;
    check(
        libc::WIFEXITED(st),
        format_args!("counter {}", status_str(st)),
    )?;
    // SAFETY: the child has exited; the page is ours.
    let word = unsafe { &*(page as *const AtomicU32) }.load(Ordering::SeqCst) as u64;
    let counted = COUNTED.load(Ordering::SeqCst);
    say!("ok: {reads} buffer checks while the other CPU counted {counted}");
    check(
        word == counted & 0xffff_ffff,
        format_args!("the word holds {word}, the counter counted {counted}"),
    )
}
