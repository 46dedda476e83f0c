//! Many loopback connections opened and closed leave nothing behind:
//! `rsetest inet_churn [N]` (default 1000) connects to its own listener
//! N times, sends a byte each way and closes both ends (alternating which
//! closes first). Meanwhile /proc/net/tcp shows the open pair (both ends,
//! ESTABLISHED) beside the listener; afterwards the lines for the
//! listener's port, TIME-WAIT aside (Linux keeps those 60 s, RSE OS
//! none), are the listener's alone, and so are the process's descriptors.

use crate::inet::{bind4, connect4, name, tcp};
use crate::inet_lo::tcp_pair;
use crate::sock::{errname_net, r};
use crate::util::{check, close};

/// /proc/net/tcp lines (past the header) with `port` as the local or
/// remote port: (state, inode) each.
fn lines_for(port: u16) -> Result<Vec<(u8, u64)>, String> {
    let text =
        std::fs::read_to_string("/proc/net/tcp").map_err(|e| format!("/proc/net/tcp: {e}"))?;
    let hex = format!(":{port:04X}");
    let mut v = Vec::new();
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 10 {
            return Err(format!("short /proc/net/tcp line: {l:?}"));
        }
        if f[1].ends_with(&hex) || f[2].ends_with(&hex) {
            let st = u8::from_str_radix(f[3], 16).map_err(|_| format!("bad state in {l:?}"))?;
            let ino = f[9].parse().map_err(|_| format!("bad inode in {l:?}"))?;
            v.push((st, ino));
        }
    }
    Ok(v)
}

/// The inode of a descriptor's socket (fstat).
fn ino(fd: i32) -> u64 {
    // SAFETY: plain data out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-parameter.
    unsafe { libc::fstat(fd, &mut st) };
    st.st_ino
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

pub fn run(args: &[String]) -> Result<(), String> {
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let fds0 = open_fds();
    let l = tcp()?;
    bind4(l, [127, 0, 0, 1], 0).map_err(|e| format!("bind: {}", errname_net(e)))?;
    // SAFETY: plain syscall.
    r(unsafe { libc::listen(l, 16) } as isize).map_err(|e| format!("listen: {e}"))?;
    let (_, port, _) = name(l, false).map_err(|e| format!("getsockname: {e}"))?;
    let lst = lines_for(port)?;
    check(
        lst == [(0x0A, ino(l))],
        format!("/proc/net/tcp: the listener, LISTEN, its inode (got {lst:?})"),
    )?;
    let (c, a) = tcp_pair(l, port)?;
    let mut open = lines_for(port)?;
    open.sort();
    let mut want = vec![(1, ino(c)), (1, ino(a)), (0x0A, ino(l))];
    want.sort();
    check(
        open == want,
        format!("an open connection: both ends ESTABLISHED with their inodes (got {open:?})"),
    )?;
    close(a);
    close(c);
    let mut b = [0u8; 1];
    for i in 0..n {
        let (c, a) = tcp_pair(l, port)?;
        // SAFETY: valid one-byte buffers.
        let ok = unsafe {
            libc::write(c, b"q".as_ptr().cast(), 1) == 1
                && libc::read(a, b.as_mut_ptr().cast(), 1) == 1
                && libc::write(a, b"r".as_ptr().cast(), 1) == 1
                && libc::read(c, b.as_mut_ptr().cast(), 1) == 1
        };
        if !ok {
            return Err(format!("connection {i}: the byte exchange failed"));
        }
        if i % 2 == 0 {
            close(c);
            close(a);
        } else {
            close(a);
            close(c);
        }
    }
    let c = tcp()?;
    check(
        connect4(c, [127, 0, 0, 1], port) == Ok(0),
        format!("after {n} connections the listener still accepts"),
    )?;
    close(c);
    close(l);
    // The last closes may still be finishing their FIN exchange.
    let mut left = Vec::new();
    for _ in 0..100 {
        left = lines_for(port)?
            .into_iter()
            .filter(|&(st, _)| st != 6)
            .collect();
        if left.is_empty() {
            break;
        }
        crate::util::sleep_ms(50);
    }
    check(
        left.is_empty(),
        format!("after {n} connections and the listener closed: no line for its port but TIME-WAIT (got {left:?})"),
    )?;
    check(
        open_fds() == fds0,
        "the process's descriptors are back to where they were",
    )
}
