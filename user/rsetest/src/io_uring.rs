//! io_uring through raw syscalls (no liburing): the uapi layouts, the
//! mmap'd rings, the opcodes, full SQ and CQ, SQPOLL, bad arguments.
//!
//! The same checks pass on Linux (6.1 or later), which is how this test
//! itself is validated.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::util::{check, errname, show, sys};

use uring_abi::*;

fn sqe(opcode: u8, fd: i32, user_data: u64) -> Sqe {
    Sqe {
        opcode,
        fd,
        user_data,
        ..Sqe::default()
    }
}

/// One ring, mapped the way liburing maps it.
struct Uring {
    fd: i32,
    p: Params,
    ring: *mut u8,
    ring_len: usize,
    cq_ring: *mut u8,
    cq_len: usize,
    sqes: *mut Sqe,
    sqes_len: usize,
    /// Our copy of the SQ tail (entries filled, maybe not yet published).
    tail: u32,
}

impl Uring {
    fn new(entries: u32, p: &mut Params) -> Result<Uring, String> {
        let fd = sys(SYS_SETUP, [entries as _, p as *mut Params as _, 0, 0, 0, 0])
            .map_err(|e| format!("io_uring_setup({entries}): {}", errname(e)))?
            as i32;
        let sq_len = p.sq_off.array as usize + p.sq_entries as usize * 4;
        let cq_len = p.cq_off.cqes as usize + p.cq_entries as usize * 16;
        let single = p.features & FEAT_SINGLE_MMAP != 0;
        let ring_len = if single { sq_len.max(cq_len) } else { sq_len };
        let ring = map_ring(fd, ring_len, OFF_SQ_RING)
            .map_err(|e| format!("mmap of the SQ ring: {}", errname(e)))?;
        let (cq_ring, cq_len) = if single {
            (ring, 0)
        } else {
            let c = map_ring(fd, cq_len, OFF_CQ_RING)
                .map_err(|e| format!("mmap of the CQ ring: {}", errname(e)))?;
            (c, cq_len)
        };
        let sqes_len = p.sq_entries as usize * 64;
        let sqes = map_ring(fd, sqes_len, OFF_SQES)
            .map_err(|e| format!("mmap of the SQEs: {}", errname(e)))?;
        let mut u = Uring {
            fd,
            p: *p,
            ring,
            ring_len,
            cq_ring,
            cq_len,
            sqes: sqes.cast(),
            sqes_len,
            tail: 0,
        };
        u.tail = u.sq_word(u.p.sq_off.tail).load(Ordering::Relaxed);
        Ok(u)
    }

    fn sq_word(&self, off: u32) -> &AtomicU32 {
        // SAFETY: `off` comes from the kernel's sq_off and lies inside the
        // mapping; the word is 4-aligned and lives as long as `self`.
        unsafe { &*(self.ring.add(off as usize) as *const AtomicU32) }
    }

    fn cq_word(&self, off: u32) -> &AtomicU32 {
        // SAFETY: as sq_word, for the CQ ring mapping.
        unsafe { &*(self.cq_ring.add(off as usize) as *const AtomicU32) }
    }

    fn sq_head(&self) -> u32 {
        self.sq_word(self.p.sq_off.head).load(Ordering::Acquire)
    }

    fn sq_flags(&self) -> u32 {
        self.sq_word(self.p.sq_off.flags).load(Ordering::Acquire)
    }

    fn sq_space(&self) -> u32 {
        self.p.sq_entries - self.tail.wrapping_sub(self.sq_head())
    }

    /// Fills the next SQE; false when the SQ is full (tail - head ==
    /// entries: the application must wait for the kernel).
    fn push(&mut self, e: Sqe) -> bool {
        let mask = self
            .sq_word(self.p.sq_off.ring_mask)
            .load(Ordering::Relaxed);
        self.push_at(self.tail & mask, e)
    }

    /// As push, with the SQE in slot `slot` of the SQE array (the index
    /// array names it; liburing uses the SQ position's own slot).
    fn push_at(&mut self, slot: u32, e: Sqe) -> bool {
        if self.sq_space() == 0 || slot >= self.p.sq_entries {
            return false;
        }
        // SAFETY: slot < sq_entries, inside the SQE mapping; the kernel
        // does not read this slot until we publish the tail.
        unsafe { self.sqes.add(slot as usize).write_volatile(e) };
        self.index_word(self.tail).store(slot, Ordering::Relaxed);
        self.tail = self.tail.wrapping_add(1);
        true
    }

    /// The SQ index array's word for SQ position `pos`.
    fn index_word(&self, pos: u32) -> &AtomicU32 {
        let i = pos & (self.p.sq_entries - 1);
        // SAFETY: the index array has sq_entries u32 slots.
        unsafe {
            &*(self.ring.add(self.p.sq_off.array as usize + 4 * i as usize) as *const AtomicU32)
        }
    }

    /// Makes the filled SQEs visible to the kernel.
    fn publish(&self) {
        self.sq_word(self.p.sq_off.tail)
            .store(self.tail, Ordering::Release);
    }

    fn enter(&self, to_submit: u32, min: u32, flags: u64) -> Result<libc::c_long, i32> {
        sys(
            SYS_ENTER,
            [self.fd as _, to_submit as _, min as _, flags as _, 0, 8],
        )
    }

    /// Publishes and submits everything filled: the count consumed.
    fn submit(&self, n: u32) -> Result<libc::c_long, i32> {
        self.publish();
        self.enter(n, 0, 0)
    }

    fn cq_ready(&self) -> u32 {
        let tail = self.cq_word(self.p.cq_off.tail).load(Ordering::Acquire);
        tail.wrapping_sub(self.cq_word(self.p.cq_off.head).load(Ordering::Relaxed))
    }

    fn cq_overflow(&self) -> u32 {
        self.cq_word(self.p.cq_off.overflow).load(Ordering::Acquire)
    }

    fn pop(&self) -> Option<Cqe> {
        if self.cq_ready() == 0 {
            return None;
        }
        let head = self.cq_word(self.p.cq_off.head).load(Ordering::Relaxed);
        let mask = self
            .cq_word(self.p.cq_off.ring_mask)
            .load(Ordering::Relaxed);
        // SAFETY: the CQE array has cq_entries entries at cq_off.cqes.
        let c = unsafe {
            (self.cq_ring.add(self.p.cq_off.cqes as usize) as *const Cqe)
                .add((head & mask) as usize)
                .read_volatile()
        };
        self.cq_word(self.p.cq_off.head)
            .store(head.wrapping_add(1), Ordering::Release);
        Some(c)
    }

