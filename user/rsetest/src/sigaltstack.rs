//! sigaltstack(2) and SA_ONSTACK: handlers run on the alternate stack,
//! which is how a program survives its own stack overflow; the rules
//! Linux applies to changing it (EPERM on it, ENOMEM, EINVAL, EFAULT),
//! SS_AUTODISARM, and what rt_sigreturn and threads do with it.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::util::{check, errname, errno, fork, handle, mmap_anon, status_str, wait};

const ALT_SIZE: usize = 64 * 1024;

/// Where the handler found itself, its view of sigaltstack, and what a
/// change attempt from it returned.
static HANDLER_SP: AtomicU64 = AtomicU64::new(0);
static HANDLER_FLAGS: AtomicU64 = AtomicU64::new(u64::MAX);
static HANDLER_SET: AtomicU64 = AtomicU64::new(0);

fn altstack(new: Option<&libc::stack_t>) -> Result<libc::stack_t, i32> {
    // SAFETY: both pointers are valid (or null) for sigaltstack.
    unsafe {
        let mut old: libc::stack_t = std::mem::zeroed();
        let n = new.map_or(std::ptr::null(), |s| s as *const libc::stack_t);
        if libc::sigaltstack(n, &mut old) == 0 {
            Ok(old)
        } else {
            Err(errno())
        }
    }
}

fn stack(sp: *mut u8, size: usize, flags: i32) -> libc::stack_t {
    libc::stack_t {
        ss_sp: sp.cast(),
        ss_flags: flags,
        ss_size: size,
    }
}

extern "C" fn on_usr1(_: i32) {
    let here = 0u8;
    HANDLER_SP.store(&here as *const u8 as u64, Ordering::Relaxed);
    let cur = altstack(None).map_or(u64::MAX, |s| s.ss_flags as u64);
    HANDLER_FLAGS.store(cur, Ordering::Relaxed);
    // Changing the stack one runs on is refused.
    let dummy = [0u8; 4096];
    let r = altstack(Some(&stack(dummy.as_ptr() as *mut u8, 4096, 0)));
    HANDLER_SET.store(r.map_or_else(|e| e as u64, |_| 0), Ordering::Relaxed);
}

extern "C" fn on_segv(_: i32) {
    // On the alternate stack after the overflow: leave at once.
    crate::util::child_exit(42);
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let pad = [n; 64];
    std::hint::black_box(&pad);
    recurse(n + 1) + std::hint::black_box(pad[3])
}

fn errs(r: Result<libc::stack_t, i32>) -> String {
    match r {
        Ok(_) => "success".into(),
        Err(e) => errname(e),
    }
}

