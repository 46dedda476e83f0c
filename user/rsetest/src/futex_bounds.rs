//! futex(2) as glibc relies on it, and within bounds: millions of
//! FUTEX_WAITs that do not sleep (the word differs, the address is bad)
//! leave no kernel memory behind; FUTEX_WAKE returns how many it woke;
//! a private futex is keyed by address space (a wake in one process
//! never reaches a waiter of another at the same address); shared
//! memory futexes work across processes; timeouts end a wait.

use crate::say;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::util::{check, errname, fork, status_str, wait};

const FUTEX_WAIT: i32 = 0;
const FUTEX_WAKE: i32 = 1;
const FUTEX_PRIVATE_FLAG: i32 = 128;

fn futex(addr: *const AtomicU32, op: i32, val: u32, timeout: Option<Duration>) -> Result<i64, i32> {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: d.subsec_nanos() as i64,
    });
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: futex reads the word at addr (or faults: EFAULT) and the
    // timespec we own.
    let r = unsafe { libc::syscall(libc::SYS_futex, addr, op, val, tsp, 0usize, 0u32) };
    if r < 0 {
        Err(crate::util::errno())
    } else {
        Ok(r)
    }
}

/// Reaps those of `pids` that have exited; returns how many are left.
fn reap_exited(pids: &mut Vec<libc::pid_t>) -> usize {
    pids.retain(|&p| {
        let mut st = 0;
        // SAFETY: st is a valid out-pointer.
        unsafe { libc::waitpid(p, &mut st, libc::WNOHANG) == 0 }
    });
    pids.len()
}

pub fn run(args: &[String]) -> Result<(), String> {
    let calls: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(3_000_000);
    // 1. Waits that do not sleep, each on an address of its own (a kernel
    // that kept a queue per address would hold millions): EAGAIN on words
    // that differ, EFAULT on addresses nothing maps.
    let words: Vec<AtomicU32> = (0..calls / 2 + 1).map(|_| AtomicU32::new(1)).collect();
    let slab_before = crate::util::meminfo_kib("Slab")?;
    let t0 = Instant::now();
    for i in 0..calls {
        if i % 2 == 0 {
            let r = futex(&words[i / 2], FUTEX_WAIT, 0, None);
            if r != Err(libc::EAGAIN) {
                return Err(format!("FUTEX_WAIT on a changed word: {r:?}"));
            }
        } else {
            // Distinct addresses far from any mapping of ours.
            let bad = (0x6000_0000_0000_usize + i * 4) as *const AtomicU32;
            let r = futex(bad, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, None);
            if r != Err(libc::EFAULT) {
                return Err(format!("FUTEX_WAIT on a bad address: {r:?}"));
            }
        }
    }
    let slab_after = crate::util::meminfo_kib("Slab")?;
    let grew = slab_after.saturating_sub(slab_before);
    check(
        grew < 4096,
        format_args!("kernel objects (Slab) grew by {grew} kB over {calls} non-sleeping waits"),
    )?;
    say!(
        "ok: {calls} FUTEX_WAITs that did not sleep ({:.1} s), kernel still here",
        t0.elapsed().as_secs_f64()
    );

    // 2. FUTEX_WAKE counts, on a shared word, across processes.
    let p = crate::util::mmap_shared(4096).map_err(|e| format!("mmap: {}", errname(e)))?;
    // SAFETY: a live shared page, used as one atomic word.
    let word = unsafe { &*(p as *const AtomicU32) };
    word.store(0, Ordering::SeqCst);
    let mut kids = Vec::new();
    for _ in 0..3 {
        let pid = fork()?;
        if pid == 0 {
            while word.load(Ordering::SeqCst) == 0 {
                let _ = futex(word, FUTEX_WAIT, 0, Some(Duration::from_secs(10)));
            }
            crate::util::child_exit(0);
        }
        kids.push(pid);
    }
    // Give them time to block (each wait lasts up to 10 s).
    crate::util::sleep_ms(300);
    word.store(1, Ordering::SeqCst);
    let woke = futex(word, FUTEX_WAKE, 2, None);
    check(
        woke == Ok(2),
        format_args!("FUTEX_WAKE(2) with 3 waiters returned {woke:?}, not 2"),
    )?;
    crate::util::sleep_ms(300);
    let left = reap_exited(&mut kids);
    check(
        left == 1,
        format_args!("{left} waiters still asleep after waking 2 of 3"),
    )?;
    let woke = futex(word, FUTEX_WAKE, i32::MAX as u32, None);
    check(
        woke == Ok(1),
        format_args!("FUTEX_WAKE(all) with 1 waiter left returned {woke:?}"),
    )?;
    for k in kids {
        let st = wait(k)?;
        check(
            libc::WIFEXITED(st),
            format_args!("waiter {}", status_str(st)),
        )?;
    }
    say!("ok: FUTEX_WAKE returns the number woken, on a word shared by processes");

    // 3. A private wake does not cross address spaces.
    let mine = AtomicU32::new(0);
    let (r, w) = crate::util::pipe()?;
    let pid = fork()?;
    if pid == 0 {
        crate::util::write_all(w, b"r");
        let t0 = Instant::now();
        let res = futex(
            &mine,
            FUTEX_WAIT | FUTEX_PRIVATE_FLAG,
            0,
            Some(Duration::from_millis(800)),
        );
        // ETIMEDOUT: nobody in this process woke us.
        let code = match res {
            Err(libc::ETIMEDOUT) if t0.elapsed() >= Duration::from_millis(700) => 0,
            Err(libc::ETIMEDOUT) => 3,
            Ok(_) => 1,
            Err(_) => 2,
        };
        crate::util::child_exit(code);
    }
    check(crate::util::read_byte(r) == Some(b'r'), "child ready")?;
    crate::util::sleep_ms(200);
    let mut woke_other = 0;
    for _ in 0..20 {
        woke_other += futex(&mine, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, None).unwrap_or(0);
        woke_other += futex(&mine, FUTEX_WAKE, 1, None).unwrap_or(0);
    }
    check(
        woke_other == 0,
        format_args!("our wakes at the same address woke {woke_other} in another process"),
    )?;
    let st = wait(pid)?;
    check(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        format_args!(
            "the other process's private waiter: {} (1: woken by us, 2: error, 3: timed out early)",
            status_str(st)
        ),
    )?;
    say!("ok: private futexes are per address space; the waiter timed out on time");
    Ok(())
}
