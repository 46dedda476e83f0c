//! The user's x87 state and MXCSR survive the kernel: the x87 control word
//! (rounding toward zero, double precision), three values on the x87
//! stack and MXCSR (rounding toward zero) are set, then, inside one asm
//! block so nothing else runs in between:
//! - 20 000 getppid system calls;
//! - 2 000 sched_yield calls while another process on the same CPU runs
//!   with the default control word, other x87 values and the default
//!   MXCSR (context switches);
//! - 400 ms of spinning while that process competes (preemption by the
//!   timer: an interrupt from user mode, then a switch);
//! - 300 SIGUSR1 sent to self, whose handler resets the x87 unit and
//!   MXCSR;
//! - fork: the child must see the same state.
//!
//! Afterwards the control word and MXCSR are read back, the stack is
//! popped, and 1/5 is computed by the x87 and by SSE under the rounding
//! modes in force: all must equal a run of the same block without the
//! system calls. The kernel keeps the x87 state in the registers during a
//! system call and saves it only when it switches tasks or builds a
//! signal frame (crates/hal/src/fpu.rs); this is what checks that rule.

use std::arch::asm;

use crate::util::{check, fork, handle, status_str, wait};

/// x87 control word: all exceptions masked, double precision, rounding
/// toward zero (the default, 0x37f, is extended precision, nearest).
const CW: u16 = 0x0e7f;
/// MXCSR: exceptions masked, rounding toward zero (default 0x1f80).
const MXCSR: u32 = 0x7f80;

/// What the block reads back after its system calls.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct State {
    cw: u16,
    mxcsr: u32,
    /// The x87 stack from the top: 12345, pi, 1 (as doubles).
    stack: [u64; 3],
    /// 1/5 by the x87 (fidiv) and by SSE (divsd), as bits.
    x87_fifth: u64,
    sse_fifth: u64,
}

/// A "system call number" that makes the block spin instead.
const SPIN: u64 = u64::MAX;

#[repr(C)]
struct Block {
    saved_cw: u16,    // 0
    test_cw: u16,     // 2
    saved_mxcsr: u32, // 4
    test_mxcsr: u32,  // 8
    int: i32,         // 12
    five: i32,        // 16
    cw_out: u16,      // 20
    _pad: u16,        // 22
    mxcsr_out: u32,   // 24
    _pad2: u32,       // 28
    stack: [u64; 3],  // 32
    x87_fifth: u64,   // 56
    sse_fifth: u64,   // 64
    one: f64,         // 72
    five_f: f64,      // 80
    args: [u64; 3],   // 88: rax, rdi, rsi of the system call
    ret: u64,         // 112
}

/// Sets the state, makes system call `args` `n` times (none when 0; when
/// `args[0]` is [`SPIN`], spins `n` times instead, to be preempted),
/// reads it back and restores the caller's control word and MXCSR (the
/// ABI's callee-saved parts of the FPU state). Returns the state and the
/// last system call's return value.
fn run_block(args: [u64; 3], n: u64) -> (State, i64) {
    let mut b = Block {
        saved_cw: 0,
        test_cw: CW,
        saved_mxcsr: 0,
        test_mxcsr: MXCSR,
        int: 12345,
        five: 5,
        cw_out: 0,
        _pad: 0,
        mxcsr_out: 0,
        _pad2: 0,
        stack: [0; 3],
        x87_fifth: 0,
        sse_fifth: 0,
        one: 1.0,
        five_f: 5.0,
        args,
        ret: 0,
    };
    // SAFETY: the block reaches memory only through r15 (the Block above,
    // live for the asm); it leaves the x87 stack empty and restores the
    // control word and MXCSR it found; every register it changes is
    // declared (clobber_abi covers x87, MMX, XMM, rax, rcx, r11...).
    unsafe {
        asm!(
            "fnstcw [r15]",
            "stmxcsr [r15 + 4]",
            "fninit",
            "fldcw [r15 + 2]",
            "ldmxcsr [r15 + 8]",
            "fld1",
            "fldpi",
            "fild dword ptr [r15 + 12]",
            "test r13, r13",
            "jz 3f",
            "2:",
            "mov rax, [r15 + 88]",
            "cmp rax, -1",
            "je 4f",
            "mov rdi, [r15 + 96]",
            "mov rsi, [r15 + 104]",
            "syscall",
            "mov [r15 + 112], rax",
            "4:",
            "dec r13",
            "jnz 2b",
            "3:",
            "fnstcw [r15 + 20]",
            "stmxcsr [r15 + 24]",
            "fstp qword ptr [r15 + 32]",
            "fstp qword ptr [r15 + 40]",
            "fstp qword ptr [r15 + 48]",
            "fld1",
            "fidiv dword ptr [r15 + 16]",
            "fstp qword ptr [r15 + 56]",
            "movsd xmm0, [r15 + 72]",
            "divsd xmm0, [r15 + 80]",
            "movsd [r15 + 64], xmm0",
            "fldcw [r15]",
            "ldmxcsr [r15 + 4]",
            inout("r13") n => _,
            in("r15") &mut b as *mut Block,
            clobber_abi("C"),
        );
    }
    let s = State {
        cw: b.cw_out,
        mxcsr: b.mxcsr_out,
        stack: b.stack,
        x87_fifth: b.x87_fifth,
        sse_fifth: b.sse_fifth,
    };
    (s, b.ret as i64)
}

