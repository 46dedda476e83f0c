//! Segment selectors a program hands back through rt_sigreturn. As on
//! Linux, CS and SS come back as saved (with RPL 3), so a selector the CPU
//! refuses makes the kernel's own `iretq` to user mode fault, in ring 0,
//! after `swapgs`. The kernel must recognise that fault as the program's
//! (Linux's bad-iret fixup): SIGSEGV with the refused selectors in the
//! handler's ucontext, which the handler may repair and return through,
//! and the kernel lives. Also: the selectors a program reads are Linux's.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::util::{check, fork, handle, signame, status_str, wait};

/// Linux's user selectors (`__USER_CS`, `__USER_DS`).
const USER_CS: u64 = 0x33;
const USER_DS: u64 = 0x2b;
/// Where cs and ss sit in `gregs[REG_CSGSFS]`.
const SS_SHIFT: u32 = 48;
/// uc_flags: restore SS exactly as saved.
const UC_STRICT_RESTORE_SS: u64 = 0x4;

/// What the SIGUSR1 handler writes into the frame it returns through.
static NEW_SEGS: AtomicU64 = AtomicU64::new(0);
/// uc_flags bits the SIGUSR1 handler clears.
static CLEAR_FLAGS: AtomicU64 = AtomicU64::new(0);
/// The cs|ss word the SIGSEGV handler found in its ucontext (0: none).
static SEGV_SAW: AtomicU64 = AtomicU64::new(0);

fn csgsfs(uc: *mut libc::c_void) -> *mut i64 {
    let uc = uc.cast::<libc::ucontext_t>();
    // SAFETY: the kernel passed a valid ucontext to the handler.
    unsafe { &mut (*uc).uc_mcontext.gregs[libc::REG_CSGSFS as usize] }
}

extern "C" fn set_segs(_: i32, _: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    let g = csgsfs(uc);
    // SAFETY: g and uc point into the handler's ucontext.
    unsafe {
        let keep = (*g as u64) & 0x0000_ffff_ffff_0000; // gs, fs
        *g = (keep | NEW_SEGS.load(Ordering::Relaxed)) as i64;
        (*uc.cast::<libc::ucontext_t>()).uc_flags &= !CLEAR_FLAGS.load(Ordering::Relaxed);
    }
}

/// Records the refused selectors and puts Linux's usual ones back, so the
/// return from this handler succeeds.
extern "C" fn repair(_: i32, _: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    let g = csgsfs(uc);
    // SAFETY: g points into the handler's ucontext.
    unsafe {
        let v = *g as u64;
        SEGV_SAW.store(v & 0xffff_0000_0000_ffff, Ordering::Relaxed);
        *g = ((v & 0x0000_ffff_ffff_0000) | USER_CS | (USER_DS << SS_SHIFT)) as i64;
    }
}

/// A child raises SIGUSR1, whose handler returns with `segs` (cs | ss<<48)
/// and `clear` taken out of uc_flags; with `fix`, a SIGSEGV handler
/// repairs the frame. Returns the child's wait status.
fn child(segs: u64, clear: u64, fix: bool) -> Result<i32, String> {
    let pid = fork()?;
    if pid == 0 {
        NEW_SEGS.store(segs, Ordering::Relaxed);
        CLEAR_FLAGS.store(clear, Ordering::Relaxed);
        let ok = handle(
            libc::SIGUSR1,
            set_segs as *const () as libc::sighandler_t,
            libc::SA_SIGINFO,
        )
        .is_ok()
            && (!fix
                || handle(
                    libc::SIGSEGV,
                    repair as *const () as libc::sighandler_t,
                    libc::SA_SIGINFO,
                )
                .is_ok());
        // A value the return path must carry through the fault untouched:
        // the signal arrives on the way out of this kill(2).
        // SAFETY: getpid and kill(self, SIGUSR1) have no memory effects.
        let pid = unsafe { libc::getpid() };
        let marker: u64;
        // SAFETY: a raw kill(2); rcx and r11 are the syscall's clobbers.
        unsafe {
            std::arch::asm!(
                "mov r12, {m}",
                "syscall",
                "mov {out}, r12",
                m = const 0x5eed_1234_u64,
                out = out(reg) marker,
                inout("rax") libc::SYS_kill => _,
                in("rdi") pid,
                in("rsi") libc::SIGUSR1,
                out("rcx") _,
                out("r11") _,
                out("r12") _,
            );
        }
        let saw = SEGV_SAW.load(Ordering::Relaxed);
        let code = if !ok {
            2
        } else if marker != 0x5eed_1234 {
            3
        } else if fix && saw != segs {
            4
        } else {
            0
        };
        crate::util::child_exit(code);
    }
    wait(pid)
}

fn expect_segv(what: &str, segs: u64, clear: u64) -> Result<(), String> {
    let st = child(segs, clear, false)?;
    check(
        libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGSEGV,
        format_args!(
            "{what}: {} (want {})",
            status_str(st),
            signame(libc::SIGSEGV)
        ),
    )
}

/// Exit codes of `child`: 2 sigaction failed, 3 a register was lost, 4
/// the SIGSEGV handler did not see the refused selectors.
fn expect_exit0(what: &str, segs: u64, clear: u64, fix: bool) -> Result<(), String> {
    let st = child(segs, clear, fix)?;
    check(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        format_args!("{what}: {} (want exit 0)", status_str(st)),
    )
}

pub fn run(_: &[String]) -> Result<(), String> {
    let (cs, ss): (u64, u64);
    // SAFETY: reading segment registers has no side effects.
    unsafe {
        std::arch::asm!("mov {0:x}, cs", "mov {1:x}, ss", out(reg) cs, out(reg) ss);
    }
    check(
        cs & 0xffff == USER_CS && ss & 0xffff == USER_DS,
        format_args!("selectors cs {cs:#x} ss {ss:#x} (Linux's: {USER_CS:#x} {USER_DS:#x})"),
    )?;
    let usual = USER_CS | (USER_DS << SS_SHIFT);
    expect_exit0("returning the selectors unchanged", usual, 0, false)?;
    // Past the end of any GDT: #GP on the iretq.
    expect_segv("CS beyond the GDT", 0x1003 | (USER_DS << SS_SHIFT), 0)?;
    // The kernel's code segment with RPL 3: its DPL 0 refuses (#GP).
    let kernel_cs = (0x08 | 3) | (USER_DS << SS_SHIFT);
    expect_segv("the kernel's CS", kernel_cs, 0)?;
    // A null SS is refused in 64-bit ring 3; the kernel's frame asks for
    // strict restore, so it comes back as saved and faults.
    expect_segv("a null SS (strict restore)", USER_CS, 0)?;
    // Without strict restore, a 64-bit CS gets the usual SS back.
    expect_exit0(
        "a null SS without strict restore: the usual SS",
        USER_CS,
        UC_STRICT_RESTORE_SS,
        false,
    )?;
    // The fault is the program's: its SIGSEGV handler sees the refused
    // selectors, repairs them, and the program goes on with its registers.
    expect_exit0(
        "a SIGSEGV handler repairs a refused CS and the program goes on",
        0x1003 | (USER_DS << SS_SHIFT),
        0,
        true,
    )?;
    Ok(())
}