    /// Waits for and takes `n` completions.
    fn wait(&self, n: usize) -> Result<Vec<Cqe>, String> {
        let mut out = Vec::new();
        while out.len() < n {
            while let Some(c) = self.pop() {
                out.push(c);
            }
            if out.len() >= n {
                break;
            }
            let left = (n - out.len()) as u32;
            if let Err(e) = self.enter(0, left, ENTER_GETEVENTS) {
                if e != libc::EINTR {
                    return Err(format!("io_uring_enter(GETEVENTS): {}", errname(e)));
                }
            }
        }
        Ok(out)
    }

    /// Pushes, submits and waits for one SQE.
    fn run1(&mut self, e: Sqe) -> Result<Cqe, String> {
        if !self.push(e) {
            return Err("SQ full".into());
        }
        self.publish();
        self.enter(1, 1, ENTER_GETEVENTS)
            .map_err(|e| format!("io_uring_enter: {}", errname(e)))?;
        Ok(self.wait(1)?[0])
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        // SAFETY: our own mappings and descriptor.
        unsafe {
            libc::munmap(self.ring.cast(), self.ring_len);
            if self.cq_len > 0 {
                libc::munmap(self.cq_ring.cast(), self.cq_len);
            }
            libc::munmap(self.sqes.cast(), self.sqes_len);
            libc::close(self.fd);
        }
    }
}

fn ring(entries: u32) -> Result<Uring, String> {
    Uring::new(entries, &mut Params::default())
}

/// rdtsc-based spinning, so that waiting makes no syscall at all.
fn tsc() -> u64 {
    // SAFETY: rdtsc has no preconditions on x86_64.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// TSC ticks per millisecond, measured against CLOCK_MONOTONIC.
fn tsc_per_ms() -> u64 {
    let t0 = std::time::Instant::now();
    let c0 = tsc();
    while t0.elapsed() < std::time::Duration::from_millis(20) {}
    ((tsc() - c0) / 20).max(1)
}

fn errno_res(e: i32) -> i32 {
    -e
}

fn setup_and_layout() -> Result<(), String> {
    let mut p = Params::default();
    let u = Uring::new(100, &mut p)?;
    check(
        p.sq_entries == 128 && p.cq_entries == 256,
        format_args!(
            "entries 100 -> sq 128, cq 256 (got {}, {})",
            p.sq_entries, p.cq_entries
        ),
    )?;
    check(
        p.features & (FEAT_SINGLE_MMAP | FEAT_NODROP) == FEAT_SINGLE_MMAP | FEAT_NODROP,
        format_args!(
            "features include SINGLE_MMAP and NODROP ({:#x})",
            p.features
        ),
    )?;
    check(
        u.sq_word(p.sq_off.ring_entries).load(Ordering::Relaxed) == 128
            && u.cq_word(p.cq_off.ring_entries).load(Ordering::Relaxed) == 256
            && u.sq_word(p.sq_off.ring_mask).load(Ordering::Relaxed) == 127
            && u.cq_word(p.cq_off.ring_mask).load(Ordering::Relaxed) == 255,
        "ring_entries and ring_mask in the mapped rings match the params",
    )?;
    let flags = sys(libc::SYS_fcntl, [u.fd as _, libc::F_GETFD as _, 0, 0, 0, 0]);
    check(
        flags == Ok(libc::FD_CLOEXEC as _),
        format_args!("the ring fd is close-on-exec ({})", show(flags)),
    )?;
    // Linux 6.1 answers EINVAL; newer kernels (with more mmap regions)
    // ENOMEM.
    let bad = map_ring(u.fd, 4096, 0x4000_0000);
    check(
        bad == Err(libc::EINVAL) || bad == Err(libc::ENOMEM),
        format_args!(
            "mmap of the ring fd at an unknown offset fails ({:?})",
            bad.err().map(errname)
        ),
    )?;
    let r = sys(SYS_ENTER, [0, 0, 0, 0, 0, 0]);
    check(
        r == Err(libc::EOPNOTSUPP),
        format_args!(
            "io_uring_enter on fd 0 (not a ring) -> EOPNOTSUPP ({})",
            show(r)
        ),
    )?;
    let r = sys(SYS_ENTER, [9999, 0, 0, 0, 0, 0]);
    check(
        r == Err(libc::EBADF),
        format_args!("io_uring_enter on a closed fd -> EBADF ({})", show(r)),
    )?;
    let r = u.enter(0, 0, 1 << 30);
    check(
        r == Err(libc::EINVAL),
        format_args!(
            "io_uring_enter with an unknown flag -> EINVAL ({})",
            show(r)
        ),
    )?;
    Ok(())
}

fn nops() -> Result<(), String> {
    let mut u = ring(256)?;
    let mut next = 1u64;
    for batch in [1u32, 256, 1, 256, 256, 17] {
        let first = next;
        for _ in 0..batch {
            if !u.push(sqe(OP_NOP, -1, next)) {
                return Err("SQ full while filling a batch".into());
            }
            next += 1;
        }
        u.publish();
        let r = u.enter(batch, batch, ENTER_GETEVENTS);
        check(
            r == Ok(batch as _),
            format_args!(
                "{batch} NOPs: io_uring_enter consumed {batch} ({})",
                show(r)
            ),
        )?;
        let cqes = u.wait(batch as usize)?;
        let in_order = cqes
            .iter()
            .enumerate()
            .all(|(i, c)| c.user_data == first + i as u64 && c.res == 0 && c.flags == 0);
        check(
            in_order && u.cq_ready() == 0,
            format_args!("{batch} NOP completions: res 0, user_data copied through, no extra"),
        )?;
    }
    // An unknown opcode completes with -EINVAL.
    let c = u.run1(sqe(250, -1, 0xdead))?;
    check(
        c.user_data == 0xdead && c.res == -libc::EINVAL,
        format_args!("unknown opcode 250 -> cqe.res -EINVAL ({c:?})"),
    )?;
    Ok(())
}

fn tmpfs_path(name: &str) -> std::ffi::CString {
    std::ffi::CString::new(format!("/tmp/rsetest_io_uring_{name}")).unwrap_or_default()
}

fn open_tmp(name: &str) -> Result<i32, String> {
    let path = tmpfs_path(name);
    // SAFETY: a valid C string.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC,
            0o644,
        )
    };
    if fd < 0 {
        return Err(format!("open {path:?}: {}", errname(crate::util::errno())));
    }
    Ok(fd)
}

