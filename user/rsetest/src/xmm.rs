//! User SSE state survives the kernel. Known values are held in all 16
//! XMM registers across, each inside one asm block so the compiler cannot
//! touch them in between:
//! - 100 000 getppid system calls;
//! - 2 000 sched_yield calls while another process spins with other values
//!   in its XMM registers (context switches);
//! - a busy loop long enough to be preempted by the timer;
//! - 1 000 SIGUSR1 sent to self, whose handler zeroes all XMM registers;
//! - SIGUSR1 sent asynchronously by another process (delivered on return
//!   from an interrupt, not a syscall);
//! - 300 round trips between CPU 0 and CPU 1 (sched_setaffinity) while
//!   another process sends SIGUSR1, whose handler zeroes them;
//! - fork (clone): the child must see the same values, and the parent's
//!   survive the child scribbling on its own and exiting.
//!
//! After each, every register must still hold its value.

use crate::say;
use crate::util::{check, wait};
use std::arch::asm;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

// Generated lists of instructions over all 16 XMM registers.

/// Loads XMM0-15 from the 256-byte table at r12.
macro_rules! load16 {
    () => {
        concat!(
            "movdqa xmm0, [r12 + 0]\n",
            "movdqa xmm1, [r12 + 16]\n",
            "movdqa xmm2, [r12 + 32]\n",
            "movdqa xmm3, [r12 + 48]\n",
            "movdqa xmm4, [r12 + 64]\n",
            "movdqa xmm5, [r12 + 80]\n",
            "movdqa xmm6, [r12 + 96]\n",
            "movdqa xmm7, [r12 + 112]\n",
            "movdqa xmm8, [r12 + 128]\n",
            "movdqa xmm9, [r12 + 144]\n",
            "movdqa xmm10, [r12 + 160]\n",
            "movdqa xmm11, [r12 + 176]\n",
            "movdqa xmm12, [r12 + 192]\n",
            "movdqa xmm13, [r12 + 208]\n",
            "movdqa xmm14, [r12 + 224]\n",
            "movdqa xmm15, [r12 + 240]\n",
        )
    };
}

