//! Memory shared by `clone(CLONE_VM)` between two processes running on
//! different CPUs at the same time: a mapping one of them changes must
//! change for the other at once (the kernel's TLB shootdown), not when the
//! other CPU happens to reload its page tables.
//!
//! The child runs on its own stack in the parent's memory and shares its
//! statics, heap and TLS, so it calls no std or libc function (they could
//! touch the shared errno or locks): only raw system calls and atomics.

use std::arch::asm;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::util::{check, cpus, errname, errno, status_str, wait};

pub const CLONE_VM: u64 = 0x100;
pub const CLONE_CHILD_SETTID: u64 = 0x0100_0000;
const SIGCHLD: u64 = 17;
const STACK_SIZE: usize = 64 << 10;

/// What the child is told to do and what it reports (shared by CLONE_VM).
static PAGE: AtomicU64 = AtomicU64::new(0);
static STOP: AtomicU64 = AtomicU64::new(0);
static ROUNDS: AtomicU64 = AtomicU64::new(0);
static SEEN: AtomicU64 = AtomicU64::new(0);
static CHILD_CPU: AtomicU64 = AtomicU64::new(u64::MAX);
static CHILD_FAILED: AtomicU64 = AtomicU64::new(0);

/// A raw system call with up to four arguments (the fifth and sixth are
/// -1 and 0: what mmap wants for an anonymous mapping).
pub fn raw(nr: u64, a: u64, b: u64, c: u64, d: u64) -> i64 {
    let r: i64;
    // SAFETY: the callers pass arguments the kernel validates; the asm
    // clobbers only what `syscall` does.
    unsafe {
        asm!("syscall", inlateout("rax") nr as i64 => r, in("rdi") a, in("rsi") b,
             in("rdx") c, in("r10") d, in("r8") -1i64, in("r9") 0u64,
             lateout("rcx") _, lateout("r11") _, options(nostack))
    };
    r
}

/// Pins the calling process to `cpu` and returns the CPU it then runs on.
pub fn pin_raw(cpu: usize) -> u64 {
    let mask: [u64; 16] = core::array::from_fn(|i| if i == cpu / 64 { 1 << (cpu % 64) } else { 0 });
    raw(203, 0, 128, mask.as_ptr() as u64, 0);
    let mut got: u32 = u32::MAX;
    raw(309, &mut got as *mut u32 as u64, 0, 0, 0);
    got as u64
}

/// SIGSEGV back to its default (death), without libc.
fn default_segv() {
    let act = [0u64; 4]; // handler SIG_DFL, flags, restorer, mask
    raw(13, 11, act.as_ptr() as u64, 0, 8);
}

/// `clone(CLONE_VM | SIGCHLD)` with the child running `f(arg)` on
/// `stack_top` and exiting with its result. Returns the child's pid.
fn clone_vm(f: extern "C" fn(u64) -> i32, arg: u64, stack_top: u64) -> Result<i32, String> {
    clone_vm_with(0, f, arg, stack_top, 0)
}

/// As [`clone_vm`], with more clone `flags` and the `ctid` word
/// (CLONE_CHILD_SETTID, CLONE_CHILD_CLEARTID).
pub fn clone_vm_with(
    flags: u64,
    f: extern "C" fn(u64) -> i32,
    arg: u64,
    stack_top: u64,
    ctid: u64,
) -> Result<i32, String> {
    let r: i64;
    // SAFETY: the child starts on a fresh 16-byte-aligned stack in memory
    // it shares with us, calls `f` and exits without returning here; the
    // parent's registers are those of a syscall.
    unsafe {
        asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rdi, r12",
            "call r13",
            "mov edi, eax",
            "mov eax, 60",
            "syscall",
            "ud2",
            "2:",
            inlateout("rax") 56i64 => r,
            in("rdi") CLONE_VM | SIGCHLD | flags,
            in("rsi") stack_top,
            in("rdx") 0u64,
            in("r10") ctid,
            in("r8") 0u64,
            in("r12") arg,
            in("r13") f as usize as u64,
            lateout("rcx") _,
            lateout("r11") _,
        )
    };
    if r < 0 {
        return Err(format!("clone(CLONE_VM): {}", errname(-r as i32)));
    }
    Ok(r as i32)
}

