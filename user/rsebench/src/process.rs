//! Process creation: fork + _exit + waitpid, and the same with an execve
//! of this (static) binary in the child.

use crate::{clock, sys, Outcome, Size};

pub fn fork_exit_wait(size: Size) -> Outcome {
    Outcome::NsPerOp(clock::per_op(size.n(1_000), |_| {
        let pid = sys::fork(|| 0);
        sys::wait(pid);
    }))
}

pub fn fork_execve_wait(size: Size) -> Outcome {
    let path = sys::self_path();
    let arg = sys::cstr("exit");
    Outcome::NsPerOp(clock::per_op(size.n(300), |_| {
        let pid = sys::fork(|| {
            let argv = [sys::as_ptr(&path), sys::as_ptr(&arg), std::ptr::null()];
            let envp = [std::ptr::null()];
            // SAFETY: argv and envp are NULL-terminated arrays of C strings
            // that live until the call.
            unsafe { libc::execve(argv[0], argv.as_ptr(), envp.as_ptr()) };
            127
        });
        if sys::wait(pid) != 0 {
            sys::die("execve child failed");
        }
    }))
}