/// Compares XMM0-15 with the table at r12 (destroying them); r14 gets a
/// bit mask of the registers that differ. Uses eax and ecx.
macro_rules! cmp16 {
    () => {
        concat!(
            "xor r14d, r14d\n",
            "pcmpeqb xmm0, [r12 + 0]\n",
            "pmovmskb eax, xmm0\n",
            "cmp eax, 0xffff\n",
            "setne cl\n",
            "movzx ecx, cl\n",
            "shl ecx, 0\n",
            "or r14d, ecx\n",
            "pcmpeqb xmm1, [r12 + 16]\n",
            "pmovmskb eax, xmm1\n",
            "cmp eax, 0xffff\n",
            "setne cl\n",
            "movzx ecx, cl\n",
            "shl ecx, 1\n",
            "or r14d, ecx\n",
            "pcmpeqb xmm2, [r12 + 32]\n",
            "pmovmskb eax, xmm2\n",
            "cmp eax, 0xffff\n",
            "setne cl\n",
            "movzx ecx, cl\n",
            "shl ecx, 2\n",
            "or r14d, ecx\n",
            "pcmpeqb xmm3, [r12 + 48]\n",
            "pmovmskb eax, xmm3\n",
            "cmp eax, 0xffff\n",
            "setne cl\n",
            "movzx ecx, cl\n",
            "shl ecx, 3\n",
            "or r14d, ecx\n",
            "pcmpeqb xmm4, [r12 + 64]\n",
            "pmovmskb eax, xmm4\n",
            "cmp eax, 0xffff\n",
            "setne cl\n",
            "movzx ecx, cl\n",
            "shl ecx, 4\n",
            "or r14d, ecx\n",
            "pcmpeqb xmm5, [r12 + 80]\n",
            "pmovmskb eax, xmm5\n",
            "cmp eax, 0xffff\n",
            "setne cl\n",
            "movzx ecx, cl\n",
            "shl ecx, 5\n",
            "or r14d, ecx\n",
            "pcmpeqb xmm6, [r12 + 96]\n",
            "pmovmskb eax, xmm6\n",
            "cmp eax, 0xffff\n",
            "setne cl\n",
            "movzx ecx, cl\n",
            "shl ecx, 6\n",
            "or r14d, ecx\n",
            "pcmpeqb xmm7, [r12 + 112]\n",
            "pmovmskb eax, xmm7\n",
            "cmp eax, 0xffff\n",
            "setne cl\n",
            "movzx ecx, cl\n",
            "shl ecx, 7\n",
            "or r14d, ecx\n",
            "pcmpeqb xmm8, [r12 + 128]\n",
            "pmovmskb eax, xmm8\n",
            "cmp eax, 0xffff\n",
            "setne cl\n",
            "movzx ecx, cl\n",
            "shl ecx, 8\n",
            "or r14d, ecx\n",
            "pcmpeqb xmm9, [r12 + 144]\n",
            "pmovmskb eax, xmm9\n",
            "cmp eax, 0xffff\n",
            "setne cl\n",
            "movzx ecx, cl\n",
            "shl ecx, 9\n",
            "or r14d, ecx\n",
            "pcmpeqb xmm10, [r12 + 160]\n",
            "pmovmskb eax, xmm10\n",
            "cmp eax, 0xffff\n",
            "setne cl\n",
            "movzx ecx, cl\n",
            "shl ecx, 10\n",
            "or r14d, ecx\n",
            "pcmpeqb xmm11, [r12 + 176]\n",
            "pmovmskb eax, xmm11\n",
            "cmp eax, 0xffff\n",
            "setne cl\n",
            "movzx ecx, cl\n",
            "shl ecx, 11\n",
            "or r14d, ecx\n",
            "pcmpeqb xmm12, [r12 + 192]\n",
            "pmovmskb eax, xmm12\n",
            "cmp eax, 0xffff\n",
            "setne cl\n",
            "movzx ecx, cl\n",
            "shl ecx, 12\n",
            "or r14d, ecx\n",
            "pcmpeqb xmm13, [r12 + 208]\n",
            "pmovmskb eax, xmm13\n",
            "cmp eax, 0xffff\n",
            "setne cl\n",
            "movzx ecx, cl\n",
            "shl ecx, 13\n",
            "or r14d, ecx\n",
            "pcmpeqb xmm14, [r12 + 224]\n",
            "pmovmskb eax, xmm14\n",
            "cmp eax, 0xffff\n",
            "setne cl\n",
            "movzx ecx, cl\n",
            "shl ecx, 14\n",
            "or r14d, ecx\n",
            "pcmpeqb xmm15, [r12 + 240]\n",
            "pmovmskb eax, xmm15\n",
            "cmp eax, 0xffff\n",
            "setne cl\n",
            "movzx ecx, cl\n",
            "shl ecx, 15\n",
            "or r14d, ecx\n",
        )
    };
}

/// Sets XMM0-15 to all ones.
macro_rules! ones16 {
    () => {
        concat!(
            "pcmpeqb xmm0, xmm0\n",
            "pcmpeqb xmm1, xmm1\n",
            "pcmpeqb xmm2, xmm2\n",
            "pcmpeqb xmm3, xmm3\n",
            "pcmpeqb xmm4, xmm4\n",
            "pcmpeqb xmm5, xmm5\n",
            "pcmpeqb xmm6, xmm6\n",
            "pcmpeqb xmm7, xmm7\n",
            "pcmpeqb xmm8, xmm8\n",
            "pcmpeqb xmm9, xmm9\n",
            "pcmpeqb xmm10, xmm10\n",
            "pcmpeqb xmm11, xmm11\n",
            "pcmpeqb xmm12, xmm12\n",
            "pcmpeqb xmm13, xmm13\n",
            "pcmpeqb xmm14, xmm14\n",
            "pcmpeqb xmm15, xmm15\n",
        )
    };
}

/// Sets XMM0-15 to zero.
macro_rules! zero16 {
    () => {
        concat!(
            "pxor xmm0, xmm0\n",
            "pxor xmm1, xmm1\n",
            "pxor xmm2, xmm2\n",
            "pxor xmm3, xmm3\n",
            "pxor xmm4, xmm4\n",
            "pxor xmm5, xmm5\n",
            "pxor xmm6, xmm6\n",
            "pxor xmm7, xmm7\n",
            "pxor xmm8, xmm8\n",
            "pxor xmm9, xmm9\n",
            "pxor xmm10, xmm10\n",
            "pxor xmm11, xmm11\n",
            "pxor xmm12, xmm12\n",
            "pxor xmm13, xmm13\n",
            "pxor xmm14, xmm14\n",
            "pxor xmm15, xmm15\n",
        )
    };
}

