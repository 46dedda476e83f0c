//! Advisory file locks between processes: POSIX record locks (byte
//! ranges, read/write conflicts, splitting and merging, SEEK_CUR/SEEK_END,
//! released by closing any descriptor of the file and at exit, F_SETLKW
//! sleeping until the unlock or a signal, EDEADLK), OFD locks (owned by
//! the open file description) and flock(2). SQLite relies on all of the
//! record-lock rules.

use std::ffi::CString;

use crate::util::{check, errname, errno, handle, pipe, read_byte, sleep_ms, spawn, wait_ok};

/// The file the locks are on: in /tmp, or in the directory given as the
/// argument (an ext4 mount: locks are per file system and inode).
static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn open(flags: i32) -> Result<i32, String> {
    let path = PATH
        .get()
        .map_or("/tmp/rsetest-record-locks", String::as_str);
    let p = CString::new(path).unwrap();
    // SAFETY: a valid path string.
    let fd = unsafe { libc::open(p.as_ptr(), flags | libc::O_CLOEXEC, 0o600) };
    if fd < 0 {
        return Err(format!("open {path}: {}", errname(errno())));
    }
    Ok(fd)
}

fn flock_of(ty: i32, whence: i32, start: i64, len: i64) -> libc::flock {
    // SAFETY: all-zero is a valid struct flock.
    let mut l: libc::flock = unsafe { std::mem::zeroed() };
    l.l_type = ty as i16;
    l.l_whence = whence as i16;
    l.l_start = start;
    l.l_len = len;
    l
}

/// fcntl(fd, cmd, &flock) for a set command: Ok or the errno.
fn setlk(fd: i32, cmd: i32, ty: i32, whence: i32, start: i64, len: i64) -> Result<(), i32> {
    let mut l = flock_of(ty, whence, start, len);
    loop {
        // SAFETY: l is a valid struct flock.
        let r = unsafe { libc::fcntl(fd, cmd, &mut l) };
        if r == 0 {
            return Ok(());
        }
        let e = errno();
        if e != libc::EINTR || cmd == libc::F_SETLKW || cmd == libc::F_OFD_SETLKW {
            return Err(e);
        }
    }
}

/// F_GETLK (or F_OFD_GETLK) for a write lock over the range: the answer.
fn getlk(fd: i32, cmd: i32, ty: i32, start: i64, len: i64) -> Result<libc::flock, String> {
    let mut l = flock_of(ty, libc::SEEK_SET, start, len);
    // SAFETY: l is a valid struct flock.
    if unsafe { libc::fcntl(fd, cmd, &mut l) } != 0 {
        return Err(format!("F_GETLK: {}", errname(errno())));
    }
    Ok(l)
}

/// "F_WRLCK 0+10 pid 7" or "F_UNLCK".
fn show(l: &libc::flock) -> String {
    match l.l_type as i32 {
        libc::F_UNLCK => "F_UNLCK".into(),
        t => format!(
            "{} {}+{} pid {}",
            if t == libc::F_WRLCK {
                "F_WRLCK"
            } else {
                "F_RDLCK"
            },
            l.l_start,
            l.l_len,
            l.l_pid
        ),
    }
}