/// One IORING_OP_WRITE of `data` at `off` to `fd` with `rw_flags`
/// (RWF_DSYNC for `rsetest datasync … rwf_dsync`): the CQE's result.
pub fn write_once(fd: i32, data: &[u8], off: u64, rw_flags: u32) -> Result<i32, String> {
    let mut u = ring(8)?;
    let mut w = sqe(OP_WRITE, fd, 1);
    w.addr = data.as_ptr() as u64;
    w.len = data.len() as u32;
    w.off = off;
    w.op_flags = rw_flags;
    Ok(u.run1(w)?.res)
}

fn read_write() -> Result<(), String> {
    let mut u = ring(8)?;
    let fd = open_tmp("rw")?;
    let data = b"hello, io_uring on tmpfs".to_vec();
    let mut w = sqe(OP_WRITE, fd, 1);
    w.addr = data.as_ptr() as u64;
    w.len = data.len() as u32;
    w.off = 0;
    let c = u.run1(w)?;
    check(
        c.res == data.len() as i32 && c.user_data == 1,
        format_args!("WRITE at offset 0 -> {} ({c:?})", data.len()),
    )?;
    let mut buf = vec![0u8; 64];
    let mut r = sqe(OP_READ, fd, 2);
    r.addr = buf.as_mut_ptr() as u64;
    r.len = buf.len() as u32;
    r.off = 0;
    let c = u.run1(r)?;
    check(
        c.res == data.len() as i32 && buf[..data.len()] == data[..],
        format_args!("READ at offset 0 returns what was written ({c:?})"),
    )?;
    // Offset -1: the file position, which advances (IORING_FEAT_RW_CUR_POS).
    let mut w = sqe(OP_WRITE, fd, 3);
    w.addr = data.as_ptr() as u64;
    w.len = 5;
    w.off = u64::MAX;
    let c = u.run1(w)?;
    // SAFETY: lseek on our descriptor.
    let pos = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
    check(
        c.res == 5 && pos == 5,
        format_args!("WRITE at offset -1 uses and advances the file position ({c:?}, pos {pos})"),
    )?;
    // A read past the end returns 0.
    let mut r = sqe(OP_READ, fd, 4);
    r.addr = buf.as_mut_ptr() as u64;
    r.len = 8;
    r.off = 1000;
    let c = u.run1(r)?;
    check(c.res == 0, format_args!("READ past the end -> 0 ({c:?})"))?;
    // A bad buffer gives -EFAULT in the CQE.
    let mut r = sqe(OP_READ, fd, 5);
    r.addr = 8;
    r.len = 8;
    r.off = 0;
    let c = u.run1(r)?;
    check(
        c.res == -libc::EFAULT,
        format_args!("READ into an unmapped buffer -> -EFAULT ({c:?})"),
    )?;
    let c = u.run1(sqe(OP_FSYNC, fd, 6))?;
    check(c.res == 0, format_args!("FSYNC -> 0 ({c:?})"))?;
    // SAFETY: closing our descriptor.
    unsafe { libc::close(fd) };
    Ok(())
}

fn vectored() -> Result<(), String> {
    let mut u = ring(8)?;
    let fd = open_tmp("rwv")?;
    let parts: [&[u8]; 3] = [b"first ", b"second ", b"third"];
    let iov: Vec<libc::iovec> = parts
        .iter()
        .map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut _,
            iov_len: p.len(),
        })
        .collect();
    let mut w = sqe(OP_WRITEV, fd, 10);
    w.addr = iov.as_ptr() as u64;
    w.len = iov.len() as u32;
    w.off = 100;
    let c = u.run1(w)?;
    check(
        c.res == 18,
        format_args!("WRITEV of 3 pieces at offset 100 -> 18 ({c:?})"),
    )?;
    let (mut a, mut b) = (vec![0u8; 4], vec![0u8; 20]);
    let riov = [
        libc::iovec {
            iov_base: a.as_mut_ptr().cast(),
            iov_len: a.len(),
        },
        libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        },
    ];
    let mut r = sqe(OP_READV, fd, 11);
    r.addr = riov.as_ptr() as u64;
    r.len = 2;
    r.off = 100;
    let c = u.run1(r)?;
    check(
        c.res == 18 && &a[..] == b"firs" && &b[..14] == b"t second third",
        format_args!("READV into 4 + 20 bytes scatters the 18 bytes ({c:?})"),
    )?;
    // SAFETY: closing our descriptor.
    unsafe { libc::close(fd) };
    Ok(())
}

fn open_close() -> Result<(), String> {
    let mut u = ring(8)?;
    let path = tmpfs_path("open");
    let mut o = sqe(OP_OPENAT, libc::AT_FDCWD, 20);
    o.addr = path.as_ptr() as u64;
    o.op_flags = (libc::O_CREAT | libc::O_RDWR | libc::O_TRUNC) as u32;
    o.len = 0o600;
    let c = u.run1(o)?;
    check(
        c.res >= 0,
        format_args!("OPENAT O_CREAT -> a descriptor ({c:?})"),
    )?;
    let fd = c.res;
    let ok = sys(libc::SYS_fcntl, [fd as _, libc::F_GETFL as _, 0, 0, 0, 0]);
    check(
        ok.is_ok_and(|f| f as i32 & libc::O_ACCMODE == libc::O_RDWR),
        format_args!("the new descriptor is open read-write ({})", show(ok)),
    )?;
    let c = u.run1(sqe(OP_CLOSE, fd, 21))?;
    check(c.res == 0, format_args!("CLOSE of it -> 0 ({c:?})"))?;
    let gone = sys(libc::SYS_fcntl, [fd as _, libc::F_GETFL as _, 0, 0, 0, 0]);
    check(
        gone == Err(libc::EBADF),
        format_args!("the descriptor is closed afterwards ({})", show(gone)),
    )?;
    let c = u.run1(sqe(OP_CLOSE, fd, 22))?;
    check(
        c.res == -libc::EBADF,
        format_args!("CLOSE again -> -EBADF ({c:?})"),
    )?;
    let missing = std::ffi::CString::new("/tmp/rsetest_io_uring_no/such").unwrap_or_default();
    let mut o = sqe(OP_OPENAT, libc::AT_FDCWD, 23);
    o.addr = missing.as_ptr() as u64;
    let c = u.run1(o)?;
    check(
        c.res == -libc::ENOENT,
        format_args!("OPENAT of a missing path -> -ENOENT ({c:?})"),
    )?;
    Ok(())
}

