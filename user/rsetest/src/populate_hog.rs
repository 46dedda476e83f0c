//! A mapping the kernel has to fill at once and cannot: MAP_SHARED
//! anonymous memory (RSE OS gives it its frames at mmap time) and
//! MAP_POPULATE, each larger than RAM and swap together, fail with ENOMEM
//! without taking the machine's free memory first. A bystander touching
//! fresh pages all the while must never find memory short. Then pairs of
//! hogs race for 3/5 of the free memory each: when both start populating
//! and run short together, the bystander's faults in that window wait
//! and retry (the OOM killer looks at the free frames again before
//! killing), and nobody is killed.
//!
//! The regression of fuzz seed 0x2 (docs/fuzzing.md): a fuzzed 2 GiB
//! shared anonymous mmap on a 760 MiB guest took every free frame, failed
//! and gave them all back; a page fault of another process in that window
//! found no frame and the OOM killer SIGKILLed a bystander, logging ~190,000
//! free frames by then. On Linux the same calls fail up front (the
//! overcommit check refuses one request larger than RAM + swap), or, with
//! `vm.overcommit_memory = 1`, the shared mapping succeeds untouched
//! (MAP_POPULATE is then skipped: it would really fill the host).

use crate::say;
use crate::util::{check, errname, errno, meminfo_kib, mmap_anon, mmap_shared, spawn, wait_ok};

const PAGE: usize = 4096;
/// The bystander's mapping, mapped, touched, checked and unmapped in a loop.
const CHUNK: usize = 1 << 20;
/// Huge mappings the hog asks for, per kind.
const ROUNDS: usize = 6;

/// Shared between the processes: [stop flag, bystander rounds].
struct Board(*mut u64);

impl Board {
    fn get(&self, i: usize) -> u64 {
        // SAFETY: the board is a live shared page of 512 words.
        unsafe { self.0.add(i).read_volatile() }
    }
    fn set(&self, i: usize, v: u64) {
        // SAFETY: as above.
        unsafe { self.0.add(i).write_volatile(v) }
    }
}

/// Maps, fills and checks CHUNK bytes until told to stop.
fn bystander(board: &Board) -> Result<(), String> {
    let mut round = 0u64;
    while board.get(0) == 0 {
        let p = mmap_anon(CHUNK).map_err(|e| format!("bystander: mmap failed: {}", errname(e)))?;
        for off in (0..CHUNK).step_by(PAGE) {
            // SAFETY: p..p+CHUNK is our fresh writable mapping.
            unsafe { p.add(off).cast::<u64>().write_volatile(round ^ off as u64) };
        }
        for off in (0..CHUNK).step_by(PAGE) {
            // SAFETY: as above.
            let v = unsafe { p.add(off).cast::<u64>().read_volatile() };
            if v != round ^ off as u64 {
                return Err(format!("bystander: page at {off:#x} lost its value"));
            }
        }
        // SAFETY: unmapping our own mapping.
        unsafe { libc::munmap(p.cast(), CHUNK) };
        round += 1;
        board.set(1, round);
    }
    Ok(())
}

fn overcommit_always() -> bool {
    std::fs::read_to_string("/proc/sys/vm/overcommit_memory").is_ok_and(|s| s.trim() == "1")
}

/// Asks for `len` bytes with `flags` ROUNDS times: ENOMEM, or (Linux with
/// overcommit, MAP_SHARED only) a mapping that is unmapped untouched.
fn hog(len: usize, populate: bool) -> Result<(), String> {
    let (flags, what) = if populate {
        (
            libc::MAP_PRIVATE | libc::MAP_POPULATE,
            "MAP_PRIVATE|MAP_POPULATE",
        )
    } else {
        (libc::MAP_SHARED, "MAP_SHARED")
    };
    for _ in 0..ROUNDS {
        // SAFETY: a fresh anonymous mapping aliases nothing.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            let e = errno();
            if e != libc::ENOMEM {
                return Err(format!(
                    "mmap {what} of {} MiB: {} instead of ENOMEM",
                    len >> 20,
                    errname(e)
                ));
            }
        } else {
            if populate {
                return Err(format!(
                    "mmap {what} of {} MiB (more than RAM) succeeded",
                    len >> 20
                ));
            }
            // SAFETY: unmapping the mapping just made, never touched.
            unsafe { libc::munmap(p, len) };
        }
    }
    Ok(())
}

/// Racing pairs of hogs.
const PAIRS: usize = 2;

/// Waits for the start signal, then maps `len` bytes of shared anonymous
/// memory: ENOMEM or a mapping, unmapped untouched.
fn racer(board: &Board, len: usize) -> Result<(), String> {
    while board.get(2) == 0 {
        std::hint::spin_loop();
    }
    // SAFETY: a fresh anonymous mapping aliases nothing.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        let e = errno();
        return check(
            e == libc::ENOMEM,
            format_args!("racing mmap: {} (ENOMEM or success)", errname(e)),
        );
    }
    // SAFETY: unmapping the mapping just made.
    unsafe { libc::munmap(p, len) };
    Ok(())
}

pub fn run(_: &[String]) -> Result<(), String> {
    let ram = meminfo_kib("MemTotal")? << 10;
    let swap = meminfo_kib("SwapTotal").unwrap_or(0) << 10;
    let len = ((2 * ram + swap) as usize).next_multiple_of(PAGE);
    let board = Board(
        mmap_shared(PAGE)
            .map_err(|e| format!("mmap board: {}", errname(e)))?
            .cast(),
    );
    let by = spawn(|| bystander(&board))?;
    // The bystander is faulting pages in before the hog starts.
    while board.get(1) < 2 {
        std::thread::yield_now();
    }
    let kinds: &[bool] = if overcommit_always() {
        &[false]
    } else {
        &[false, true]
    };
    for &populate in kinds {
        let h = spawn(|| hog(len, populate))?;
        wait_ok(
            h,
            if populate {
                "MAP_POPULATE hog ended"
            } else {
                "MAP_SHARED hog ended"
            },
        )?;
    }
    // Two hogs at once, each asking 3/5 of the free memory: both may pass
    // the up-front check and run short together; the loser gives its
    // frames back. A fault of the bystander in that window must wait and
    // retry, not have the OOM killer take the winner (or anyone).
    let each = ((meminfo_kib("MemFree")? << 10) as usize * 3 / 5).next_multiple_of(PAGE);
    for _ in 0..PAIRS {
        board.set(2, 0);
        let pair = [
            spawn(|| racer(&board, each))?,
            spawn(|| racer(&board, each))?,
        ];
        board.set(2, 1);
        for pid in pair {
            wait_ok(pid, "racing hog ended")?;
        }
    }
    let rounds = board.get(1);
    board.set(0, 1);
    wait_ok(by, "bystander ended")?;
    say!(
        "{} huge mmaps of {} MiB refused; bystander mapped and touched {rounds} MiB meanwhile",
        ROUNDS * kinds.len(),
        len >> 20
    );
    check(rounds >= 2, "the bystander ran")
}