fn flock(fd: i32, op: i32) -> Result<(), i32> {
    // SAFETY: plain call on our descriptor.
    if unsafe { libc::flock(fd, op) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Runs `f` in a child and waits for it to pass.
fn in_child(what: &str, f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    let pid = spawn(f)?;
    wait_ok(pid, what)
}

extern "C" fn on_usr1(_: i32) {}

pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(dir) = args.first() {
        let _ = PATH.set(format!("{dir}/rsetest-record-locks"));
    }
    let fd = open(libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC)?;
    // SAFETY: our descriptor; a 100-byte file.
    check(
        unsafe { libc::ftruncate(fd, 100) } == 0,
        "a 100-byte file to lock",
    )?;
    let me = std::process::id() as i32;
    let (w, u, r) = (libc::F_WRLCK, libc::F_UNLCK, libc::F_RDLCK);
    let set = libc::SEEK_SET;

    // --- POSIX record locks between two processes -------------------
    check(
        setlk(fd, libc::F_SETLK, w, set, 0, 10).is_ok(),
        "write lock on bytes 0-9",
    )?;
    let own = getlk(fd, libc::F_GETLK, w, 0, 100)?;
    check(
        own.l_type as i32 == u,
        format_args!("the owner's own lock does not conflict ({})", show(&own)),
    )?;
    in_child("another process sees the lock and is refused", || {
        let l = getlk(fd, libc::F_GETLK, w, 5, 1)?;
        check(
            l.l_type as i32 == w && l.l_start == 0 && l.l_len == 10 && l.l_pid == me,
            format_args!("F_GETLK names the holder: {} (parent {me})", show(&l)),
        )?;
        let e = setlk(fd, libc::F_SETLK, w, set, 5, 1);
        check(
            e == Err(libc::EAGAIN) || e == Err(libc::EACCES),
            format_args!("F_SETLK over it fails with EAGAIN ({e:?})"),
        )?;
        check(
            setlk(fd, libc::F_SETLK, r, set, 0, 5) == Err(libc::EAGAIN),
            "a read lock conflicts with the write lock",
        )?;
        check(
            setlk(fd, libc::F_SETLK, w, set, 10, 10).is_ok(),
            "bytes 10-19 are free",
        )
    })?;
    // Splitting: unlocking the middle leaves two locks.
    check(
        setlk(fd, libc::F_SETLK, u, set, 3, 3).is_ok(),
        "unlock bytes 3-5",
    )?;
    in_child("the unlocked middle is free, the rest is not", || {
        let mid = getlk(fd, libc::F_GETLK, w, 3, 3)?;
        check(
            mid.l_type as i32 == u,
            format_args!("bytes 3-5 free ({})", show(&mid)),
        )?;
        let all = getlk(fd, libc::F_GETLK, w, 0, 100)?;
        check(
            all.l_type as i32 == w && all.l_start == 0 && all.l_len == 3,
            format_args!("the first piece is 0+3 ({})", show(&all)),
        )?;
        let right = getlk(fd, libc::F_GETLK, r, 4, 100)?;
        check(
            right.l_start == 6 && right.l_len == 4,
            format_args!("the second piece is 6+4 ({})", show(&right)),
        )
    })?;
    // Merging: relocking the middle makes one lock again.
    setlk(fd, libc::F_SETLK, w, set, 3, 3).map_err(errname)?;
    in_child("relocking the middle merges the pieces", || {
        let l = getlk(fd, libc::F_GETLK, w, 5, 1)?;
        check(
            l.l_start == 0 && l.l_len == 10,
            format_args!("one lock 0+10 ({})", show(&l)),
        )
    })?;
    // Converting part of a write lock to a read lock.
    setlk(fd, libc::F_SETLK, r, set, 0, 5).map_err(errname)?;
    in_child("a read lock inside a write lock converts that part", || {
        check(
            setlk(fd, libc::F_SETLK, r, set, 0, 5).is_ok(),
            "a reader shares bytes 0-4",
        )?;
        check(
            setlk(fd, libc::F_SETLK, r, set, 5, 1) == Err(libc::EAGAIN),
            "byte 5 is still write-locked",
        )
    })?;
    // Whence: SEEK_CUR, SEEK_END and a negative length.
    // SAFETY: our descriptor.
    unsafe { libc::lseek(fd, 50, libc::SEEK_SET) };
    setlk(fd, libc::F_SETLK, w, libc::SEEK_CUR, 0, 5).map_err(errname)?;
    setlk(fd, libc::F_SETLK, w, libc::SEEK_END, -10, 0).map_err(errname)?;
    setlk(fd, libc::F_SETLK, w, set, 30, -5).map_err(errname)?;
    in_child("SEEK_CUR, SEEK_END and negative lengths", || {
        let cur = getlk(fd, libc::F_GETLK, w, 52, 1)?;
        check(
            cur.l_start == 50 && cur.l_len == 5,
            format_args!("SEEK_CUR at 50, len 5: {}", show(&cur)),
        )?;
        let end = getlk(fd, libc::F_GETLK, w, 1000, 1)?;
        check(
            end.l_start == 90 && end.l_len == 0,
            format_args!("SEEK_END -10, len 0 = 90 to EOF and beyond: {}", show(&end)),
        )?;
        let neg = getlk(fd, libc::F_GETLK, w, 20, 10)?;
        check(
            neg.l_start == 25 && neg.l_len == 5,
            format_args!("start 30, len -5 = 25+5: {}", show(&neg)),
        )
    })?;
    // Closing any descriptor of the file drops the process's locks.
    let fd2 = open(libc::O_RDONLY)?;
    crate::util::close(fd2);
    in_child("closing another descriptor released every lock", || {
        let l = getlk(fd, libc::F_GETLK, w, 0, 0)?;
        check(
            l.l_type as i32 == u,
            format_args!("nothing locked ({})", show(&l)),
        )
    })?;
    // Errors.
    let ro = open(libc::O_RDONLY)?;
    check(
        setlk(ro, libc::F_SETLK, w, set, 0, 1) == Err(libc::EBADF),
        "a write lock through a read-only descriptor: EBADF",
    )?;
    crate::util::close(ro);
    let mut l = flock_of(u, set, 0, 1);
    // SAFETY: l is a valid struct flock.
    let e = unsafe { libc::fcntl(fd, libc::F_GETLK, &mut l) };
    check(
        e == -1 && errno() == libc::EINVAL,
        "F_GETLK of F_UNLCK: EINVAL",
    )?;
    check(
        setlk(fd, libc::F_SETLK, w, 7, 0, 1) == Err(libc::EINVAL),
        "an unknown whence: EINVAL",
    )?;
    check(
        setlk(fd, libc::F_SETLK, w, set, -1, 1) == Err(libc::EINVAL),
        "a negative start: EINVAL",
    )?;

    blocking(fd)?;
    deadlock(fd)?;
    ofd()?;
    flocks()?;
    many(fd)?;
    crate::util::close(fd);
    Ok(())
}

/// F_SETLKW sleeps until the holder unlocks; the holder's exit unlocks;
/// a signal interrupts the sleep (EINTR).
fn blocking(fd: i32) -> Result<(), String> {
    let (w, set) = (libc::F_WRLCK, libc::SEEK_SET);
    setlk(fd, libc::F_SETLK, w, set, 0, 1).map_err(errname)?;
    let (rd, wr) = pipe()?;
    let child = spawn(move || {
        setlk(fd, libc::F_SETLKW, w, set, 0, 1).map_err(|e| format!("F_SETLKW: {}", errname(e)))?;
        crate::util::write_all(wr, b"L");
        sleep_ms(300);
        Ok(()) // exits holding it
    })?;
    crate::util::close(wr);
    // SAFETY: plain calls on our pipe.
    unsafe { libc::fcntl(rd, libc::F_SETFL, libc::O_NONBLOCK) };
    sleep_ms(300);
    let mut b = 0u8;
    // SAFETY: one byte into b.
    let n = unsafe { libc::read(rd, (&mut b as *mut u8).cast(), 1) };
    check(
        n == -1 && errno() == libc::EAGAIN,
        "F_SETLKW sleeps while the lock is held",
    )?;
    // SAFETY: as above.
    unsafe { libc::fcntl(rd, libc::F_SETFL, 0) };
    setlk(fd, libc::F_SETLK, libc::F_UNLCK, set, 0, 1).map_err(errname)?;
    check(
        read_byte(rd) == Some(b'L'),
        "the unlock wakes it with the lock",
    )?;
    crate::util::close(rd);
    check(
        setlk(fd, libc::F_SETLKW, w, set, 0, 1).is_ok(),
        "the holder's exit releases the lock (our F_SETLKW returns)",
    )?;
    wait_ok(child, "the sleeper")?;
    // Interrupted by a signal whose handler has no SA_RESTART.
    let (rd, wr) = pipe()?;
    let child = spawn(move || {
        handle(libc::SIGUSR1, on_usr1 as *const () as libc::sighandler_t, 0)?;
        crate::util::write_all(wr, b"R");
        let e = setlk(fd, libc::F_SETLKW, w, set, 0, 1);
        check(
            e == Err(libc::EINTR),
            format_args!("a signal interrupts F_SETLKW with EINTR ({e:?})"),
        )
    })?;
    crate::util::close(wr);
    read_byte(rd);
    crate::util::close(rd);
    sleep_ms(200);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child, libc::SIGUSR1) };
    wait_ok(child, "the interrupted sleeper")?;
    setlk(fd, libc::F_SETLK, libc::F_UNLCK, set, 0, 0).map_err(errname)
}