#[repr(C, align(16))]
struct Table([[u8; 16]; 16]);

/// The values: byte j of XMMi is (16 i + j) ^ 0x3c (none all-zero or
/// all-ones, all distinct).
static EXPECT: Table = {
    let mut t = [[0u8; 16]; 16];
    let mut i = 0;
    while i < 16 {
        let mut j = 0;
        while j < 16 {
            t[i][j] = ((16 * i + j) as u8) ^ 0x3c;
            j += 1;
        }
        i += 1;
    }
    Table(t)
};

static SIGNALS: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_usr1(_: i32) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
    // SAFETY: only clobbers the XMM registers, declared as clobbered.
    unsafe { asm!(zero16!(), clobber_abi("C")) };
}

/// Loads the values, makes system call `args[0]` with arguments
/// `args[1..4]` `n` times, checks the registers: (mask of registers that
/// changed, last return value).
fn syscall_loop(args: [u64; 4], n: u64) -> (u32, i64) {
    let mut block = [args[0], args[1], args[2], args[3], 0];
    let mask: u64;
    // SAFETY: only registers declared here are changed; block outlives
    // the asm and is read and written through r15 only.
    unsafe {
        asm!(
            load16!(),
            "2:",
            "mov rax, [r15]",
            "mov rdi, [r15 + 8]",
            "mov rsi, [r15 + 16]",
            "mov rdx, [r15 + 24]",
            "syscall",
            "mov [r15 + 32], rax",
            "dec r13",
            "jnz 2b",
            cmp16!(),
            in("r12") EXPECT.0.as_ptr(),
            inout("r13") n => _,
            out("r14") mask,
            in("r15") block.as_mut_ptr(),
            clobber_abi("C"),
        );
    }
    (mask as u32, block[4] as i64)
}

/// Loads the values, spins up to `n` iterations or until `*counter >=
/// target`, checks: (mask, iterations left).
fn spin(n: u64, counter: *const u64, target: u64) -> (u32, u64) {
    let mask: u64;
    let left: u64;
    // SAFETY: only declared registers change; counter is valid for reads.
    unsafe {
        asm!(
            load16!(),
            "2:",
            "cmp qword ptr [r15], rdx",
            "jae 3f",
            "dec r13",
            "jnz 2b",
            "3:",
            cmp16!(),
            in("r12") EXPECT.0.as_ptr(),
            inout("r13") n => left,
            out("r14") mask,
            in("r15") counter,
            in("rdx") target,
            clobber_abi("C"),
        );
    }
    (mask as u32, left)
}

/// Loads the values and, `n` times, moves itself to the CPUs in `a` and
/// then to those in `b` with sched_setaffinity (a migration between CPUs,
/// and tori, each time), then checks: (mask, last return value).
fn migrate_loop(a: &libc::cpu_set_t, b: &libc::cpu_set_t, n: u64) -> (u32, i64) {
    let mask: u64;
    let ret: i64;
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: only declared registers change; the sets outlive the asm
    // and are only read (by the kernel).
    unsafe {
        asm!(
            load16!(),
            "2:",
            "mov eax, 203", // sched_setaffinity
            "xor edi, edi",
            "mov rsi, r9",
            "mov rdx, r15",
            "syscall",
            "mov eax, 203",
            "xor edi, edi",
            "mov rsi, r9",
            "mov rdx, r8",
            "syscall",
            "dec r13",
            "jnz 2b",
            "mov r15, rax",
            cmp16!(),
            in("r12") EXPECT.0.as_ptr(),
            inout("r13") n => _,
            out("r14") mask,
            inout("r15") a as *const libc::cpu_set_t as u64 => ret,
            in("r8") b as *const libc::cpu_set_t,
            in("r9") size,
            clobber_abi("C"),
        );
    }
    (mask as u32, ret)
}