pub fn run(_: &[String]) -> Result<(), String> {
    let mem = mmap_anon(ALT_SIZE).map_err(|e| format!("mmap: {}", errname(e)))?;
    let (lo, hi) = (mem as u64, mem as u64 + ALT_SIZE as u64);

    check(
        altstack(Some(&stack(mem, 1024, 0))).err() == Some(libc::ENOMEM),
        "a 1 KiB stack: ENOMEM",
    )?;
    check(
        altstack(Some(&stack(mem, ALT_SIZE, 0x10))).err() == Some(libc::EINVAL),
        "unknown ss_flags: EINVAL",
    )?;
    // SAFETY: a deliberately bad pointer: the kernel must answer EFAULT.
    let r = unsafe { libc::sigaltstack(16 as *const libc::stack_t, std::ptr::null_mut()) };
    check(
        r == -1 && errno() == libc::EFAULT,
        "a bad stack_t pointer: EFAULT",
    )?;

    altstack(Some(&stack(mem, ALT_SIZE, 0))).map_err(|e| format!("sigaltstack: {}", errname(e)))?;
    let cur = altstack(None).map_err(errname)?;
    check(
        cur.ss_sp as u64 == lo && cur.ss_size == ALT_SIZE && cur.ss_flags == 0,
        format_args!(
            "read back: sp {:#x} size {} flags {} (want {lo:#x} {ALT_SIZE} 0)",
            cur.ss_sp as u64, cur.ss_size, cur.ss_flags
        ),
    )?;

    handle(
        libc::SIGUSR1,
        on_usr1 as *const () as libc::sighandler_t,
        libc::SA_ONSTACK,
    )?;
    // SAFETY: raise is always safe.
    unsafe { libc::raise(libc::SIGUSR1) };
    let sp = HANDLER_SP.load(Ordering::Relaxed);
    check(
        sp > lo && sp < hi,
        format_args!("an SA_ONSTACK handler runs on the alternate stack (sp {sp:#x})"),
    )?;
    check(
        HANDLER_FLAGS.load(Ordering::Relaxed) == libc::SS_ONSTACK as u64,
        format_args!(
            "sigaltstack in the handler says SS_ONSTACK (got {})",
            HANDLER_FLAGS.load(Ordering::Relaxed) as i64
        ),
    )?;
    check(
        HANDLER_SET.load(Ordering::Relaxed) == libc::EPERM as u64,
        "changing it from the handler on it: EPERM",
    )?;
    check(
        altstack(None).map(|s| s.ss_flags) == Ok(0),
        "after the handler: not on it",
    )?;

    // Without SA_ONSTACK the handler stays on the current stack.
    handle(libc::SIGUSR1, on_usr1 as *const () as libc::sighandler_t, 0)?;
    // SAFETY: raise is always safe.
    unsafe { libc::raise(libc::SIGUSR1) };
    let sp = HANDLER_SP.load(Ordering::Relaxed);
    check(
        !(sp > lo && sp < hi),
        "a handler without SA_ONSTACK stays on the thread's stack",
    )?;

    // SS_AUTODISARM: disarmed while the handler runs, back after it.
    const SS_AUTODISARM: i32 = 1 << 31;
    altstack(Some(&stack(mem, ALT_SIZE, SS_AUTODISARM))).map_err(errname)?;
    handle(
        libc::SIGUSR1,
        on_usr1 as *const () as libc::sighandler_t,
        libc::SA_ONSTACK,
    )?;
    // SAFETY: raise is always safe.
    unsafe { libc::raise(libc::SIGUSR1) };
    let sp = HANDLER_SP.load(Ordering::Relaxed);
    check(
        sp > lo
            && sp < hi
            && HANDLER_FLAGS.load(Ordering::Relaxed) == libc::SS_DISABLE as u64
            && HANDLER_SET.load(Ordering::Relaxed) == 0,
        "SS_AUTODISARM: on it, but disarmed in the handler (SS_DISABLE, may be changed)",
    )?;
    let after = altstack(None).map_err(errname)?;
    check(
        after.ss_sp as u64 == lo && after.ss_flags == SS_AUTODISARM,
        format_args!(
            "SS_AUTODISARM: rt_sigreturn puts the stack back (sp {:#x} flags {:#x}: {})",
            after.ss_sp as u64,
            after.ss_flags,
            errs(Ok(after))
        ),
    )?;
    altstack(Some(&stack(mem, ALT_SIZE, 0))).map_err(errname)?;

    // A new thread does not share the parent's (Rust's std may give it
    // one of its own for overflow reports); a forked child keeps it.
    let t = std::thread::spawn(|| altstack(None).map(|s| s.ss_sp as u64));
    let tsp = t.join().map_err(|_| "thread panicked".to_string())?;
    check(
        tsp != Ok(lo),
        "a new thread does not get the parent's alternate stack",
    )?;
    let pid = fork()?;
    if pid == 0 {
        let ok = altstack(None).is_ok_and(|s| s.ss_sp as u64 == lo && s.ss_size == ALT_SIZE);
        crate::util::child_exit(if ok { 0 } else { 1 });
    }
    let st = wait(pid)?;
    check(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        format_args!("fork keeps the alternate stack ({})", status_str(st)),
    )?;

    // The point of it all: a stack overflow's SIGSEGV handler runs.
    let pid = fork()?;
    if pid == 0 {
        let _ = handle(
            libc::SIGSEGV,
            on_segv as *const () as libc::sighandler_t,
            libc::SA_ONSTACK,
        );
        std::hint::black_box(recurse(0));
        crate::util::child_exit(1);
    }
    let st = wait(pid)?;
    check(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 42,
        format_args!(
            "a stack overflow's SA_ONSTACK SIGSEGV handler runs ({})",
            status_str(st)
        ),
    )
}