fn bad_fd() -> Result<(), String> {
    let mut u = ring(8)?;
    let mut buf = [0u8; 16];
    for fd in [9999, -5] {
        let mut r = sqe(OP_READ, fd, 30);
        r.addr = buf.as_mut_ptr() as u64;
        r.len = 16;
        let c = u.run1(r)?;
        check(
            c.res == errno_res(libc::EBADF) && c.user_data == 30,
            format_args!("READ on bad fd {fd} -> cqe.res -EBADF ({c:?})"),
        )?;
    }
    // Registered files: READ through IOSQE_FIXED_FILE.
    let fd = open_tmp("fixed")?;
    // SAFETY: writing our buffer to our descriptor.
    unsafe { libc::pwrite(fd, b"fixed".as_ptr().cast(), 5, 0) };
    let fds = [fd];
    let r = sys(
        SYS_REGISTER,
        [u.fd as _, REGISTER_FILES as _, fds.as_ptr() as _, 1, 0, 0],
    );
    check(
        r == Ok(0),
        format_args!("IORING_REGISTER_FILES -> 0 ({})", show(r)),
    )?;
    let mut s = sqe(OP_READ, 0, 31);
    s.flags = SQE_FIXED_FILE;
    s.addr = buf.as_mut_ptr() as u64;
    s.len = 5;
    let c = u.run1(s)?;
    check(
        c.res == 5 && &buf[..5] == b"fixed",
        format_args!("READ of registered file 0 -> 5 bytes ({c:?})"),
    )?;
    let mut s = sqe(OP_READ, 1, 32);
    s.flags = SQE_FIXED_FILE;
    s.addr = buf.as_mut_ptr() as u64;
    s.len = 5;
    let c = u.run1(s)?;
    check(
        c.res == -libc::EBADF,
        format_args!("READ of registered file 1 (none) -> -EBADF ({c:?})"),
    )?;
    // SAFETY: closing our descriptor.
    unsafe { libc::close(fd) };
    // The opcode probe.
    let mut probe = vec![0u8; 16 + 8 * 64];
    let r = sys(
        SYS_REGISTER,
        [
            u.fd as _,
            REGISTER_PROBE as _,
            probe.as_mut_ptr() as _,
            64,
            0,
            0,
        ],
    );
    let supported = |op: u8| {
        let o = 16 + 8 * op as usize;
        probe[o] == op && u16::from_le_bytes([probe[o + 2], probe[o + 3]]) & OP_SUPPORTED != 0
    };
    check(
        r == Ok(0)
            && [
                OP_NOP,
                OP_READV,
                OP_WRITEV,
                OP_FSYNC,
                OP_POLL_ADD,
                OP_TIMEOUT,
                OP_OPENAT,
                OP_CLOSE,
                OP_READ,
                OP_WRITE,
            ]
            .iter()
            .all(|&o| supported(o)),
        format_args!(
            "IORING_REGISTER_PROBE lists the opcodes as supported ({})",
            show(r)
        ),
    )?;
    Ok(())
}

fn pipe() -> Result<(i32, i32), String> {
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err("pipe failed".into());
    }
    Ok((fds[0], fds[1]))
}

fn poll_pipe() -> Result<(), String> {
    let mut u = ring(8)?;
    let (rfd, wfd) = pipe()?;
    let mut p = sqe(OP_POLL_ADD, rfd, 40);
    p.op_flags = libc::POLLIN as u32;
    u.push(p);
    let r = u.submit(1);
    check(
        r == Ok(1),
        format_args!("POLL_ADD(POLLIN) on an empty pipe submitted ({})", show(r)),
    )?;
    std::thread::sleep(std::time::Duration::from_millis(30));
    let r = u.enter(0, 0, ENTER_GETEVENTS);
    check(
        r.is_ok() && u.cq_ready() == 0,
        "no completion while the pipe is empty (30 ms later)",
    )?;
    // SAFETY: writing one byte to our pipe.
    unsafe { libc::write(wfd, b"x".as_ptr().cast(), 1) };
    let c = u.wait(1)?[0];
    check(
        c.user_data == 40 && c.res > 0 && c.res & libc::POLLIN as i32 != 0,
        format_args!("after a write, POLL_ADD completes with POLLIN ({c:?})"),
    )?;
    // A READ on an empty pipe waits for data: submitted with the WRITE
    // that feeds it, both complete.
    let mut sink = [0u8; 1];
    // SAFETY: reading the byte back from our pipe.
    unsafe { libc::read(rfd, sink.as_mut_ptr().cast(), 1) };
    let mut buf = [0u8; 16];
    let mut r = sqe(OP_READ, rfd, 41);
    r.addr = buf.as_mut_ptr() as u64;
    r.len = 16;
    let msg = b"through the ring";
    let mut w = sqe(OP_WRITE, wfd, 42);
    w.addr = msg.as_ptr() as u64;
    w.len = msg.len() as u32;
    u.push(r);
    u.push(w);
    u.publish();
    let n = u.enter(2, 2, ENTER_GETEVENTS);
    let mut cqes = u.wait(2)?;
    cqes.sort_by_key(|c| c.user_data);
    check(
        n == Ok(2) && cqes[0].res == 16 && cqes[1].res == 16 && &buf == msg,
        format_args!("READ on an empty pipe completes once a later WRITE fills it ({cqes:?})"),
    )?;
    // SAFETY: closing our pipe.
    unsafe {
        libc::close(rfd);
        libc::close(wfd);
    }
    Ok(())
}