/// Loads the values and forks with clone(SIGCHLD). The child checks its
/// registers, sets them all to ones and exits with 0 if they were right
/// (1 if not); the parent waits for it with wait4 and checks its own:
/// (mask, child pid or -errno, wait4 result, wait status).
fn fork_check() -> (u32, i64, i64, i32) {
    let mut status: i32 = 0;
    let mask: u64;
    let pid: i64;
    let waited: i64;
    // SAFETY: the child runs only this asm and exits inside it; the
    // parent changes only declared registers and `status`.
    unsafe {
        asm!(
            load16!(),
            "mov eax, 56", // clone
            "mov edi, 17", // SIGCHLD
            "xor esi, esi",
            "xor edx, edx",
            "xor r10d, r10d",
            "xor r8d, r8d",
            "syscall",
            "test rax, rax",
            "jnz 3f",
            // child
            cmp16!(),
            ones16!(),
            "xor edi, edi",
            "test r14d, r14d",
            "setnz dil",
            "mov eax, 231", // exit_group
            "syscall",
            "ud2",
            "3:",
            "mov r15, rax",
            "mov rdi, rax",
            "mov rsi, r13",
            "xor edx, edx",
            "xor r10d, r10d",
            "mov eax, 61", // wait4
            "syscall",
            "mov r13, rax",
            cmp16!(),
            in("r12") EXPECT.0.as_ptr(),
            inout("r13") &mut status as *mut i32 => waited,
            out("r14") mask,
            out("r15") pid,
            clobber_abi("C"),
        );
    }
    (mask as u32, pid, waited, status)
}

/// Loads the values, changes XMM7 and compares: proves the check sees a
/// change (the mask must be exactly bit 7).
fn detector_selftest() -> u32 {
    let mask: u64;
    // SAFETY: only declared registers change.
    unsafe {
        asm!(
            load16!(),
            "paddb xmm7, xmm1",
            cmp16!(),
            in("r12") EXPECT.0.as_ptr(),
            out("r14") mask,
            clobber_abi("C"),
        );
    }
    mask as u32
}

/// A child that keeps other values in its XMM registers, changing them,
/// and yields now and then, until killed.
fn clobberer() -> Result<libc::pid_t, String> {
    let pid = crate::util::fork()?;
    if pid == 0 {
        // SAFETY: never returns; the child is killed by the parent.
        unsafe {
            asm!(
                ones16!(),
                "2:",
                "paddb xmm0, xmm1",
                "paddb xmm2, xmm0",
                "paddb xmm15, xmm2",
                "mov ecx, 65536",
                "3:",
                "dec ecx",
                "jnz 3b",
                "mov eax, 24", // sched_yield
                "syscall",
                "jmp 2b",
                options(noreturn),
            );
        }
    }
    Ok(pid)
}

fn regs(mask: u32) -> String {
    if mask == 0 {
        "all 16 intact".into()
    } else {
        let bad: Vec<String> = (0..16)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| format!("xmm{i}"))
            .collect();
        format!("CHANGED: {}", bad.join(" "))
    }
}

/// ru_nivcsw from getrusage, if the kernel provides it.
fn involuntary_switches() -> Option<i64> {
    // SAFETY: ru is a valid out-pointer.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        (libc::getrusage(libc::RUSAGE_SELF, &mut ru) == 0).then_some(ru.ru_nivcsw)
    }
}

fn kill(pid: libc::pid_t, sig: i32) {
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(pid, sig) };
}

/// Spins for 400 ms in chunks while the clobberer competes for the CPU.
fn busy_phase() -> Result<(), String> {
    let switches = involuntary_switches();
    let t = Instant::now();
    let mut chunks = 0;
    let mut mask = 0;
    let zero = 0u64;
    while t.elapsed() < Duration::from_millis(400) {
        mask |= spin(1 << 22, &zero, u64::MAX).0;
        chunks += 1;
    }
    check(
        mask == 0,
        format_args!(
            "busy loop for 400 ms ({chunks} chunks, {} involuntary context switches) \
             while another process competes: {}",
            match (switches, involuntary_switches()) {
                (Some(a), Some(b)) => (b - a).to_string(),
                _ => "? (getrusage failed)".into(),
            },
            regs(mask)
        ),
    )
}