/// Two processes each holding what the other waits for: the second to
/// wait gets EDEADLK instead of sleeping forever.
fn deadlock(fd: i32) -> Result<(), String> {
    let (w, set) = (libc::F_WRLCK, libc::SEEK_SET);
    setlk(fd, libc::F_SETLK, w, set, 0, 1).map_err(errname)?;
    let (rd, wr) = pipe()?;
    let child = spawn(move || {
        setlk(fd, libc::F_SETLK, w, set, 1, 1).map_err(errname)?;
        crate::util::write_all(wr, b"B");
        // Sleeps until the parent gives byte 0 up.
        setlk(fd, libc::F_SETLKW, w, set, 0, 1).map_err(|e| format!("F_SETLKW: {}", errname(e)))
    })?;
    crate::util::close(wr);
    read_byte(rd);
    crate::util::close(rd);
    sleep_ms(300); // the child is asleep in F_SETLKW by now
    let e = setlk(fd, libc::F_SETLKW, w, set, 1, 1);
    check(
        e == Err(libc::EDEADLK),
        format_args!(
            "waiting for the child's byte while it waits for ours: EDEADLK ({})",
            e.err().map_or("granted".into(), errname)
        ),
    )?;
    setlk(fd, libc::F_SETLK, libc::F_UNLCK, set, 0, 1).map_err(errname)?;
    wait_ok(child, "the child gets byte 0 once we let it go")
}

