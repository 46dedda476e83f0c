//! A bad memory access kills the process with SIGSEGV (the parent sees
//! WIFSIGNALED && WTERMSIG == SIGSEGV through waitpid), and a SIGSEGV
//! handler, if installed, runs with si_addr set to the faulting address.

use crate::say;
use crate::util::{check, handle, spawn, status_str, wait};
use std::arch::asm;

fn read_at(addr: usize) {
    // SAFETY: not safe at all — this is the point: the access faults and
    // the kernel must kill the process (or run its SIGSEGV handler).
    unsafe { asm!("mov al, byte ptr [{a}]", a = in(reg) addr, out("al") _) };
}

fn write_at(addr: usize) {
    // SAFETY: as in read_at.
    unsafe { asm!("mov byte ptr [{a}], 1", a = in(reg) addr) };
}

fn jump_to(addr: usize) {
    // SAFETY: as in read_at.
    unsafe { asm!("call {a}", a = in(reg) addr, clobber_abi("C")) };
}

/// A bad access to make in a child, and its description.
type Case = (&'static str, Box<dyn Fn()>);

static mut EXPECT_ADDR: usize = 0;

extern "C" fn on_segv(sig: i32, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo with SA_SIGINFO.
    let (addr, signo) = unsafe { ((*info).si_addr() as usize, (*info).si_signo) };
    // SAFETY: written before the fault, single-threaded.
    let expect = unsafe { EXPECT_ADDR };
    let code = if sig == libc::SIGSEGV && signo == libc::SIGSEGV && addr == expect {
        42
    } else {
        say!("not ok: handler got sig {sig} si_signo {signo} si_addr {addr:#x}, expected {expect:#x}");
        43
    };
    crate::util::child_exit(code);
}

pub fn run(_: &[String]) -> Result<(), String> {
    let text = run as *const u8 as usize;
    let cases: [Case; 6] = [
        (
            "read of address 0 (null dereference)",
            Box::new(|| read_at(0)),
        ),
        ("write to address 0", Box::new(|| write_at(0))),
        ("call to address 0", Box::new(|| jump_to(0))),
        ("write to read-only code", Box::new(move || write_at(text))),
        (
            "read of a kernel address 0xffffffff80100000",
            Box::new(|| read_at(0xffff_ffff_8010_0000)),
        ),
        (
            "read of non-canonical 0x800000000000",
            Box::new(|| read_at(0x8000_0000_0000)),
        ),
    ];
    for (what, f) in cases {
        let pid = spawn(|| {
            // Rust's runtime installs a SIGSEGV handler (stack-overflow
            // detection, on a sigaltstack); test the plain default action.
            handle(libc::SIGSEGV, libc::SIG_DFL, 0)?;
            handle(libc::SIGBUS, libc::SIG_DFL, 0)?;
            f();
            Err(format!("{what} did not fault"))
        })?;
        let st = wait(pid)?;
        check(
            libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGSEGV,
            format_args!("child doing a {what}: {}", status_str(st)),
        )?;
    }
    // With Rust's own handler left in place (SA_ONSTACK|SA_SIGINFO on a
    // sigaltstack): it sees a fault outside any guard page, restores the
    // default action and returns, the access faults again and kills.
    let pid = spawn(|| {
        read_at(0);
        Err("the read of address 0 did not fault".into())
    })?;
    let st = wait(pid)?;
    check(
        libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGSEGV,
        format_args!(
            "null read with Rust's sigaltstack SIGSEGV handler installed: {}",
            status_str(st)
        ),
    )?;
    // With a handler: it runs, with si_addr = the faulting address.
    let addr = 16usize;
    let pid = spawn(|| {
        // SAFETY: single-threaded child.
        unsafe { EXPECT_ADDR = addr };
        handle(
            libc::SIGSEGV,
            on_segv as *const () as libc::sighandler_t,
            libc::SA_SIGINFO,
        )?;
        read_at(addr);
        Err("the read of address 16 did not fault".into())
    })?;
    let st = wait(pid)?;
    check(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 42,
        format_args!(
            "a SIGSEGV handler runs with si_addr = {addr:#x} (child {})",
            status_str(st)
        ),
    )?;
    Ok(())
}