pub fn run(_: &[String]) -> Result<(), String> {
    crate::util::handle(
        libc::SIGUSR1,
        on_usr1 as *const () as libc::sighandler_t,
        libc::SA_RESTART,
    )?;
    let m = detector_selftest();
    check(
        m == 1 << 7,
        format_args!("the check itself notices a changed xmm7 ({})", regs(m)),
    )?;
    // Keep everything on one CPU where the kernel allows it, so the other
    // processes below really take turns with us (ignored if unsupported).
    // SAFETY: set is a valid cpu_set_t.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        let _ = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }

    // SAFETY: getppid has no preconditions.
    let ppid = unsafe { libc::getppid() } as i64;
    let (mask, ret) = syscall_loop([libc::SYS_getppid as u64, 0, 0, 0], 100_000);
    check(
        mask == 0 && ret == ppid,
        format_args!("getppid x100000 (returned {ret}): {}", regs(mask)),
    )?;

    let other = clobberer()?;
    let (mask, ret) = syscall_loop([libc::SYS_sched_yield as u64, 0, 0, 0], 2_000);
    let r1 = check(
        mask == 0 && ret == 0,
        format_args!(
            "sched_yield x2000 with another process spinning (returned {ret}): {}",
            regs(mask)
        ),
    );

    let r2 = busy_phase();

    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() } as u64;
    let before = SIGNALS.load(Ordering::SeqCst);
    let (mask, ret) = syscall_loop([libc::SYS_kill as u64, me, libc::SIGUSR1 as u64, 0], 1_000);
    let got = SIGNALS.load(Ordering::SeqCst) - before;
    let r3 = check(
        mask == 0 && ret == 0 && got == 1_000,
        format_args!(
            "kill(self, SIGUSR1) x1000, handler zeroing XMM ran {got} times: {}",
            regs(mask)
        ),
    );

    // Signals from another process arrive while we spin in user mode.
    let r4 = (|| {
        let parent = me as libc::pid_t;
        let sender = crate::util::fork()?;
        if sender == 0 {
            loop {
                kill(parent, libc::SIGUSR1);
                // SAFETY: no preconditions.
                unsafe { libc::sched_yield() };
            }
        }
        let target = SIGNALS.load(Ordering::SeqCst) + 50;
        let t = Instant::now();
        let mut mask = 0;
        while SIGNALS.load(Ordering::SeqCst) < target && t.elapsed() < Duration::from_secs(20) {
            mask |= spin(1 << 24, SIGNALS.as_ptr(), target).0;
        }
        kill(sender, libc::SIGKILL);
        wait(sender)?;
        let got = 50 + SIGNALS.load(Ordering::SeqCst) - target;
        check(
            mask == 0 && got >= 50,
            format_args!(
                "{got} SIGUSR1 from another process delivered while spinning: {}",
                regs(mask)
            ),
        )
    })();

    // Migrations between CPUs while another process sends signals whose
    // handler zeroes the XMM registers: the state must follow the process
    // from CPU to CPU, and the handler's values must never leak back.
    let r6 = (|| {
        // SAFETY: sysconf has no preconditions.
        let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        if cpus < 2 {
            say!("ok: one CPU online: no migration to test");
            return Ok(());
        }
        // SAFETY: zeroed cpu_set_t values are valid empty sets; CPU_SET
        // writes inside them.
        let (a, b) = unsafe {
            let (mut a, mut b): (libc::cpu_set_t, libc::cpu_set_t) = std::mem::zeroed();
            libc::CPU_SET(0, &mut a);
            libc::CPU_SET(1, &mut b);
            (a, b)
        };
        let parent = me as libc::pid_t;
        let sender = crate::util::fork()?;
        if sender == 0 {
            loop {
                kill(parent, libc::SIGUSR1);
                // SAFETY: no preconditions.
                unsafe { libc::sched_yield() };
            }
        }
        let before = SIGNALS.load(Ordering::SeqCst);
        let (mask, ret) = migrate_loop(&a, &b, 300);
        let got = SIGNALS.load(Ordering::SeqCst) - before;
        kill(sender, libc::SIGKILL);
        wait(sender)?;
        // Back to CPU 0 for the rest.
        // SAFETY: a is a valid cpu_set_t.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &a) };
        check(
            mask == 0 && ret == 0 && got > 0,
            format_args!(
                "300 round trips between CPU 0 and CPU 1 (sched_setaffinity, last returned {ret}) \
                 with {got} SIGUSR1 handled on the way: {}",
                regs(mask)
            ),
        )
    })();

    let mut r5 = Ok(());
    for i in 0..20 {
        let (mask, pid, waited, st) = fork_check();
        let child_ok = libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0;
        r5 = check(
            mask == 0 && pid > 0 && waited == pid && child_ok,
            format_args!(
                "fork #{i} (clone -> {pid}, wait4 -> {waited}, child {}): child saw its copy intact, parent {}",
                crate::util::status_str(st),
                regs(mask)
            ),
        );
        if r5.is_err() {
            break;
        }
    }
    kill(other, libc::SIGKILL);
    let st = wait(other)?;
    check(
        libc::WIFSIGNALED(st),
        "the competing process was killed and reaped",
    )?;
    r1.and(r2).and(r3).and(r4).and(r5).and(r6)
}