fn mmap_page(at: u64, fixed: bool) -> Result<u64, String> {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | if fixed { libc::MAP_FIXED } else { 0 };
    // SAFETY: a fresh anonymous page (MAP_FIXED only over our own page).
    let p = unsafe {
        libc::mmap(
            at as *mut libc::c_void,
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!("mmap: {}", errname(errno())));
    }
    Ok(p as u64)
}

fn word(page: u64) -> &'static AtomicU64 {
    // SAFETY: `page` is a mapped, page-aligned anonymous page of ours.
    unsafe { &*(page as *const AtomicU64) }
}

fn wait_until(what: &str, limit: Duration, cond: impl Fn() -> bool) -> Result<(), String> {
    let t0 = Instant::now();
    while !cond() {
        if t0.elapsed() > limit {
            return Err(format!("timed out waiting for {what}"));
        }
        std::hint::spin_loop();
    }
    Ok(())
}

/// The child of `remap`: keeps reading the page's first word.
extern "C" fn reader(cpu: u64) -> i32 {
    CHILD_CPU.store(pin_raw(cpu as usize), Ordering::SeqCst);
    while STOP.load(Ordering::Relaxed) == 0 {
        let page = PAGE.load(Ordering::Relaxed);
        SEEN.store(word(page).load(Ordering::Relaxed), Ordering::Relaxed);
        ROUNDS.fetch_add(1, Ordering::Relaxed);
    }
    0
}

/// The child of `protect`: keeps incrementing the page's first word
/// until a write faults (SIGSEGV kills it).
extern "C" fn writer(cpu: u64) -> i32 {
    default_segv();
    CHILD_CPU.store(pin_raw(cpu as usize), Ordering::SeqCst);
    let w = word(PAGE.load(Ordering::Relaxed));
    loop {
        w.fetch_add(1, Ordering::Relaxed);
        ROUNDS.fetch_add(1, Ordering::Relaxed);
    }
}

/// The child of `churn`: maps, fills, checks and unmaps pages of its own.
extern "C" fn churner(cpu: u64) -> i32 {
    CHILD_CPU.store(pin_raw(cpu as usize), Ordering::SeqCst);
    for i in 0..ROUNDS_CHURN {
        let p = raw(9, 0, 4096, 3, 0x22); // PROT_READ|WRITE, PRIVATE|ANON
        let p = if p < 0 {
            CHILD_FAILED.store(1, Ordering::SeqCst);
            return 1;
        } else {
            p as u64
        };
        word(p).store(i ^ 0x5a5a, Ordering::Relaxed);
        if word(p).load(Ordering::Relaxed) != i ^ 0x5a5a {
            CHILD_FAILED.store(2, Ordering::SeqCst);
            return 2;
        }
        raw(11, p, 4096, 0, 0);
        ROUNDS.fetch_add(1, Ordering::Relaxed);
    }
    0
}

const ROUNDS_CHURN: u64 = 2000;

fn reset() {
    for a in [&STOP, &ROUNDS, &SEEN, &CHILD_FAILED] {
        a.store(0, Ordering::SeqCst);
    }
    CHILD_CPU.store(u64::MAX, Ordering::SeqCst);
}

