//! open(O_CREAT) without O_EXCL is one step for the caller: a name that
//! another process creates at the same moment is opened, never EEXIST.
//! Several processes open the same new names in the same order, with
//! the next name released to all of them at once through a shared
//! counter; every open must succeed. Two sqlite3 processes opening a
//! database's `-shm` file both rely on this (the loser of the race fell
//! back to a read-only open: "attempt to write a readonly database").
//! Then umask: files and directories made with 0666/0777 get 0644/0755
//! under umask 022. In the directory given (an ext4 mount) or /tmp.

use std::ffi::CString;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::say;
use crate::util::{check, errname, errno, mmap_shared, spawn, wait_ok};

const PROCS: u32 = 3;
const NAMES: u32 = 40;

fn open_creat(path: &CString) -> i32 {
    // SAFETY: a plain open of a path we own.
    unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC,
            0o644,
        )
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let dir = args.first().map_or("/tmp", String::as_str).to_string();
    let base = format!("{dir}/rsetest-create-race");
    let c = |s: &str| CString::new(s).unwrap();
    // SAFETY: a fresh directory for the names.
    unsafe { libc::mkdir(c(&base).as_ptr(), 0o755) };
    // [0]: the name everyone may open now; [1]: how many are at the gate.
    let shared = mmap_shared(4096).map_err(|e| format!("mmap: {}", errname(e)))?;
    // SAFETY: two u32s at the start of a fresh shared page.
    let (go, ready) = unsafe {
        (
            &*(shared as *const AtomicU32),
            &*(shared.add(4) as *const AtomicU32),
        )
    };
    let mut kids = Vec::new();
    for p in 0..PROCS {
        let base = base.clone();
        kids.push(spawn(move || {
            for n in 1..=NAMES {
                ready.fetch_add(1, Ordering::AcqRel);
                while go.load(Ordering::Acquire) < n {
                    std::hint::spin_loop();
                }
                let fd = open_creat(&CString::new(format!("{base}/f{n}")).unwrap());
                if fd < 0 {
                    return Err(format!(
                        "process {p}: open(f{n}, O_RDWR|O_CREAT) while others create it: {}",
                        errname(errno())
                    ));
                }
                // SAFETY: our descriptor.
                unsafe { libc::close(fd) };
            }
            Ok(())
        })?);
    }
    for n in 1..=NAMES {
        while ready.load(Ordering::Acquire) < n * PROCS {
            std::hint::spin_loop();
        }
        go.store(n, Ordering::Release);
    }
    for k in kids {
        wait_ok(k, "a process opening names others create at once")?;
    }
    say!("create_race: {PROCS} processes opened {NAMES} names each as they were created");

    // SAFETY: umask has no failure.
    let old = unsafe { libc::umask(0o022) };
    let f = c(&format!("{base}/m"));
    let d = c(&format!("{base}/d"));
    // SAFETY: plain calls on our own paths.
    let fd = unsafe {
        libc::open(
            f.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
            0o666,
        )
    };
    check(fd >= 0, "open(O_CREAT|O_EXCL, 0666)")?;
    // SAFETY: our descriptor; our path.
    unsafe {
        libc::close(fd);
        libc::mkdir(d.as_ptr(), 0o777);
        libc::umask(old);
    }
    let mode = |p: &CString| -> u32 {
        // SAFETY: st is written by stat.
        let mut st: libc::stat = unsafe { core::mem::zeroed() };
        // SAFETY: as above.
        unsafe { libc::stat(p.as_ptr(), &mut st) };
        st.st_mode & 0o7777
    };
    check(
        mode(&f) == 0o644,
        format!(
            "a file made 0666 under umask 022 is {:o} (Linux: 644)",
            mode(&f)
        ),
    )?;
    check(
        mode(&d) == 0o755,
        format!(
            "a directory made 0777 under umask 022 is {:o} (Linux: 755)",
            mode(&d)
        ),
    )?;
    // SAFETY: our own paths.
    unsafe {
        for n in 1..=NAMES {
            libc::unlink(c(&format!("{base}/f{n}")).as_ptr());
        }
        libc::unlink(f.as_ptr());
        libc::rmdir(d.as_ptr());
        libc::rmdir(c(&base).as_ptr());
    }
    say!("create_race: umask 022 gives 644 and 755");
    Ok(())
}
