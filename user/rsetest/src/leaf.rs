//! The identity syscalls (getpid, gettid, getppid) the kernel answers on
//! its light path, with no frame and the user's XMM registers live:
//! - every register but rax, rcx and r11 survives, rcx comes back as the
//!   return address and r11 as RFLAGS, as on Linux;
//! - the answers match the ones libc gets, in a thread too (getppid from
//!   a thread goes to the full handler), and after reparenting;
//! - signals sent by another process while the caller loops on getppid
//!   are all delivered (they arrive as interrupts right after the return
//!   or as pending work before the call), and the results stay right,
//!   also when the caller yields alone on its CPU now and then (queued
//!   and picked again by its own CPU, with the sender on another).

use crate::util::{check, fork, wait, wait_ok};
use std::arch::asm;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Values put in every register the syscall must preserve.
const PATTERN: [u64; 11] = [
    0x1111_2222_3333_4444,
    0x5555_6666_7777_8888,
    0x9999_aaaa_bbbb_cccc,
    0xdddd_eeee_ffff_0001,
    0x0123_4567_89ab_cdef,
    0xfedc_ba98_7654_3210,
    0x0f0f_0f0f_f0f0_f0f0,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0001,
    0x1357_9bdf_2468_ace0,
    0xa5a5_a5a5_5a5a_5a5a,
];

/// Registers after one `syscall` with number `nr`: (rax, rcx, r11,
/// [rbx rdx rsi rdi r8 r9 r10 r12 r13 r14 r15], the address after the
/// syscall instruction, RFLAGS before it).
fn one_call(nr: i64) -> (i64, u64, u64, [u64; 11], u64, u64) {
    let mut block = [0u64; 12];
    block[..11].copy_from_slice(&PATTERN);
    block[11] = nr as u64;
    let (rax, rcx, r11, after, flags): (i64, u64, u64, u64, u64);
    // SAFETY: the block saves rbx (reserved by the compiler) itself,
    // declares every other register it changes, and reads and writes
    // `block` only, through the pointer it keeps on the stack.
    unsafe {
        asm!(
            "push rbx",
            "push rax",
            "mov rbx, [rax]",
            "mov rdx, [rax + 8]",
            "mov rsi, [rax + 16]",
            "mov rdi, [rax + 24]",
            "mov r8, [rax + 32]",
            "mov r9, [rax + 40]",
            "mov r10, [rax + 48]",
            "mov r12, [rax + 56]",
            "mov r13, [rax + 64]",
            "mov r14, [rax + 72]",
            "mov r15, [rax + 80]",
            "pushfq",
            "pop r11",
            "movq xmm0, r11",
            "mov rax, [rax + 88]",
            "syscall",
            "2:",
            "movq xmm1, rax",
            "mov rax, [rsp]",
            "mov [rax], rbx",
            "mov [rax + 8], rdx",
            "mov [rax + 16], rsi",
            "mov [rax + 24], rdi",
            "mov [rax + 32], r8",
            "mov [rax + 40], r9",
            "mov [rax + 48], r10",
            "mov [rax + 56], r12",
            "mov [rax + 64], r13",
            "mov [rax + 72], r14",
            "mov [rax + 80], r15",
            "lea rdx, [rip + 2b]",
            "movq rax, xmm1",
            "add rsp, 8",
            "pop rbx",
            inout("rax") block.as_mut_ptr() => rax,
            out("rcx") rcx,
            out("r11") r11,
            out("rdx") after,
            out("xmm0") flags,
            out("xmm1") _,
            out("rsi") _, out("rdi") _, out("r8") _, out("r9") _, out("r10") _,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
        );
    }
    let mut regs = [0u64; 11];
    regs.copy_from_slice(&block[..11]);
    (rax, rcx, r11, regs, after, flags)
}

fn registers() -> Result<(), String> {
    // SAFETY: no preconditions.
    let (pid, tid, ppid) = unsafe { (libc::getpid(), libc::gettid(), libc::getppid()) };
    for (name, nr, want) in [
        ("getpid", libc::SYS_getpid, pid),
        ("gettid", libc::SYS_gettid, tid),
        ("getppid", libc::SYS_getppid, ppid),
    ] {
        let (rax, rcx, r11, regs, after, flags) = one_call(nr);
        // RF (bit 16) is never seen by user code; compare the rest.
        check(
            rax == want as i64 && regs == PATTERN && rcx == after && r11 & !0x10000 == flags,
            format_args!(
                "{name}: {rax} (libc {want}); rbx..r15 kept: {}; rcx = return address: {}; \
                 r11 = RFLAGS: {}",
                regs == PATTERN,
                rcx == after,
                r11 & !0x10000 == flags
            ),
        )?;
    }
    Ok(())
}

