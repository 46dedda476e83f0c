//! 200 children alive at once, each exiting with its own code; the parent
//! reaps every one with waitpid(-1) and checks each code against the pid.

use crate::util::{check, close, errname, errno, fork, pipe, read_byte, wait};
use std::collections::HashMap;

const N: usize = 200;

pub fn run(_: &[String]) -> Result<(), String> {
    // The children block on a pipe until all 200 exist, so they really are
    // concurrent; closing the write end releases them all at once.
    let (r, w) = pipe()?;
    let mut expect: HashMap<libc::pid_t, i32> = HashMap::new();
    for i in 0..N {
        let pid = match fork() {
            Ok(p) => p,
            Err(e) => {
                close(w);
                return Err(format!("fork #{i}: {e}"));
            }
        };
        if pid == 0 {
            close(w);
            let got = read_byte(r); // EOF once the parent closes w
            crate::util::child_exit(if got.is_none() { (i % 256) as i32 } else { 255 });
        }
        expect.insert(pid, (i % 256) as i32);
    }
    check(
        expect.len() == N,
        format_args!("forked {N} children with distinct pids"),
    )?;
    close(w);
    close(r);
    let mut codes = Vec::new();
    for n in 0..N {
        let mut st = 0;
        let pid = loop {
            // SAFETY: st is a valid out-pointer.
            let p = unsafe { libc::waitpid(-1, &mut st, 0) };
            if p < 0 && errno() == libc::EINTR {
                continue;
            }
            break p;
        };
        if pid <= 0 {
            return Err(format!("waitpid(-1) #{n} failed: {}", errname(errno())));
        }
        let Some(want) = expect.remove(&pid) else {
            return Err(format!("waitpid returned unknown or repeated pid {pid}"));
        };
        if !(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == want) {
            return Err(format!(
                "child {pid} should exit with {want}: {}",
                crate::util::status_str(st)
            ));
        }
        codes.push(want);
    }
    codes.sort();
    check(
        codes == (0..N as i32).collect::<Vec<_>>(),
        format_args!("reaped all {N} children, exit codes 0..{} each once", N - 1),
    )?;
    let r = wait(-1);
    check(
        r.as_ref().is_err_and(|e| e.contains("ECHILD")),
        format_args!("then waitpid(-1) fails with ECHILD ({r:?})"),
    )?;
    Ok(())
}