fn timeout() -> Result<(), String> {
    let mut u = ring(8)?;
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 30_000_000,
    };
    let mut t = sqe(OP_TIMEOUT, -1, 50);
    t.addr = &ts as *const _ as u64;
    t.len = 1;
    let start = std::time::Instant::now();
    let c = u.run1(t)?;
    let ms = start.elapsed().as_millis();
    check(
        c.user_data == 50 && c.res == -libc::ETIME && ms >= 29,
        format_args!("TIMEOUT 30 ms -> -ETIME after {ms} ms ({c:?})"),
    )?;
    // A count: completes with 0 after 2 other completions.
    let long = libc::timespec {
        tv_sec: 10,
        tv_nsec: 0,
    };
    let mut t = sqe(OP_TIMEOUT, -1, 51);
    t.addr = &long as *const _ as u64;
    t.len = 1;
    t.off = 2;
    u.push(t);
    u.push(sqe(OP_NOP, -1, 52));
    u.push(sqe(OP_NOP, -1, 53));
    u.publish();
    u.enter(3, 3, ENTER_GETEVENTS)
        .map_err(|e| format!("io_uring_enter: {}", errname(e)))?;
    let cqes = u.wait(3)?;
    let t = cqes.iter().find(|c| c.user_data == 51);
    check(
        t.is_some_and(|c| c.res == 0) && start.elapsed().as_secs() < 5,
        format_args!("TIMEOUT with count 2 completes with 0 after 2 NOPs ({cqes:?})"),
    )?;
    // Bad fields: len must be 1.
    let mut t = sqe(OP_TIMEOUT, -1, 54);
    t.addr = &ts as *const _ as u64;
    t.len = 2;
    let c = u.run1(t)?;
    check(
        c.res == -libc::EINVAL,
        format_args!("TIMEOUT with len 2 -> -EINVAL ({c:?})"),
    )?;
    Ok(())
}

fn full_sq() -> Result<(), String> {
    let mut u = ring(4)?;
    let mut pushed = 0;
    while u.push(sqe(OP_NOP, -1, pushed)) {
        pushed += 1;
        if pushed > 100 {
            break;
        }
    }
    u.publish();
    let tail = u.sq_word(u.p.sq_off.tail).load(Ordering::Relaxed);
    check(
        pushed == 4 && tail.wrapping_sub(u.sq_head()) == 4,
        format_args!("a 4-entry SQ takes 4 SQEs, then tail - head == entries: full ({pushed})"),
    )?;
    let r = u.enter(8, 0, 0);
    check(
        r == Ok(4) && u.sq_head() == 4 && u.sq_space() == 4,
        format_args!(
            "io_uring_enter(to_submit 8) consumes the 4 there; the SQ is free again ({})",
            show(r)
        ),
    )?;
    let c = u.wait(4)?;
    check(
        c.iter().map(|c| c.user_data).eq(0..4),
        "their 4 completions arrive in order",
    )?;
    let r = u.enter(4, 0, 0);
    check(
        r == Ok(0),
        format_args!("io_uring_enter with nothing queued -> 0 ({})", show(r)),
    )?;
    Ok(())
}

fn full_cq() -> Result<(), String> {
    let mut u = ring(4)?;
    check(
        u.p.cq_entries == 8,
        format_args!("4 SQ entries -> 8 CQ entries ({})", u.p.cq_entries),
    )?;
    let mut next = 0u64;
    for round in 0..3 {
        for _ in 0..4 {
            u.push(sqe(OP_NOP, -1, next));
            next += 1;
        }
        let r = u.submit(4);
        check(
            r == Ok(4),
            format_args!(
                "round {round}: 4 NOPs submitted without reaping ({})",
                show(r)
            ),
        )?;
    }
    check(
        u.cq_ready() == 8,
        format_args!("the CQ ring holds its 8 entries ({})", u.cq_ready()),
    )?;
    check(
        u.sq_flags() & SQ_CQ_OVERFLOW != 0 && u.cq_overflow() == 0,
        format_args!(
            "the other 4 wait in the kernel: IORING_SQ_CQ_OVERFLOW set, none dropped (flags {:#x}, overflow {})",
            u.sq_flags(),
            u.cq_overflow()
        ),
    )?;
    let first: Vec<u64> = std::iter::from_fn(|| u.pop())
        .map(|c| c.user_data)
        .collect();
    check(
        first == (0..8).collect::<Vec<_>>(),
        format_args!("reaped 0..8 in order ({first:?})"),
    )?;
    let r = u.enter(0, 0, ENTER_GETEVENTS);
    let rest: Vec<u64> = std::iter::from_fn(|| u.pop())
        .map(|c| c.user_data)
        .collect();
    check(
        r == Ok(0) && rest == (8..12).collect::<Vec<_>>(),
        format_args!("io_uring_enter(GETEVENTS) flushes the overflowed 8..12 in order ({rest:?})"),
    )?;
    check(
        u.sq_flags() & SQ_CQ_OVERFLOW == 0,
        "IORING_SQ_CQ_OVERFLOW is clear once flushed",
    )?;
    Ok(())
}

/// Batches crossing the SQ and CQ ring wraps, with the index array naming
/// SQE slots in and out of order, CQE_SKIP_SUCCESS and ASYNC NOPs inside.
fn batch_wraps() -> Result<(), String> {
    let mut u = ring(8)?;
    check(
        u.p.cq_entries == 16,
        format_args!("8 SQ entries -> 16 CQ entries ({})", u.p.cq_entries),
    )?;
    let mut next = 0u64;
    // Batches of 5: SQ positions wrap (at 8) inside most of them, CQ
    // positions (at 16) inside the fourth.
    for round in 0..8u32 {
        let mut want = Vec::new();
        for i in 0..5u32 {
            let mut e = sqe(OP_NOP, -1, next);
            if round == 3 && i == 2 {
                e.flags = SQE_CQE_SKIP_SUCCESS;
            } else {
                want.push(next);
            }
            if round == 5 && i == 1 {
                e.flags = SQE_ASYNC;
            }
            next += 1;
            // Odd rounds: slots in reverse order, not the SQ positions'.
            let pushed = if round % 2 == 1 {
                u.push_at(7 - (round * 5 + i) % 8, e)
            } else {
                u.push(e)
            };
            if !pushed {
                return Err("SQ full while filling a batch".into());
            }
        }
        u.publish();
        let r = u.enter(5, want.len() as u32, ENTER_GETEVENTS);
        let got = u.wait(want.len())?;
        let data: Vec<u64> = got.iter().map(|c| c.user_data).collect();
        // An IOSQE_ASYNC entry may complete after later ones (Linux punts
        // it to a worker); every other completion comes in order.
        let async_data = (round == 5).then_some(round as u64 * 5 + 1);
        let in_order = |v: &[u64]| -> Vec<u64> {
            v.iter()
                .copied()
                .filter(|d| Some(*d) != async_data)
                .collect()
        };
        let mut sorted = data.clone();
        sorted.sort_unstable();
        check(
            r == Ok(5)
                && sorted == want
                && in_order(&data) == in_order(&want)
                && got.iter().all(|c| c.res == 0 && c.flags == 0)
                && u.cq_ready() == 0
                && u.sq_head() == u.tail,
            format_args!(
                "batch {round} of 5 NOPs across the ring wraps: all consumed ({}), completions {want:?}, in order but for an ASYNC one ({data:?})",
                show(r)
            ),
        )?;
    }
    Ok(())
}

