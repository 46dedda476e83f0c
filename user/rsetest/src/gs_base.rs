//! The user GS base belongs to the process, like FS: set with
//! arch_prctl(ARCH_SET_GS), it must follow the process across switches
//! and migrations, never leak into another process that runs on the same
//! CPU, be inherited by fork and reset by execve.

use crate::say;
use std::time::{Duration, Instant};

use crate::util::{check, spawn, wait_ok};

const ARCH_SET_GS: i32 = 0x1001;
const ARCH_GET_GS: i32 = 0x1004;

fn get_gs() -> u64 {
    let mut v = 0u64;
    // SAFETY: arch_prctl(ARCH_GET_GS) writes one u64 at the pointer.
    unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_GET_GS, &mut v as *mut u64) };
    v
}

fn set_gs(v: u64) -> i64 {
    // SAFETY: arch_prctl(ARCH_SET_GS) takes the value.
    unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_SET_GS, v) }
}

/// Reads the word at %gs:0, through the base the CPU really uses.
fn read_gs0() -> u64 {
    let v: u64;
    // SAFETY: callers set GS to the address of a live u64 first.
    unsafe { std::arch::asm!("mov {}, gs:[0]", out(reg) v, options(nostack, readonly)) };
    v
}

/// Moves the caller to `cpu` (best effort: the checks look at where it
/// ran, not at whether it moved).
fn pin_all_to(cpu: usize) {
    let _ = crate::util::pin(0, cpu);
}

pub fn run(args: &[String]) -> Result<(), String> {
    if args.first().map(String::as_str) == Some("after-exec") {
        // Only the status speaks: the parent reports.
        crate::util::child_exit(i32::from(get_gs() != 0));
    }
    pin_all_to(0);
    // A bystander on the same CPU, started before anyone set GS: its base
    // must stay 0 while the other process sets and uses its own.
    let bystander = spawn(|| {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(1500) {
            if get_gs() != 0 {
                return Err(format!("bystander sees GS base {:#x}", get_gs()));
            }
            // SAFETY: plain call.
            unsafe { libc::sched_yield() };
        }
        Ok(())
    })?;
    let owner = spawn(|| {
        let word: &'static u64 = Box::leak(Box::new(0x6a5_u64));
        let at = word as *const u64 as u64;
        check(set_gs(at) == 0, "arch_prctl(ARCH_SET_GS)")?;
        let cpus = crate::util::cpus();
        let t0 = Instant::now();
        let mut k = 0;
        while t0.elapsed() < Duration::from_millis(1500) {
            // SAFETY: plain call.
            unsafe { libc::sched_yield() };
            if get_gs() != at || read_gs0() != 0x6a5 {
                return Err(format!(
                    "GS base {:#x} (%gs:0 {:#x}), set {at:#x}",
                    get_gs(),
                    read_gs0()
                ));
            }
            // Move around now and then (migrations keep it too).
            k += 1;
            if k % 50 == 0 {
                pin_all_to((k / 50) % cpus);
            }
        }
        // Inherited by fork.
        let child = spawn(move || {
            check(get_gs() == at, "fork child inherits the GS base")?;
            check(read_gs0() == 0x6a5, "fork child's %gs:0")
        })?;
        wait_ok(child, "fork child")?;
        // Reset by execve.
        let me = std::env::args().next().unwrap_or_default();
        let me = std::ffi::CString::new(me).map_err(|e| e.to_string())?;
        let a0 = std::ffi::CString::new("rsetest").unwrap();
        let a1 = std::ffi::CString::new("gs_base").unwrap();
        let a2 = std::ffi::CString::new("after-exec").unwrap();
        let argv = [a0.as_ptr(), a1.as_ptr(), a2.as_ptr(), std::ptr::null()];
        let child = crate::util::fork()?;
        if child == 0 {
            // SAFETY: argv is a null-terminated array of C strings.
            unsafe { libc::execv(me.as_ptr(), argv.as_ptr()) };
            crate::util::child_exit(3);
        }
        wait_ok(child, "GS base 0 after execve (rsetest gs_base after-exec)")
    })?;
    wait_ok(owner, "GS owner")?;
    wait_ok(bystander, "bystander on the same CPU")?;
    say!("ok: GS base is per process (switches, migrations, fork, execve)");
    Ok(())
}
