//! A 256 MiB anonymous mapping: zero-filled on demand, every page touched
//! and verified, then unmapped (and the address range really gone). Done
//! twice, so a kernel that does not free the frames runs short.

use crate::util::{check, errname, mmap_anon, spawn, status_str, wait};

const LEN: usize = 256 << 20;
const PAGE: usize = 4096;

fn pattern(page: usize, round: usize) -> u64 {
    (page as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (round as u64 + 1)
}

pub fn run(_: &[String]) -> Result<(), String> {
    for round in 0..2 {
        let p = mmap_anon(LEN).map_err(|e| format!("mmap 256 MiB failed: {}", errname(e)))?;
        check(true, format_args!("round {round}: mmap 256 MiB at {p:p}"))?;
        let pages = LEN / PAGE;
        let mut nonzero = 0usize;
        for i in 0..pages {
            // SAFETY: every page lies inside the mapping; volatile so that
            // each page is really touched.
            unsafe {
                let w = p.add(i * PAGE).cast::<u64>();
                let last = p.add(i * PAGE + PAGE - 8).cast::<u64>();
                if w.read_volatile() != 0 || last.read_volatile() != 0 {
                    nonzero += 1;
                }
                w.write_volatile(pattern(i, round));
                last.write_volatile(!pattern(i, round));
            }
        }
        check(
            nonzero == 0,
            format_args!(
                "all {pages} pages read as zero before the first write ({nonzero} did not)"
            ),
        )?;
        let mut bad = 0usize;
        for i in 0..pages {
            // SAFETY: as above.
            unsafe {
                let w = p.add(i * PAGE).cast::<u64>();
                let last = p.add(i * PAGE + PAGE - 8).cast::<u64>();
                if w.read_volatile() != pattern(i, round)
                    || last.read_volatile() != !pattern(i, round)
                {
                    bad += 1;
                }
            }
        }
        check(
            bad == 0,
            format_args!("all {pages} pages hold their pattern ({bad} do not)"),
        )?;
        // SAFETY: unmapping our own mapping; not used afterwards except by
        // the child below, which expects to fault.
        let r = unsafe { libc::munmap(p.cast(), LEN) };
        check(r == 0, "munmap 256 MiB")?;
        let addr = p as usize + LEN / 2;
        let pid = spawn(|| {
            crate::util::handle(libc::SIGSEGV, libc::SIG_DFL, 0)?;
            // SAFETY: expected to fault: the range was unmapped.
            let v = unsafe { (addr as *const u64).read_volatile() };
            Err(format!("read {v:#x} from unmapped memory"))
        })?;
        let st = wait(pid)?;
        check(
            libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGSEGV,
            format_args!(
                "reading the unmapped range faults (child {})",
                status_str(st)
            ),
        )?;
    }
    Ok(())
}
