//! Starts the first process (pid 1): `/bin/sh` on the console, or
//! `/bin/sh -c CMD` when the command line says `exec` (CMD is the content
//! of /etc/rse/exec in the initramfs, put there by `cargo xtask run --exec`).
//! When pid 1 exits the kernel reports its status and QEMU exits.

use abi::KResult;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use spin::Mutex;
use vfs::ROOT_INO;

use crate::fs::fdtable::FdTable;
use crate::fs::file::{Kind, OpenFile, O_RDWR};
use crate::proc::{self, sched, FsContext, Info, NewProcess, Relations};

/// Starts pid 1. `exec` selects the scripted mode.
pub fn start(exec: bool) -> KResult<()> {
    let argv: Vec<Vec<u8>> = if exec {
        let ino = crate::fs::with(|fs| fs.lookup(ROOT_INO, b"/etc/rse/exec", true))?;
        let cmd = crate::fs::read_all(ino)?;
        vec![b"sh".to_vec(), b"-c".to_vec(), cmd]
    } else {
        vec![b"sh".to_vec()]
    };
    let envp: Vec<Vec<u8>> = [
        &b"HOME=/root"[..],
        b"PATH=/sbin:/usr/sbin:/bin:/usr/bin",
        b"TERM=vt100",
        b"SHELL=/bin/sh",
        b"USER=root",
        b"PWD=/",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect();
    let loaded = crate::exec::load(ROOT_INO, b"/bin/sh", argv, &envp, 0)?;
    let mut files = FdTable::new();
    let tty = OpenFile::new(Kind::Tty, O_RDWR);
    for _ in 0..3 {
        files.insert(tty.clone(), false)?;
    }
    let p = proc::Process::spawn(NewProcess {
        frame: hal::context::user_frame(loaded.entry, loaded.sp),
        fpu: hal::percpu::FpuArea::initial(),
        fs_base: 0,
        mm: Arc::new(Mutex::new(loaded.mm)),
        files: Arc::new(Mutex::new(files)),
        fs: FsContext {
            cwd: ROOT_INO,
            umask: 0o022,
        },
        rel: Relations {
            ppid: 0,
            pgid: 0,
            sid: 0,
            children: Vec::new(),
        },
        sig: proc::signal::SignalState::default(),
        info: Info {
            comm: String::from("sh"),
            cmdline: loaded.cmdline,
            exe: loaded.exe,
            nice: 0,
            torus: 0,
            cell: (0, 0, 0),
            start_ns: hal::time::now_ns(),
        },
    })?;
    sched::enqueue_new(p);
    Ok(())
}
