//! Passing descriptors and credentials over AF_UNIX: SCM_RIGHTS gives the
//! receiver the same open file (shared offset), several at once, with
//! MSG_CMSG_CLOEXEC, cut short (MSG_CTRUNC) when the control buffer is
//! small; a socket passed over itself and closed is released (no hang,
//! no leak); SO_PASSCRED delivers SCM_CREDENTIALS; bad descriptors are
//! EBADF.

use crate::sock::*;
use crate::util::{check, close, errno, fork, meminfo_kib, wait_ok};

const CMSG_HDR: usize = 16;

fn cmsg_space(n: usize) -> usize {
    CMSG_HDR + ((n + 7) & !7)
}

/// sendmsg of `data` with `fds` as SCM_RIGHTS (and `creds` if given).
fn send_fds(sock: i32, data: &[u8], fds: &[i32], creds: Option<libc::ucred>) -> R {
    let mut ctl = vec![0u8; cmsg_space(fds.len() * 4) + cmsg_space(12)];
    let mut off = 0;
    if !fds.is_empty() {
        let len = CMSG_HDR + fds.len() * 4;
        ctl[..8].copy_from_slice(&(len as u64).to_le_bytes());
        ctl[8..12].copy_from_slice(&libc::SOL_SOCKET.to_le_bytes());
        ctl[12..16].copy_from_slice(&libc::SCM_RIGHTS.to_le_bytes());
        for (i, fd) in fds.iter().enumerate() {
            ctl[16 + i * 4..20 + i * 4].copy_from_slice(&fd.to_le_bytes());
        }
        off = cmsg_space(fds.len() * 4);
    }
    if let Some(c) = creds {
        let len = CMSG_HDR + 12;
        ctl[off..off + 8].copy_from_slice(&(len as u64).to_le_bytes());
        ctl[off + 8..off + 12].copy_from_slice(&libc::SOL_SOCKET.to_le_bytes());
        ctl[off + 12..off + 16].copy_from_slice(&libc::SCM_CREDENTIALS.to_le_bytes());
        ctl[off + 16..off + 20].copy_from_slice(&c.pid.to_le_bytes());
        ctl[off + 20..off + 24].copy_from_slice(&c.uid.to_le_bytes());
        ctl[off + 24..off + 28].copy_from_slice(&c.gid.to_le_bytes());
        off += cmsg_space(12);
    }
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut _,
        iov_len: data.len(),
    };
    // SAFETY: plain data.
    let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
    m.msg_iov = &mut iov;
    m.msg_iovlen = 1;
    if off > 0 {
        m.msg_control = ctl.as_mut_ptr().cast();
        m.msg_controllen = off;
    }
    // SAFETY: valid msghdr.
    r(unsafe { libc::sendmsg(sock, &m, 0) })
}

/// What recvmsg returned: data, fds (SCM_RIGHTS), creds, msg_flags.
struct Got {
    data: Vec<u8>,
    fds: Vec<i32>,
    creds: Option<libc::ucred>,
    flags: i32,
}

fn recv_fds(sock: i32, ctl_room: usize, flags: i32) -> Result<Got, i32> {
    let mut buf = vec![0u8; 256];
    let mut ctl = vec![0u8; ctl_room.max(1)];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: plain data.
    let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
    m.msg_iov = &mut iov;
    m.msg_iovlen = 1;
    if ctl_room > 0 {
        m.msg_control = ctl.as_mut_ptr().cast();
        m.msg_controllen = ctl_room;
    }
    // SAFETY: valid msghdr.
    let n = r(unsafe { libc::recvmsg(sock, &mut m, flags) })?;
    buf.truncate(n as usize);
    let mut got = Got {
        data: buf,
        fds: vec![],
        creds: None,
        flags: m.msg_flags,
    };
    let used = m.msg_controllen;
    let mut off = 0;
    while off + CMSG_HDR <= used {
        let len = u64::from_le_bytes(ctl[off..off + 8].try_into().unwrap_or([0; 8])) as usize;
        let level = i32::from_le_bytes(ctl[off + 8..off + 12].try_into().unwrap_or([0; 4]));
        let ty = i32::from_le_bytes(ctl[off + 12..off + 16].try_into().unwrap_or([0; 4]));
        if len < CMSG_HDR || off + len > ctl.len() {
            break;
        }
        let d = &ctl[off + 16..off + len];
        if level == libc::SOL_SOCKET && ty == libc::SCM_RIGHTS {
            got.fds.extend(
                d.chunks_exact(4)
                    .map(|c| i32::from_le_bytes(c.try_into().unwrap_or([0; 4]))),
            );
        }
        if level == libc::SOL_SOCKET && ty == libc::SCM_CREDENTIALS && d.len() >= 12 {
            got.creds = Some(libc::ucred {
                pid: i32::from_le_bytes(d[..4].try_into().unwrap_or([0; 4])),
                uid: u32::from_le_bytes(d[4..8].try_into().unwrap_or([0; 4])),
                gid: u32::from_le_bytes(d[8..12].try_into().unwrap_or([0; 4])),
            });
        }
        off += (len + 7) & !7;
    }
    Ok(got)
}