/// Where a batch stops: after an SQE that fails at prep (unless
/// SUBMIT_ALL), and before an index array entry naming no SQE (which is
/// consumed and counted in sq_dropped).
fn batch_stops() -> Result<(), String> {
    let mut u = ring(8)?;
    for (d, op) in [(1, OP_NOP), (2, 250), (3, OP_NOP)] {
        u.push(sqe(op, -1, d));
    }
    u.publish();
    let r = u.enter(3, 2, ENTER_GETEVENTS);
    let c = u.wait(2)?;
    check(
        r == Ok(2)
            && c[0]
                == Cqe {
                    user_data: 1,
                    res: 0,
                    flags: 0,
                }
            && c[1].user_data == 2
            && c[1].res == -libc::EINVAL
            && u.sq_head() == 2,
        format_args!(
            "NOP, bad opcode, NOP: the batch stops after the bad one ({}, {c:?})",
            show(r)
        ),
    )?;
    let r = u.enter(1, 1, ENTER_GETEVENTS);
    let c = u.wait(1)?;
    check(
        r == Ok(1) && c[0].user_data == 3 && u.cq_ready() == 0,
        format_args!("the NOP left behind is the next one consumed ({c:?})"),
    )?;
    // An index array entry past the SQE array: dropped.
    for d in 4..7 {
        u.push(sqe(OP_NOP, -1, d));
    }
    u.index_word(u.tail.wrapping_sub(2))
        .store(100, Ordering::Relaxed);
    u.publish();
    let r = u.enter(3, 1, ENTER_GETEVENTS);
    let c = u.wait(1)?;
    let dropped = u.sq_word(u.p.sq_off.dropped).load(Ordering::Acquire);
    check(
        r == Ok(1) && c[0].user_data == 4 && dropped == 1 && u.sq_head() == u.tail - 1,
        format_args!(
            "index 100 in an 8-entry ring: the batch stops there, the entry is consumed and counted in sq_dropped ({}, dropped {dropped}, {c:?})",
            show(r)
        ),
    )?;
    let r = u.enter(1, 1, ENTER_GETEVENTS);
    let c = u.wait(1)?;
    check(
        r == Ok(1) && c[0].user_data == 6 && u.cq_ready() == 0,
        format_args!("the NOP after the dropped entry is consumed next ({c:?})"),
    )?;
    drop(u);
    // IORING_SETUP_SUBMIT_ALL: the batch goes on past the bad SQE.
    let mut p = Params {
        flags: SETUP_SUBMIT_ALL,
        ..Params::default()
    };
    let mut u = Uring::new(8, &mut p)?;
    for (d, op) in [(1, OP_NOP), (2, 250), (3, OP_NOP)] {
        u.push(sqe(op, -1, d));
    }
    u.publish();
    let r = u.enter(3, 3, ENTER_GETEVENTS);
    let c = u.wait(3)?;
    check(
        r == Ok(3)
            && c.iter()
                .map(|c| (c.user_data, c.res))
                .eq([(1, 0), (2, -libc::EINVAL), (3, 0)]),
        format_args!(
            "SUBMIT_ALL: NOP, bad opcode, NOP are all consumed ({}, {c:?})",
            show(r)
        ),
    )?;
    Ok(())
}

/// An entry of a batch of NOPs that is not a plain NOP in order.
#[derive(Clone, Copy, Debug)]
enum Odd {
    /// An unknown opcode: -EINVAL, and the batch stops after it.
    BadOpcode,
    /// A personality never registered: -EINVAL, the batch stops after it.
    Personality,
    /// IOSQE_CQE_SKIP_SUCCESS: no CQE for it, the batch goes on.
    SkipSuccess,
    /// Its index array entry names the next position's SQE slot and the
    /// next one names its slot: all complete, in SQ order.
    Swapped,
    /// Its index array entry names no slot: dropped, the batch stops
    /// before it.
    Dropped,
}

/// 256-entry batches with one odd entry each, at the first, a middle and
/// the last of a group of 8 and at the edges of a 64-SQE page (RSE OS
/// checks NOPs 8 at a time, and SQEs a page at a time): the entries before
/// it complete in order, it gets its own answer, and the batch stops or
/// goes on as it would for that entry alone; what is left of the batch
/// is consumed by the next io_uring_enter.
fn batch_odd_entry() -> Result<(), String> {
    let mut u = ring(256)?;
    let mask = u.p.sq_entries - 1;
    let mut next = 1u64;
    let cases = [
        (Odd::BadOpcode, 0),
        (Odd::BadOpcode, 7),
        (Odd::BadOpcode, 13),
        (Odd::BadOpcode, 63),
        (Odd::BadOpcode, 64),
        (Odd::BadOpcode, 255),
        (Odd::Personality, 9),
        (Odd::Personality, 130),
        (Odd::SkipSuccess, 8),
        (Odd::SkipSuccess, 100),
        (Odd::SkipSuccess, 255),
        (Odd::Swapped, 5),
        (Odd::Swapped, 63),
        (Odd::Swapped, 200),
        (Odd::Dropped, 16),
        (Odd::Dropped, 250),
    ];
    for (odd, at) in cases {
        let first = next;
        let tail0 = u.tail;
        for i in 0..256u32 {
            let mut e = sqe(OP_NOP, -1, next);
            next += 1;
            let mut slot = tail0.wrapping_add(i) & mask;
            if i == at {
                match odd {
                    Odd::BadOpcode => e.opcode = 250,
                    Odd::Personality => e.personality = 0x7fff,
                    Odd::SkipSuccess => e.flags = SQE_CQE_SKIP_SUCCESS,
                    Odd::Swapped | Odd::Dropped => {}
                }
            }
            if matches!(odd, Odd::Swapped) && i == at {
                slot = tail0.wrapping_add(at + 1) & mask;
            }
            if matches!(odd, Odd::Swapped) && i == at + 1 {
                slot = tail0.wrapping_add(at) & mask;
            }
            if !u.push_at(slot, e) {
                return Err("SQ full while filling a batch".into());
            }
        }
        if matches!(odd, Odd::Dropped) {
            u.index_word(tail0.wrapping_add(at))
                .store(1000, Ordering::Relaxed);
        }
        u.publish();
        let data = |i: u32| first + i as u64;
        // (consumed, returned, CQEs expected from this enter)
        let (consumed, want): (u32, Vec<(u64, i32)>) = match odd {
            Odd::BadOpcode | Odd::Personality => (
                at + 1,
                (0..=at)
                    .map(|i| (data(i), if i == at { -libc::EINVAL } else { 0 }))
                    .collect(),
            ),
            Odd::SkipSuccess => (
                256,
                (0..256)
                    .filter(|&i| i != at)
                    .map(|i| (data(i), 0))
                    .collect(),
            ),
            Odd::Swapped => (256, (0..256).map(|i| (data(i), 0)).collect()),
            Odd::Dropped => (at + 1, (0..at).map(|i| (data(i), 0)).collect()),
        };
        let returned = if matches!(odd, Odd::Dropped) {
            at
        } else {
            consumed
        };
        let r = u.enter(256, want.len() as u32, ENTER_GETEVENTS);
        let got: Vec<(u64, i32)> = u
            .wait(want.len())?
            .iter()
            .map(|c| (c.user_data, c.res))
            .collect();
        check(
            r == Ok(returned as _)
                && got == want
                && u.cq_ready() == 0
                && u.sq_head() == tail0.wrapping_add(consumed),
            format_args!(
                "256 NOPs, {odd:?} at {at}: {returned} submitted ({}), SQ head {} (from {tail0}), completions in order ({} of {}, first difference {:?})",
                show(r),
                u.sq_head(),
                got.len(),
                want.len(),
                got.iter().zip(&want).find(|(g, w)| g != w)
            ),
        )?;
        // The rest of the batch: plain NOPs, consumed now.
        let rest = 256 - consumed;
        if rest > 0 {
            let r = u.enter(rest, rest, ENTER_GETEVENTS);
            let got: Vec<u64> = u.wait(rest as usize)?.iter().map(|c| c.user_data).collect();
            check(
                r == Ok(rest as _)
                    && got == (256 - rest..256).map(data).collect::<Vec<_>>()
                    && u.cq_ready() == 0,
                format_args!(
                    "the {rest} NOPs left after {odd:?} at {at} are consumed by the next enter ({})",
                    show(r)
                ),
            )?;
        }
    }
    Ok(())
}

