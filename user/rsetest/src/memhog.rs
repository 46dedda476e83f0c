//! A child allocates and touches memory until the system says no: mmap or
//! brk must fail with ENOMEM, or the child must be killed by a signal
//! (an OOM kill). Either way the parent then sees the child gone and can
//! itself allocate and use 16 MiB, and fork still works.
//!
//! `rsetest memhog [MiB]` sets RLIMIT_AS to MiB for the hog (for running
//! on a host where exhausting memory would hurt others); without it the
//! hog is limited only by the kernel.

use crate::say;
use crate::util::{check, errname, errno, mmap_anon, spawn, status_str, wait, wait_ok};

const CHUNK: usize = 16 << 20;
const PAGE: usize = 4096;

fn touch(p: *mut u8, len: usize, v: u8) {
    for off in (0..len).step_by(PAGE) {
        // SAFETY: p..p+len is a fresh writable mapping.
        unsafe { p.add(off).write_volatile(v) };
    }
}

fn hog(limit_mib: Option<u64>) -> Result<(), String> {
    if let Some(mib) = limit_mib {
        let lim = libc::rlimit {
            rlim_cur: mib << 20,
            rlim_max: mib << 20,
        };
        // SAFETY: lim is a valid rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) } != 0 {
            return Err(format!("setrlimit: {}", errname(errno())));
        }
        say!("hog: RLIMIT_AS = {mib} MiB");
    }
    // Phase 1: anonymous mappings, 16 MiB at a time, every page touched.
    let mut maps = Vec::new();
    let e = loop {
        match mmap_anon(CHUNK) {
            Ok(p) => {
                touch(p, CHUNK, maps.len() as u8);
                maps.push(p);
            }
            Err(e) => break e,
        }
    };
    say!(
        "hog: mmap failed with {} after {} MiB",
        errname(e),
        maps.len() * (CHUNK >> 20)
    );
    if e != libc::ENOMEM {
        return Err(format!("mmap failed with {} instead of ENOMEM", errname(e)));
    }
    for p in maps.drain(..) {
        // SAFETY: unmapping our own mappings.
        unsafe { libc::munmap(p.cast(), CHUNK) };
    }
    // Phase 2: the heap through brk, 1 MiB at a time.
    let mut grown = 0usize;
    let e = loop {
        // SAFETY: sbrk grows the data segment; the new range is ours.
        let p = unsafe { libc::sbrk(1 << 20) };
        if p as isize == -1 {
            break errno();
        }
        touch(p.cast(), 1 << 20, 1);
        grown += 1;
    };
    say!("hog: brk failed with {} after {grown} MiB", errname(e));
    if e != libc::ENOMEM {
        return Err(format!("brk failed with {} instead of ENOMEM", errname(e)));
    }
    Ok(())
}

pub fn run(args: &[String]) -> Result<(), String> {
    let limit = match args.first() {
        Some(a) => Some(
            a.parse::<u64>()
                .map_err(|_| format!("memhog: {a}: not a number of MiB"))?,
        ),
        None => None,
    };
    let pid = spawn(|| hog(limit))?;
    let st = wait(pid)?;
    let ok = (libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0) || libc::WIFSIGNALED(st);
    check(
        ok,
        format_args!(
            "the hog got ENOMEM or was killed by a signal ({})",
            status_str(st)
        ),
    )?;
    // The memory came back: the parent can use 16 MiB.
    let p = mmap_anon(CHUNK).map_err(|e| format!("parent mmap 16 MiB: {}", errname(e)))?;
    touch(p, CHUNK, 0x5a);
    let mut good = true;
    for off in (0..CHUNK).step_by(PAGE) {
        // SAFETY: inside the mapping.
        good &= unsafe { p.add(off).read_volatile() } == 0x5a;
    }
    check(good, "parent then mmaps and touches 16 MiB")?;
    let v = vec![7u8; CHUNK];
    check(
        v.iter().map(|&b| b as usize).sum::<usize>() == 7 * CHUNK,
        "and allocates 16 MiB on the heap",
    )?;
    let pid = spawn(|| Ok(()))?;
    wait_ok(pid, "and can still fork a child")
}