extern "C" fn on_usr1(_: i32) {
    // SAFETY: resets the x87 unit and MXCSR to their defaults and leaves
    // the x87 stack empty; the interrupted state comes back with
    // rt_sigreturn, which is what the test checks.
    unsafe {
        asm!(
            "fninit",
            "fldz",
            "fldz",
            "fstp st(0)",
            "fstp st(0)",
            "push rax",
            "mov dword ptr [rsp], 0x1f80",
            "ldmxcsr [rsp]",
            "pop rax",
            clobber_abi("C"),
        );
    }
}

/// A process on the same CPU with the default x87 state and MXCSR and
/// other values on its stack, yielding now and then, until killed.
fn clobberer() -> Result<libc::pid_t, String> {
    let pid = fork()?;
    if pid == 0 {
        // SAFETY: never returns; the child is killed by the parent.
        unsafe {
            asm!(
                "push rax",
                "2:",
                "fninit",
                "fldz",
                "fldl2e",
                "fldlg2",
                "mov dword ptr [rsp], 0x1f80",
                "ldmxcsr [rsp]",
                "mov ecx, 20000",
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

fn same(what: &str, got: State, want: State) -> Result<(), String> {
    check(
        got == want,
        format_args!(
            "{what}: control word {:#x} (want {:#x}), MXCSR {:#x} (want {:#x}), stack {}, 1/5 {}",
            got.cw,
            want.cw,
            got.mxcsr,
            want.mxcsr,
            if got.stack == want.stack {
                "intact"
            } else {
                "CHANGED"
            },
            if (got.x87_fifth, got.sse_fifth) == (want.x87_fifth, want.sse_fifth) {
                "rounded toward zero by x87 and SSE"
            } else {
                "ROUNDED DIFFERENTLY"
            }
        ),
    )
}

pub fn run(_: &[String]) -> Result<(), String> {
    handle(
        libc::SIGUSR1,
        on_usr1 as *const () as libc::sighandler_t,
        libc::SA_RESTART,
    )?;
    let (want, _) = run_block([0; 3], 0);
    // The reference itself must show the test state, or it proves nothing.
    check(
        want.cw == CW
            && want.mxcsr == MXCSR
            && f64::from_bits(want.stack[0]) == 12345.0
            && f64::from_bits(want.stack[2]) == 1.0
            && want.x87_fifth != 0.2f64.to_bits()
            && want.sse_fifth != 0.2f64.to_bits(),
        format_args!(
            "reference run: control word {:#x}, MXCSR {:#x}, 1/5 rounded toward zero",
            want.cw, want.mxcsr
        ),
    )?;
    // One CPU for everyone, so the clobberer really takes turns with us.
    // SAFETY: set is a valid cpu_set_t.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        let _ = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }

    let (got, _) = run_block([libc::SYS_getppid as u64, 0, 0], 20_000);
    let r1 = same("getppid x20000", got, want);

    let other = clobberer()?;
    let (got, ret) = run_block([libc::SYS_sched_yield as u64, 0, 0], 2_000);
    let r2 = same(
        &format!("sched_yield x2000 (returned {ret}) against a process with the default state"),
        got,
        want,
    );

    // Spinning while the clobberer competes: the timer preempts us (an
    // interrupt from user mode, then a switch).
    let t = std::time::Instant::now();
    let mut chunks = 0;
    let mut last = want;
    while t.elapsed() < std::time::Duration::from_millis(400) && last == want {
        last = run_block([SPIN, 0, 0], 1 << 22).0;
        chunks += 1;
    }
    let r5 = same(
        &format!("spinning for 400 ms ({chunks} chunks) while another process competes"),
        last,
        want,
    );

    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() } as u64;
    let (got, ret) = run_block([libc::SYS_kill as u64, me, libc::SIGUSR1 as u64], 300);
    let r3 = same(
        &format!("kill(self, SIGUSR1) x300 (returned {ret}), handler resets x87 and MXCSR"),
        got,
        want,
    );

    let (got, pid) = run_block([libc::SYS_fork as u64, 0, 0], 1);
    if pid == 0 {
        crate::util::child_exit(if got == want { 0 } else { 1 });
    }
    let r4 = (|| {
        let st = wait(pid as libc::pid_t)?;
        same("fork: the parent", got, want)?;
        check(
            libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
            format_args!("fork: the child saw the same state ({})", status_str(st)),
        )
    })();

    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(other, libc::SIGKILL) };
    wait(other)?;
    r1.and(r2).and(r3).and(r4).and(r5)
}