/// One batch that fills the CQ ring part way through: the rest of its
/// completions wait in the kernel, in order.
fn batch_overflows_cq() -> Result<(), String> {
    let mut u = ring(4)?;
    let mut next = 0u64;
    let mut submit4 = |u: &mut Uring| {
        for _ in 0..4 {
            u.push(sqe(OP_NOP, -1, next));
            next += 1;
        }
        u.submit(4)
    };
    let r1 = submit4(&mut u);
    let first = u.pop();
    let r2 = submit4(&mut u);
    // 7 in the ring: the next batch fits one and overflows three.
    let r3 = submit4(&mut u);
    check(
        [r1, r2, r3] == [Ok(4), Ok(4), Ok(4)]
            && first.is_some_and(|c| c.user_data == 0)
            && u.cq_ready() == 8
            && u.sq_flags() & SQ_CQ_OVERFLOW != 0
            && u.cq_overflow() == 0,
        format_args!(
            "12 NOPs, 1 reaped: 8 in the ring, the rest overflowed (ready {}, flags {:#x})",
            u.cq_ready(),
            u.sq_flags()
        ),
    )?;
    let ring: Vec<u64> = std::iter::from_fn(|| u.pop())
        .map(|c| c.user_data)
        .collect();
    let r = u.enter(0, 0, ENTER_GETEVENTS);
    let rest: Vec<u64> = std::iter::from_fn(|| u.pop())
        .map(|c| c.user_data)
        .collect();
    check(
        ring == (1..9).collect::<Vec<_>>()
            && r == Ok(0)
            && rest == (9..12).collect::<Vec<_>>()
            && u.sq_flags() & SQ_CQ_OVERFLOW == 0,
        format_args!("reaped 1..9 from the ring, then 9..12 flushed in order ({ring:?} {rest:?})"),
    )?;
    Ok(())
}

fn sqpoll() -> Result<(), String> {
    // Measured first: the poller's idle clock starts at setup.
    let per_ms = tsc_per_ms();
    let mut p = Params {
        flags: SETUP_SQPOLL,
        sq_thread_idle: 500,
        ..Params::default()
    };
    let mut u = Uring::new(16, &mut p)?;
    let spin_until = |u: &Uring, n: u32, ms: u64| -> bool {
        let end = tsc() + ms * per_ms;
        while tsc() < end {
            if u.cq_ready() >= n {
                return true;
            }
            std::hint::spin_loop();
        }
        u.cq_ready() >= n
    };
    for i in 0..8 {
        u.push(sqe(OP_NOP, -1, 100 + i));
    }
    u.publish();
    // The application's side of the protocol: publish the tail, then look
    // at NEED_WAKEUP. Within sq_thread_idle of setup the poller is awake.
    std::sync::atomic::fence(Ordering::SeqCst);
    check(
        u.sq_flags() & SQ_NEED_WAKEUP == 0,
        format_args!(
            "SQPOLL: the poller is awake after setup (sq_flags {:#x})",
            u.sq_flags()
        ),
    )?;
    // No syscall from here until the completions are seen.
    let seen = spin_until(&u, 8, 5000);
    let got: Vec<u64> = std::iter::from_fn(|| u.pop())
        .map(|c| c.user_data)
        .collect();
    check(
        seen && got == (100..108).collect::<Vec<_>>(),
        format_args!("SQPOLL: 8 NOPs complete with no syscall at all ({got:?})"),
    )?;
    // Idle for longer than sq_thread_idle: the poller sleeps.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    check(
        u.sq_flags() & SQ_NEED_WAKEUP != 0,
        format_args!(
            "after 1.2 s idle (sq_thread_idle 500 ms), IORING_SQ_NEED_WAKEUP is set ({:#x})",
            u.sq_flags()
        ),
    )?;
    u.push(sqe(OP_NOP, -1, 200));
    u.publish();
    let early = spin_until(&u, 1, 100);
    check(
        !early,
        "a NOP published while the poller sleeps is not consumed (100 ms)",
    )?;
    let r = u.enter(0, 0, ENTER_SQ_WAKEUP);
    check(
        r.is_ok(),
        format_args!("io_uring_enter(IORING_ENTER_SQ_WAKEUP) ({})", show(r)),
    )?;
    let seen = spin_until(&u, 1, 5000);
    let c = u.pop();
    check(
        seen && c.is_some_and(|c| c.user_data == 200 && c.res == 0),
        format_args!("after the wakeup it completes ({c:?})"),
    )?;
    check(
        u.sq_flags() & SQ_NEED_WAKEUP == 0,
        "IORING_SQ_NEED_WAKEUP is clear while the poller is awake",
    )?;
    // Awake again: more work needs no syscall.
    for i in 0..4 {
        u.push(sqe(OP_NOP, -1, 300 + i));
    }
    u.publish();
    let seen = spin_until(&u, 4, 5000);
    let got: Vec<u64> = std::iter::from_fn(|| u.pop())
        .map(|c| c.user_data)
        .collect();
    check(
        seen && got == (300..304).collect::<Vec<_>>(),
        format_args!("and 4 more complete with no syscall ({got:?})"),
    )?;
    Ok(())
}