pub fn run(_: &[String]) -> Result<(), String> {
    let n = cpus();
    // The parent on CPU 0, the child on CPU 1: both run at once.
    let (mine, theirs) = if n >= 2 { (0, 1) } else { (0, 0) };
    check(
        pin_raw(mine) == mine as u64,
        format!("parent runs on CPU {mine}"),
    )?;
    let stack = mmap_stack()?;

    // 1. Replacing a page the other CPU keeps reading.
    reset();
    let page = mmap_page(0, false)?;
    word(page).store(1, Ordering::SeqCst);
    PAGE.store(page, Ordering::SeqCst);
    let pid = clone_vm(reader, theirs as u64, stack)?;
    wait_until("the reader to start", Duration::from_secs(5), || {
        ROUNDS.load(Ordering::SeqCst) > 10_000
    })?;
    check(
        CHILD_CPU.load(Ordering::SeqCst) == theirs as u64 && SEEN.load(Ordering::SeqCst) == 1,
        format!("a CLONE_VM child on CPU {theirs} reads the parent's page (1)"),
    )?;
    mmap_page(page, true)?;
    // Take the frames the kernel just freed (the old page's among them)
    // and fill them with 3, so a stale translation cannot read 2 by luck.
    let filler = mmap_pages(64)?;
    for i in 0..64 {
        word(filler + i * 4096).store(3, Ordering::SeqCst);
    }
    word(page).store(2, Ordering::SeqCst);
    let seen = wait_until("the new page", Duration::from_secs(2), || {
        SEEN.load(Ordering::SeqCst) == 2
    });
    STOP.store(1, Ordering::SeqCst);
    let st = wait(pid)?;
    check(
        seen.is_ok(),
        format!(
            "after mmap(MAP_FIXED) replaces the page, the child reads the new one (2, saw {})",
            SEEN.load(Ordering::SeqCst)
        ),
    )?;
    check(st == 0, format!("the reader exits 0 ({})", status_str(st)))?;

    // 2. Taking write permission away from a page the other CPU writes.
    reset();
    let page = mmap_page(0, false)?;
    PAGE.store(page, Ordering::SeqCst);
    let pid = clone_vm(writer, theirs as u64, stack)?;
    wait_until("the writer to start", Duration::from_secs(5), || {
        ROUNDS.load(Ordering::SeqCst) > 10_000
    })?;
    // SAFETY: our own page.
    if unsafe { libc::mprotect(page as *mut libc::c_void, 4096, libc::PROT_READ) } != 0 {
        return Err(format!("mprotect: {}", errname(errno())));
    }
    let before = word(page).load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    let after = word(page).load(Ordering::SeqCst);
    if before != after {
        // SAFETY: plain call; the child is ours.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let st = wait(pid)?;
    check(
        before == after,
        format!("no write lands after mprotect(PROT_READ) returns ({before} then {after})"),
    )?;
    check(
        libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGSEGV,
        format!("the writer dies of SIGSEGV ({})", status_str(st)),
    )?;

    // 3. Both sides mapping and unmapping at once: shootdowns cross.
    reset();
    let pid = clone_vm(churner, theirs as u64, stack)?;
    for i in 0..ROUNDS_CHURN {
        let p = mmap_page(0, false)?;
        word(p).store(i, Ordering::Relaxed);
        if word(p).load(Ordering::Relaxed) != i {
            return Err("a fresh page lost a write".into());
        }
        // SAFETY: our own page.
        unsafe { libc::munmap(p as *mut libc::c_void, 4096) };
    }
    let st = wait(pid)?;
    check(
        st == 0 && CHILD_FAILED.load(Ordering::SeqCst) == 0,
        format!(
            "{ROUNDS_CHURN} map/write/unmap rounds on each side at once ({}, child code {})",
            status_str(st),
            CHILD_FAILED.load(Ordering::SeqCst)
        ),
    )?;
    Ok(())
}

/// A stack for the children (reused: one child at a time).
pub fn mmap_stack() -> Result<u64, String> {
    Ok(mmap_pages(STACK_SIZE as u64 / 4096)? + STACK_SIZE as u64)
}

/// `n` fresh anonymous pages.
pub fn mmap_pages(n: u64) -> Result<u64, String> {
    // SAFETY: a fresh anonymous mapping.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            n as usize * 4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!("mmap: {}", errname(errno())));
    }
    Ok(p as u64)
}
