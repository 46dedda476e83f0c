//! A non-canonical user RIP must never reach the kernel's `iretq` (on
//! Intel CPUs that faults in ring 0, after swapgs): rt_sigreturn to such
//! an address, a signal handler there and an ELF entry point there each
//! end the process with SIGSEGV, as on Linux, and the kernel lives.

use crate::say;
use crate::util::{check, fork, signame, status_str, wait};

/// An address in the hole between the user and kernel halves.
const HOLE: u64 = 0x0000_8000_0000_1000;

fn dies_of_segv(what: &str, f: impl FnOnce()) -> Result<(), String> {
    let pid = fork()?;
    if pid == 0 {
        f();
        crate::util::child_exit(0);
    }
    let st = wait(pid)?;
    check(
        libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGSEGV,
        format_args!(
            "{what}: child {}, not killed by {}",
            status_str(st),
            signame(libc::SIGSEGV)
        ),
    )?;
    say!("ok: {what}: SIGSEGV");
    Ok(())
}

/// rt_sigreturn with a frame whose saved RIP is `rip`: the frame is built
/// on our stack as the kernel would have (ucontext at rsp + 8 after the
/// restorer's return address is popped... here rsp points at the frame).
fn sigreturn_to(rip: u64) {
    // struct rt_sigframe without the return address: ucontext_t then
    // siginfo. uc_mcontext (struct sigcontext) starts at offset 40 in
    // ucontext_t; rip is its 17th u64 (r8..r15, rdi, rsi, rbp, rbx, rdx,
    // rax, rcx, rsp, rip), eflags the 18th, cs/gs/fs/ss the 19th.
    let mut frame = [0u64; 128];
    let mc = 40 / 8;
    let sp = frame.as_ptr() as u64 + 512;
    frame[mc + 15] = sp; // rsp
    frame[mc + 16] = rip;
    frame[mc + 17] = 0x202; // eflags
    frame[mc + 18] = 0x33 | (0x2b << 48); // cs = 0x33, ss = 0x2b
                                          // SAFETY: rt_sigreturn does not return on success: the process
                                          // continues at `rip` (and dies there); on failure it is killed too.
    unsafe {
        std::arch::asm!(
            "mov rsp, {f}",
            "mov eax, 15",
            "syscall",
            "ud2",
            f = in(reg) frame.as_ptr(),
            options(noreturn)
        )
    }
}

pub fn run(_: &[String]) -> Result<(), String> {
    dies_of_segv("rt_sigreturn to a non-canonical RIP", || sigreturn_to(HOLE))?;
    dies_of_segv("rt_sigreturn to a kernel address", || {
        sigreturn_to(0xffff_ffff_8000_0000)
    })?;
    dies_of_segv("a signal handler at a non-canonical address", || {
        // SAFETY: a sigaction whose handler is a bad address; the signal
        // is then raised: delivery must fail with SIGSEGV.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = HOLE as usize;
            libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
            libc::raise(libc::SIGUSR1);
        }
    })?;
    // An ELF whose entry point is non-canonical: a minimal static ELF
    // written to /tmp and executed.
    let path = "/tmp/rsetest-bad-entry";
    std::fs::write(path, bad_entry_elf()).map_err(|e| format!("{path}: {e}"))?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| format!("chmod {path}: {e}"))?;
    let cpath = std::ffi::CString::new(path).unwrap();
    dies_of_segv("an ELF entry point at a non-canonical address", || {
        let argv = [cpath.as_ptr(), std::ptr::null()];
        // SAFETY: argv is a null-terminated array of C strings.
        unsafe { libc::execv(cpath.as_ptr(), argv.as_ptr()) };
        // execve failing is not what we test; make it visible.
        crate::util::child_exit(7);
    })?;
    let _ = std::fs::remove_file(path);
    say!("ok: still alive");
    Ok(())
}

/// A 64-bit ET_EXEC with one PT_LOAD page of code and e_entry in the
/// non-canonical hole.
fn bad_entry_elf() -> Vec<u8> {
    let mut e = vec![0u8; 4096 + 16];
    let w16 = |e: &mut Vec<u8>, at: usize, v: u16| e[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let w32 = |e: &mut Vec<u8>, at: usize, v: u32| e[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let w64 = |e: &mut Vec<u8>, at: usize, v: u64| e[at..at + 8].copy_from_slice(&v.to_le_bytes());
    e[..4].copy_from_slice(b"\x7fELF");
    e[4] = 2; // 64-bit
    e[5] = 1; // little endian
    e[6] = 1; // version
    w16(&mut e, 16, 2); // ET_EXEC
    w16(&mut e, 18, 62); // x86-64
    w32(&mut e, 20, 1);
    w64(&mut e, 24, HOLE); // e_entry
    w64(&mut e, 32, 64); // e_phoff
    w16(&mut e, 52, 64); // e_ehsize
    w16(&mut e, 54, 56); // e_phentsize
    w16(&mut e, 56, 1); // e_phnum
                        // PT_LOAD, R+X, file offset 0, at 0x400000, one page.
    let ph = 64;
    w32(&mut e, ph, 1);
    w32(&mut e, ph + 4, 5);
    w64(&mut e, ph + 8, 0);
    w64(&mut e, ph + 16, 0x40_0000);
    w64(&mut e, ph + 24, 0x40_0000);
    w64(&mut e, ph + 32, 4096);
    w64(&mut e, ph + 40, 4096);
    w64(&mut e, ph + 48, 4096);
    e
}