fn cloexec(fd: i32) -> bool {
    // SAFETY: fcntl on a descriptor.
    unsafe { libc::fcntl(fd, libc::F_GETFD) & libc::FD_CLOEXEC != 0 }
}

pub fn run(_: &[String]) -> Result<(), String> {
    let (a, b) = pair(libc::SOCK_STREAM)?;
    // A file: the receiver's descriptor shares the offset.
    let path = format!("/tmp/rsetest-scm-{}", std::process::id());
    std::fs::write(&path, b"0123456789").map_err(|e| e.to_string())?;
    let cpath = std::ffi::CString::new(path.clone()).map_err(|e| e.to_string())?;
    // SAFETY: a valid C string.
    let f = unsafe { libc::open(cpath.as_ptr(), libc::O_RDONLY) };
    let (pr, pw) = crate::util::pipe()?;
    check(
        send_fds(a, b"fds", &[f, pw], None) == Ok(3),
        "sendmsg with two descriptors (a file and a pipe's write end)",
    )?;
    let child = fork()?;
    if child == 0 {
        // The child receives them and uses them.
        let ok = (|| -> Result<(), String> {
            let g = recv_fds(b, 64, libc::MSG_CMSG_CLOEXEC).map_err(errname_net)?;
            if g.data != b"fds" || g.fds.len() != 2 {
                return Err(format!("got {:?} {:?}", g.data, g.fds));
            }
            if !cloexec(g.fds[0]) || !cloexec(g.fds[1]) {
                return Err("MSG_CMSG_CLOEXEC not set".into());
            }
            let mut buf = [0u8; 4];
            // SAFETY: valid buffer.
            unsafe { libc::read(g.fds[0], buf.as_mut_ptr().cast(), 4) };
            // SAFETY: valid buffer.
            unsafe { libc::write(g.fds[1], b"via passed pipe".as_ptr().cast(), 15) };
            Ok(())
        })();
        crate::util::child_exit(if ok.is_ok() { 0 } else { 1 });
    }
    wait_ok(
        child,
        "a child receives both descriptors (MSG_CMSG_CLOEXEC) and uses them",
    )?;
    let mut buf = [0u8; 32];
    // SAFETY: valid buffer.
    let n = unsafe { libc::read(pr, buf.as_mut_ptr().cast(), 32) };
    check(
        n == 15 && &buf[..15] == b"via passed pipe",
        "the pipe passed to the child reaches us",
    )?;
    // SAFETY: valid buffer.
    let n = unsafe { libc::read(f, buf.as_mut_ptr().cast(), 32) };
    check(
        n == 6 && &buf[..6] == b"456789",
        "the passed file shares our offset (the child read 4 bytes)",
    )?;
    // MSG_PEEK then the real read: both give descriptors.
    send_fds(a, b"p", &[pr], None).map_err(errname_net)?;
    let g1 = recv_fds(b, 64, libc::MSG_PEEK).map_err(errname_net)?;
    let g2 = recv_fds(b, 64, 0).map_err(errname_net)?;
    check(
        g1.fds.len() == 1 && g2.fds.len() == 1 && g1.fds[0] != g2.fds[0],
        "MSG_PEEK installs the descriptors too, then the read again",
    )?;
    check(
        !cloexec(g2.fds[0]),
        "without MSG_CMSG_CLOEXEC: no FD_CLOEXEC",
    )?;
    for fd in g1.fds.iter().chain(&g2.fds) {
        close(*fd);
    }
    // A control buffer with room for one of three: MSG_CTRUNC.
    send_fds(a, b"t", &[f, f, f], None).map_err(errname_net)?;
    let g = recv_fds(b, CMSG_HDR + 4, 0).map_err(errname_net)?;
    check(
        g.fds.len() == 1 && g.flags & libc::MSG_CTRUNC != 0,
        format!(
            "room for 1 of 3: 1 installed, MSG_CTRUNC ({} fds, flags {:#x})",
            g.fds.len(),
            g.flags
        ),
    )?;
    for fd in &g.fds {
        close(*fd);
    }
    // No control buffer at all: the data, MSG_CTRUNC, nothing installed.
    send_fds(a, b"n", &[f], None).map_err(errname_net)?;
    let g = recv_fds(b, 0, 0).map_err(errname_net)?;
    check(
        g.data == b"n" && g.flags & libc::MSG_CTRUNC != 0,
        "no control buffer: MSG_CTRUNC",
    )?;
    // Bad descriptors.
    check(
        send_fds(a, b"x", &[9999], None) == Err(libc::EBADF),
        "SCM_RIGHTS with a closed descriptor: EBADF",
    )?;
    // Credentials: nothing without SO_PASSCRED, ours with it.
    send(a, b"c", 0).map_err(errname_net)?;
    let g = recv_fds(b, 64, 0).map_err(errname_net)?;
    check(g.creds.is_none(), "no SCM_CREDENTIALS without SO_PASSCRED")?;
    setsockopt_int(b, libc::SOL_SOCKET, libc::SO_PASSCRED, 1).map_err(errname_net)?;
    send(a, b"c", 0).map_err(errname_net)?;
    let g = recv_fds(b, 64, 0).map_err(errname_net)?;
    // SAFETY: plain calls.
    let me = unsafe {
        libc::ucred {
            pid: libc::getpid(),
            uid: libc::getuid(),
            gid: libc::getgid(),
        }
    };
    check(
        g.creds.map(|c| (c.pid, c.uid, c.gid)) == Some((me.pid, me.uid, me.gid)),
        format!("SO_PASSCRED: SCM_CREDENTIALS with our pid {}", me.pid),
    )?;
    check(
        send_fds(a, b"c", &[], Some(me)) == Ok(1),
        "sendmsg with explicit SCM_CREDENTIALS",
    )?;
    let g = recv_fds(b, 64, 0).map_err(errname_net)?;
    check(g.creds.map(|c| c.pid) == Some(me.pid), "... delivered")?;
    close(a);
    close(b);
    // A socket in flight in its own queue: the data and the descriptors
    // still arrive through another descriptor of it.
    let (x, y) = pair(libc::SOCK_STREAM)?;
    send_fds(y, b"self", &[x, y], None).map_err(errname_net)?;
    // SAFETY: plain syscall.
    let d = unsafe { libc::dup(x) };
    close(x);
    let g = recv_fds(d, 64, 0).map_err(errname_net)?;
    check(
        g.data == b"self" && g.fds.len() == 2,
        "a socket in flight in its own queue: data and both descriptors arrive",
    )?;
    for fd in g.fds {
        close(fd);
    }
    close(d);
    close(y);
    // A chain: each socket's queue holds the previous one, whose queue
    // holds the one before... Closing the last releases all 3000 (a
    // kernel that released them recursively would run off its stack),
    // and the memory comes back.
    let before = meminfo_kib("Slab")?;
    let mut prev: Option<i32> = None;
    for _ in 0..3000 {
        let (p, q) = pair(libc::SOCK_STREAM)?;
        if let Some(pq) = prev {
            send_fds(p, b"c", &[pq], None).map_err(errname_net)?;
            close(pq);
        }
        close(p);
        prev = Some(q);
    }
    if let Some(q) = prev {
        close(q);
    }
    crate::util::sleep_ms(300);
    let after = meminfo_kib("Slab")?;
    check(
        after.saturating_sub(before) < 2048,
        format!("a chain of 3000 sockets each in flight in the next, closed: Slab {before} -> {after} kB"),
    )?;
    let _ = errno();
    close(f);
    close(pr);
    close(pw);
    let _ = std::fs::remove_file(&path);
    Ok(())
}