/// OFD locks belong to the open file description: two opens in one
/// process conflict, fork shares them, closing another descriptor keeps
/// them, the last close of the description drops them.
fn ofd() -> Result<(), String> {
    let (w, set) = (libc::F_WRLCK, libc::SEEK_SET);
    let a = open(libc::O_RDWR)?;
    let b = open(libc::O_RDWR)?;
    check(
        setlk(a, libc::F_OFD_SETLK, w, set, 0, 10).is_ok(),
        "OFD write lock through one open",
    )?;
    check(
        setlk(b, libc::F_OFD_SETLK, w, set, 5, 1) == Err(libc::EAGAIN),
        "another open of the same file in the same process conflicts",
    )?;
    let l = getlk(b, libc::F_OFD_GETLK, w, 0, 1)?;
    check(
        l.l_type as i32 == w && l.l_pid == -1 && l.l_len == 10,
        format_args!("F_OFD_GETLK reports it with l_pid -1 ({})", show(&l)),
    )?;
    check(
        setlk(b, libc::F_SETLK, w, set, 0, 1) == Err(libc::EAGAIN),
        "a POSIX lock of the same process conflicts with the OFD lock",
    )?;
    let mut bad = flock_of(w, set, 0, 1);
    bad.l_pid = 1;
    // SAFETY: bad is a valid struct flock.
    let e = unsafe { libc::fcntl(b, libc::F_OFD_SETLK, &mut bad) };
    check(
        e == -1 && errno() == libc::EINVAL,
        "OFD with l_pid != 0: EINVAL",
    )?;
    in_child("a forked child shares the description's lock", || {
        check(
            setlk(a, libc::F_OFD_SETLK, w, set, 0, 20).is_ok(),
            "the inherited descriptor extends the same lock",
        )
    })?;
    let c = open(libc::O_RDONLY)?;
    crate::util::close(c);
    check(
        getlk(b, libc::F_OFD_GETLK, w, 15, 1)?.l_type as i32 == w,
        "closing another descriptor keeps OFD locks (the child's extension too)",
    )?;
    crate::util::close(a);
    check(
        setlk(b, libc::F_OFD_SETLK, w, set, 0, 20).is_ok(),
        "closing the description drops its locks",
    )?;
    crate::util::close(b);
    Ok(())
}

