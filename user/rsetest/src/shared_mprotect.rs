//! A MAP_SHARED mapping stays shared whatever mprotect does to it after a
//! fork: made writable again, a write by one process is seen by the other
//! (never turned into a private copy-on-write page).

use crate::say;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::util::{check, spawn, wait_ok};

fn protect(p: *mut u8, prot: i32) -> Result<(), String> {
    // SAFETY: p is our own page-aligned mapping of one page.
    let r = unsafe { libc::mprotect(p.cast(), 4096, prot) };
    check(r == 0, format_args!("mprotect({prot})"))
}

pub fn run(_: &[String]) -> Result<(), String> {
    let p =
        crate::util::mmap_shared(4096).map_err(|e| format!("mmap: {}", crate::util::errname(e)))?;
    // SAFETY: p is a live shared page of ours, used as one atomic word.
    let word = unsafe { &*(p as *const AtomicU32) };
    word.store(1, Ordering::SeqCst); // present before the fork
    protect(p, libc::PROT_READ)?;
    let child = spawn(move || {
        protect(p, libc::PROT_READ | libc::PROT_WRITE)?;
        word.store(42, Ordering::SeqCst);
        Ok(())
    })?;
    wait_ok(
        child,
        "child making the shared page writable and writing 42",
    )?;
    let seen = word.load(Ordering::SeqCst);
    check(
        seen == 42,
        format_args!("parent reads {seen}, not the child's 42"),
    )?;
    say!("ok: the parent sees the write of a child that re-enabled writing");
    // And the other way round: the parent writes, a child that has had the
    // page read-only all along sees it.
    let (r, w) = crate::util::pipe()?;
    let child = spawn(move || {
        check(crate::util::read_byte(r) == Some(b'g'), "go")?;
        let v = word.load(Ordering::SeqCst);
        check(v == 7, format_args!("child reads {v}, not the parent's 7"))
    })?;
    protect(p, libc::PROT_READ | libc::PROT_WRITE)?;
    word.store(7, Ordering::SeqCst);
    crate::util::write_all(w, b"g");
    wait_ok(child, "child reading the parent's write")?;
    say!("ok: a child sees the write of a parent that re-enabled writing");
    Ok(())
}