/// A forked child shares the ring: its fd and its copy of the mappings
/// reach the same rings, and its exit does not free them.
fn shared_with_child() -> Result<(), String> {
    let mut u = ring(8)?;
    // The child fills the next slot through its copy of the mapping.
    let pid = crate::util::spawn(|| {
        let mut c = Uring {
            fd: u.fd,
            p: u.p,
            ring: u.ring,
            ring_len: 0,
            cq_ring: u.cq_ring,
            cq_len: 0,
            sqes: u.sqes,
            sqes_len: 0,
            tail: u.tail,
        };
        c.push(sqe(OP_NOP, -1, 77));
        let r = c.submit(1);
        std::mem::forget(c);
        if r == Ok(1) {
            Ok(())
        } else {
            Err(format!("child: io_uring_enter {}", show(r)))
        }
    })?;
    crate::util::wait_ok(pid, "the child submitting on the inherited ring")?;
    u.tail = u.tail.wrapping_add(1);
    let c = u.wait(1)?;
    check(
        c[0].user_data == 77 && c[0].res == 0 && u.sq_head() == u.tail,
        format_args!("a NOP submitted by a forked child completes in the parent's ring ({c:?})"),
    )?;
    let c = u.run1(sqe(OP_NOP, -1, 78))?;
    check(
        c.user_data == 78,
        "the ring still works after the child exited",
    )
}

/// Rings are freed when the last reference goes: the fd and the mappings
/// hold them, in either order. 300 of the largest rings (about 3 MiB of
/// shared memory each) are more than the guest's RAM, so a leak fails.
fn lifetime() -> Result<(), String> {
    for i in 0..300 {
        let mut u = ring(32768)?;
        if i % 2 == 0 {
            // The fd goes first: the mapping keeps the rings alive.
            // SAFETY: our descriptor; Drop's second close is harmless.
            unsafe { libc::close(u.fd) };
            u.fd = -1;
            let n = u.sq_word(u.p.sq_off.ring_entries).load(Ordering::Relaxed);
            if n != 32768 {
                return check(
                    false,
                    format_args!("ring {i}: mapping dead after close ({n})"),
                );
            }
        }
    }
    check(true, "300 rings of 32768 entries set up, mapped and freed")
}

fn bad_setup() -> Result<(), String> {
    // SAFETY: dup and close of our own descriptors.
    let lowest = unsafe {
        let fd = libc::dup(0);
        libc::close(fd);
        fd
    };
    for (what, ptr) in [
        ("NULL", 0usize),
        ("address 1", 1),
        ("kernel address", 0xffff_8000_0000_0000),
    ] {
        let r = sys(SYS_SETUP, [8, ptr as _, 0, 0, 0, 0]);
        check(
            r == Err(libc::EFAULT),
            format_args!("io_uring_setup(8, {what}) -> EFAULT ({})", show(r)),
        )?;
    }
    // Readable but not writable: the kernel cannot write the result back.
    // SAFETY: an anonymous read-only page, unmapped below.
    let ro = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    let r = sys(SYS_SETUP, [8, ro as _, 0, 0, 0, 0]);
    // SAFETY: our mapping.
    unsafe { libc::munmap(ro, 4096) };
    check(
        r == Err(libc::EFAULT),
        format_args!(
            "io_uring_setup with read-only params -> EFAULT ({})",
            show(r)
        ),
    )?;
    // SAFETY: as above.
    let after = unsafe {
        let fd = libc::dup(0);
        libc::close(fd);
        fd
    };
    check(
        after == lowest,
        format_args!("no descriptor left behind by the failed setups ({lowest} then {after})"),
    )?;
    let mut p = Params::default();
    let r = sys(SYS_SETUP, [0, &mut p as *mut Params as _, 0, 0, 0, 0]);
    check(
        r == Err(libc::EINVAL),
        format_args!("io_uring_setup(0 entries) -> EINVAL ({})", show(r)),
    )?;
    let r = sys(SYS_SETUP, [100_000, &mut p as *mut Params as _, 0, 0, 0, 0]);
    check(
        r == Err(libc::EINVAL),
        format_args!("io_uring_setup(100000 entries) -> EINVAL ({})", show(r)),
    )?;
    let mut p = Params {
        resv: [0, 1, 0],
        ..Params::default()
    };
    let r = sys(SYS_SETUP, [8, &mut p as *mut Params as _, 0, 0, 0, 0]);
    check(
        r == Err(libc::EINVAL),
        format_args!("io_uring_setup with resv set -> EINVAL ({})", show(r)),
    )?;
    let mut p = Params {
        flags: 1 << 31,
        ..Params::default()
    };
    let r = sys(SYS_SETUP, [8, &mut p as *mut Params as _, 0, 0, 0, 0]);
    check(
        r == Err(libc::EINVAL),
        format_args!(
            "io_uring_setup with an unknown flag -> EINVAL ({})",
            show(r)
        ),
    )?;
    Ok(())
}

pub fn run(_: &[String]) -> Result<(), String> {
    setup_and_layout()?;
    nops()?;
    read_write()?;
    vectored()?;
    open_close()?;
    bad_fd()?;
    poll_pipe()?;
    timeout()?;
    full_sq()?;
    full_cq()?;
    batch_wraps()?;
    batch_stops()?;
    batch_odd_entry()?;
    batch_overflows_cq()?;
    sqpoll()?;
    shared_with_child()?;
    lifetime()?;
    bad_setup()?;
    crate::say!("ok");
    Ok(())
}