/// flock(2): shared and exclusive whole-file locks per open file
/// description, LOCK_NB, blocking, and no interaction with fcntl locks.
fn flocks() -> Result<(), String> {
    let a = open(libc::O_RDONLY)?;
    let b = open(libc::O_RDONLY)?;
    check(flock(a, libc::LOCK_EX).is_ok(), "LOCK_EX")?;
    check(
        flock(b, libc::LOCK_EX | libc::LOCK_NB) == Err(libc::EWOULDBLOCK),
        "a second LOCK_EX|LOCK_NB: EWOULDBLOCK",
    )?;
    check(
        flock(b, libc::LOCK_SH | libc::LOCK_NB) == Err(libc::EWOULDBLOCK),
        "LOCK_SH|LOCK_NB against it: EWOULDBLOCK",
    )?;
    in_child("fcntl locks do not see flock locks", || {
        let fd = open(libc::O_RDWR)?;
        check(
            setlk(fd, libc::F_SETLK, libc::F_WRLCK, libc::SEEK_SET, 0, 0).is_ok(),
            "F_SETLK write lock on the whole file",
        )
    })?;
    let (rd, wr) = pipe()?;
    let child = spawn(move || {
        let c = open(libc::O_RDONLY)?;
        flock(c, libc::LOCK_SH).map_err(errname)?;
        crate::util::write_all(wr, b"S");
        Ok(())
    })?;
    crate::util::close(wr);
    sleep_ms(200);
    check(flock(a, libc::LOCK_UN).is_ok(), "LOCK_UN")?;
    check(
        read_byte(rd) == Some(b'S'),
        "a blocked LOCK_SH is granted at the unlock",
    )?;
    crate::util::close(rd);
    wait_ok(child, "the flock sleeper")?;
    check(
        flock(a, libc::LOCK_SH).is_ok() && flock(b, libc::LOCK_SH).is_ok(),
        "two shared locks",
    )?;
    check(
        flock(a, libc::LOCK_EX | libc::LOCK_NB) == Err(libc::EWOULDBLOCK),
        "upgrading while another shares: EWOULDBLOCK",
    )?;
    check(flock(a, 0) == Err(libc::EINVAL), "operation 0: EINVAL")?;
    crate::util::close(b);
    check(
        flock(a, libc::LOCK_EX | libc::LOCK_NB).is_ok(),
        "closing the other description released its lock",
    )?;
    crate::util::close(a);
    Ok(())
}

/// 12,000 separate locks (RSE OS keeps at most 10,000): all granted (Linux) or
/// refused with ENOLCK past the kernel's bound; either way one unlock
/// drops them all and locking works again, here and in another process.
fn many(fd: i32) -> Result<(), String> {
    let (w, set) = (libc::F_WRLCK, libc::SEEK_SET);
    let mut got = 0;
    let mut err = 0;
    for i in 0..12_000i64 {
        match setlk(fd, libc::F_SETLK, w, set, 2 * i, 1) {
            Ok(()) => got += 1,
            Err(e) => {
                err = e;
                break;
            }
        }
    }
    check(
        got == 12_000 || (err == libc::ENOLCK && got >= 1000),
        format_args!(
            "{got} one-byte locks, then {}",
            if err == 0 {
                "no error".into()
            } else {
                errname(err)
            }
        ),
    )?;
    check(
        setlk(fd, libc::F_SETLK, libc::F_UNLCK, set, 0, 0).is_ok(),
        "one unlock of the whole file",
    )?;
    check(
        setlk(fd, libc::F_SETLK, w, set, 1, 1).is_ok(),
        "locking works again",
    )?;
    in_child("another process can lock after the flood", || {
        let f2 = open(libc::O_RDWR)?;
        check(
            setlk(f2, libc::F_SETLK, w, set, 10, 1).is_ok(),
            "a lock in another process",
        )
    })?;
    setlk(fd, libc::F_SETLK, libc::F_UNLCK, set, 0, 0).map_err(errname)
}
