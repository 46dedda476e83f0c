//! sendfile(2) into a non-blocking socket that takes only part of what is
//! offered: the offset (the caller's `*offp`, or the file's own) advances
//! by what was sent, so sending again from there loses nothing; the bytes
//! that arrive are the file's, in order. Also EAGAIN when the socket is
//! full, and sendfile into a pipe.

use std::io::Write;
use std::os::fd::AsRawFd;

use crate::util::{check, errno};

const SIZE: usize = 600 * 1024;

fn pattern() -> Vec<u8> {
    (0..SIZE).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Reads whatever is buffered on non-blocking `fd` into `into`.
fn drain(fd: i32, into: &mut Vec<u8>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return;
        }
        into.extend_from_slice(&buf[..n as usize]);
    }
}

fn pair() -> Result<[i32; 2], String> {
    let mut sv = [0i32; 2];
    // SAFETY: sv has room for two fds.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK,
            0,
            sv.as_mut_ptr(),
        )
    };
    check(r == 0, "socketpair(AF_UNIX, SOCK_STREAM|SOCK_NONBLOCK)")?;
    Ok(sv)
}

pub fn run(_: &[String]) -> Result<(), String> {
    let data = pattern();
    let path = format!("/tmp/rsetest-sendfile-{}", std::process::id());
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&data))
        .map_err(|e| format!("{path}: {e}"))?;
    let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"));
    let _ = std::fs::remove_file(&path);
    let file = file?;
    let fd = file.as_raw_fd();

    // With an offset pointer: the file's own offset stays at 0.
    let [a, b] = pair()?;
    let mut off: libc::off_t = 0;
    let mut got = Vec::new();
    let (mut short, mut eagain) = (0, 0);
    while (off as usize) < SIZE {
        let want = SIZE - off as usize;
        // SAFETY: off is a valid off_t.
        let n = unsafe { libc::sendfile(a, fd, &mut off, want) };
        if n < 0 {
            check(
                errno() == libc::EAGAIN,
                format!("sendfile errno {}", errno()),
            )?;
            eagain += 1;
        } else if (n as usize) < want {
            short += 1;
        }
        drain(b, &mut got);
    }
    drain(b, &mut got);
    check(
        short > 0,
        format!("a full socket took part of a chunk ({short} short sends, {eagain} EAGAIN)"),
    )?;
    check(
        got == data,
        format!(
            "with *offp: {} bytes arrived, the file's {SIZE} in order",
            got.len()
        ),
    )?;
    // SAFETY: lseek on our own fd.
    let pos = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
    check(
        pos == 0,
        format!("with *offp the file offset stays 0 (it is {pos})"),
    )?;

    // Without: the file's offset advances by what was sent.
    let mut got = Vec::new();
    let mut sent = 0usize;
    while sent < SIZE {
        // SAFETY: a null offset pointer uses the file's offset.
        let n = unsafe { libc::sendfile(a, fd, std::ptr::null_mut(), SIZE - sent) };
        if n > 0 {
            sent += n as usize;
            // SAFETY: lseek on our own fd.
            let pos = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
            check(
                pos as usize == sent,
                format!("file offset {pos} after {sent} bytes sent"),
            )?;
        } else {
            check(
                n < 0 && errno() == libc::EAGAIN,
                format!("sendfile returned {n}"),
            )?;
        }
        drain(b, &mut got);
    }
    drain(b, &mut got);
    check(
        got == data,
        format!("without *offp: {} bytes arrived in order", got.len()),
    )?;
    // SAFETY: closing our own fds.
    unsafe {
        libc::close(a);
        libc::close(b);
    }

    // Into a pipe, 4 KiB from offset 1000.
    let mut p = [0i32; 2];
    // SAFETY: p has room for two fds; the rest are our own fds.
    unsafe {
        check(libc::pipe(p.as_mut_ptr()) == 0, "pipe")?;
        let mut off: libc::off_t = 1000;
        let n = libc::sendfile(p[1], fd, &mut off, 4096);
        let mut buf = vec![0u8; 4096];
        let r = libc::read(p[0], buf.as_mut_ptr().cast(), 4096);
        libc::close(p[0]);
        libc::close(p[1]);
        check(
            n == 4096 && off == 5096 && r == 4096 && buf == data[1000..5096],
            format!("sendfile into a pipe: {n} sent, offset {off}, {r} read, bytes equal"),
        )?;
    }
    Ok(())
}