fn in_thread_and_orphan() -> Result<(), String> {
    // SAFETY: no preconditions.
    let (pid, ppid) = unsafe { (libc::getpid(), libc::getppid()) };
    let t = std::thread::spawn(|| {
        // SAFETY: no preconditions.
        unsafe {
            (
                one_call(libc::SYS_getpid).0,
                one_call(libc::SYS_getppid).0,
                libc::gettid(),
            )
        }
    });
    let (tp, tpp, ttid) = t.join().map_err(|_| "thread panicked")?;
    check(
        tp == pid as i64 && tpp == ppid as i64 && ttid != pid,
        format_args!("a thread sees getpid {tp} and getppid {tpp} (process: {pid}, {ppid}), its own tid {ttid}"),
    )?;
    // A grandchild whose parent exits is reparented: getppid changes.
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err("pipe failed".into());
    }
    let mid = fork()?;
    if mid == 0 {
        // SAFETY: no preconditions.
        let mid_pid = unsafe { libc::getpid() } as i64;
        if fork().unwrap_or(-1) == 0 {
            // The middle process may be gone already: wait until getppid
            // no longer names it.
            let mut p = mid_pid;
            let t = Instant::now();
            while p == mid_pid && t.elapsed() < Duration::from_secs(10) {
                p = one_call(libc::SYS_getppid).0;
            }
            let msg = [(p != mid_pid && p > 0) as u8];
            // SAFETY: msg is a valid one-byte buffer.
            unsafe { libc::write(fds[1], msg.as_ptr().cast(), 1) };
            // SAFETY: exiting the grandchild.
            unsafe { libc::_exit(0) };
        }
        // SAFETY: exiting the middle process.
        unsafe { libc::_exit(0) };
    }
    wait_ok(mid, "the middle process exits")?;
    let mut msg = [0u8];
    // SAFETY: msg is a valid one-byte buffer.
    let n = unsafe { libc::read(fds[0], msg.as_mut_ptr().cast(), 1) };
    // SAFETY: closing our own descriptors.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    check(
        n == 1 && msg[0] == 1,
        "an orphaned grandchild sees getppid change once its parent exits",
    )
}

static SIGNALS: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_usr1(_: i32) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

fn signals_during_leaf_calls() -> Result<(), String> {
    // SAFETY: installing a handler that only touches an atomic.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_usr1 as extern "C" fn(i32) as usize;
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
    // SAFETY: no preconditions.
    let (me, ppid) = unsafe { (libc::getpid(), libc::getppid()) };
    // SAFETY: cpu_set_t is plain data, filled by the call.
    let mut all: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid set of its size.
    unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut all) };
    let apart = crate::util::cpus() >= 2;
    if apart {
        crate::util::pin(0, 0)?;
    }
    let sender = fork()?;
    if sender == 0 {
        if apart && crate::util::pin(0, 1).is_err() {
            // SAFETY: exiting the sender.
            unsafe { libc::_exit(1) };
        }
        // Spread over a fifth of a second or more, so that some land
        // while the caller is between being queued and picked again.
        for _ in 0..200 {
            // SAFETY: no memory preconditions.
            unsafe {
                libc::kill(me, libc::SIGUSR1);
                libc::usleep(1000);
            }
        }
        // SAFETY: exiting the sender.
        unsafe { libc::_exit(0) };
    }
    let t = Instant::now();
    let (mut calls, mut wrong) = (0u64, 0u64);
    let mut done = false;
    while t.elapsed() < Duration::from_secs(30) {
        for _ in 0..1000 {
            calls += 1;
            if one_call(libc::SYS_getppid).0 != ppid as i64 {
                wrong += 1;
            }
        }
        // SAFETY: no preconditions.
        unsafe { libc::sched_yield() };
        // SAFETY: polling for the sender's exit without blocking.
        if !done && unsafe { libc::waitpid(sender, std::ptr::null_mut(), libc::WNOHANG) } == sender
        {
            done = true;
            break;
        }
    }
    if !done {
        wait(sender)?;
    }
    // SAFETY: the set read above.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &all) };
    // A pending signal the thread does not block is delivered before any
    // return to user mode: none may be left once the sender is gone (one
    // whose notice was lost stays pending, and every later one with it).
    // SAFETY: sigset_t is plain data, filled by the call.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid set.
    unsafe { libc::sigpending(&mut set) };
    // SAFETY: a set filled above.
    let left = unsafe { libc::sigismember(&set, libc::SIGUSR1) } == 1;
    let got = SIGNALS.load(Ordering::SeqCst);
    check(
        wrong == 0 && got >= 1 && !left,
        format_args!(
            "{calls} getppid calls while another process sent SIGUSR1 200 times: \
             {wrong} wrong answers, handler ran {got} times, one left pending: {left}"
        ),
    )
}

pub fn run(_: &[String]) -> Result<(), String> {
    registers()?;
    in_thread_and_orphan()?;
    signals_during_leaf_calls()
}
