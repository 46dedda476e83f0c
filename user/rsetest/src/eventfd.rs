//! eventfd(2): a counter that write adds to and read takes (all of it,
//! or 1 with EFD_SEMAPHORE); EFD_NONBLOCK's EAGAIN at 0 and at the top;
//! a blocked reader woken by a writer; bad sizes and values.

use crate::sock::errname_net;
use crate::util::{check, close, errno, fork, wait_ok};

fn efd(init: u32, flags: i32) -> Result<i32, String> {
    // SAFETY: plain syscall.
    let fd = unsafe { libc::eventfd(init, flags) };
    if fd < 0 {
        return Err(format!("eventfd: {}", errname_net(errno())));
    }
    Ok(fd)
}

fn rd(fd: i32) -> Result<u64, i32> {
    let mut v = 0u64;
    // SAFETY: 8 bytes into a valid u64.
    let n = unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
    if n < 0 {
        Err(errno())
    } else {
        Ok(v)
    }
}

fn wr(fd: i32, v: u64) -> Result<isize, i32> {
    // SAFETY: 8 bytes from a valid u64.
    let n = unsafe { libc::write(fd, (&v as *const u64).cast(), 8) };
    if n < 0 {
        Err(errno())
    } else {
        Ok(n)
    }
}

pub fn run(_: &[String]) -> Result<(), String> {
    let fd = efd(3, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC)?;
    check(wr(fd, 4) == Ok(8), "write adds 4 (8 bytes written)")?;
    check(rd(fd) == Ok(7), "read takes the whole count: 3 + 4")?;
    check(rd(fd) == Err(libc::EAGAIN), "at 0, non-blocking: EAGAIN")?;
    check(
        wr(fd, u64::MAX) == Err(libc::EINVAL),
        "writing 2^64-1: EINVAL",
    )?;
    check(wr(fd, u64::MAX - 1) == Ok(8), "up to 2^64-2 fits")?;
    check(
        wr(fd, 1) == Err(libc::EAGAIN),
        "one more would overflow: EAGAIN",
    )?;
    check(rd(fd) == Ok(u64::MAX - 1), "... read back")?;
    let mut small = [0u8; 4];
    // SAFETY: valid 4-byte buffer.
    let n = unsafe { libc::read(fd, small.as_mut_ptr().cast(), 4) };
    check(n < 0 && errno() == libc::EINVAL, "a 4-byte read: EINVAL")?;
    // SAFETY: valid buffer.
    let n = unsafe { libc::write(fd, small.as_ptr().cast(), 4) };
    check(n < 0 && errno() == libc::EINVAL, "a 4-byte write: EINVAL")?;
    wr(fd, 1).map_err(errname_net)?;
    // SAFETY: bad pointer on purpose.
    let n = unsafe { libc::read(fd, 0x10 as *mut libc::c_void, 8) };
    check(
        n < 0 && errno() == libc::EFAULT,
        "read into a bad pointer: EFAULT",
    )?;
    close(fd);
    // Semaphore: one at a time.
    let s = efd(2, libc::EFD_SEMAPHORE | libc::EFD_NONBLOCK)?;
    check(
        rd(s) == Ok(1) && rd(s) == Ok(1) && rd(s) == Err(libc::EAGAIN),
        "EFD_SEMAPHORE: 1, 1, then EAGAIN",
    )?;
    close(s);
    // Blocking: a reader sleeps until another process writes.
    let b = efd(0, 0)?;
    let pid = fork()?;
    if pid == 0 {
        crate::util::sleep_ms(100);
        let _ = wr(b, 42);
        crate::util::child_exit(0);
    }
    let t0 = std::time::Instant::now();
    let v = rd(b);
    wait_ok(pid, "writer")?;
    check(
        v == Ok(42) && t0.elapsed().as_millis() >= 50,
        format!("a blocked read wakes with the writer's 42 ({v:?})"),
    )?;
    // poll readiness.
    wr(b, 1).map_err(errname_net)?;
    let ev = crate::sock::revents(b, libc::POLLIN | libc::POLLOUT);
    check(
        ev == libc::POLLIN | libc::POLLOUT,
        format!("poll: readable and writable ({ev:#x})"),
    )?;
    close(b);
    // SAFETY: plain syscall with bad flags.
    let bad = unsafe { libc::eventfd(0, 0x1234_0000) };
    check(bad < 0 && errno() == libc::EINVAL, "unknown flags: EINVAL")?;
    Ok(())
}
