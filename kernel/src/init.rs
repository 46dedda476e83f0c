//! Starts the first process (pid 1): `/bin/sh` on the console, or
//! `/bin/sh -c CMD` when the command line says `exec` (CMD is the content
//! of /etc/rse/exec in the initramfs, put there by `cargo xtask run --exec`),
//! or the program named by `rdinit=PATH` (as on Linux; the benchmarks boot
//! both kernels with `rdinit=/usr/bin/rsebench`) or, on a root disk,
//! `init=PATH`. With `root=` the programs come from the disk; the
//! command of `exec` is still read from the initramfs.
//! When pid 1 exits the kernel reports its status and QEMU exits.

use abi::KResult;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use spin::Mutex;
use vfs::ROOT_INO;

use crate::fs::fdtable::FdTable;
use crate::fs::file::{Kind, OpenFile, O_RDWR};
use crate::proc::{self, sched, FsContext, Info, NewProcess, Relations};

/// What pid 1 runs.
pub enum Program<'a> {
    /// An interactive `/bin/sh`.
    Shell,
    /// `/bin/sh -c` with the content of /etc/rse/exec.
    ShellCommand,
    /// `rdinit=PATH`: that program, with argv = [PATH].
    Path(&'a str),
}

impl core::fmt::Display for Program<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Program::Shell => f.write_str("/bin/sh"),
            Program::ShellCommand => f.write_str("/bin/sh -c"),
            Program::Path(p) => f.write_str(p),
        }
    }
}

/// Starts pid 1.
pub fn start(program: &Program) -> KResult<()> {
    let (path, argv): (&[u8], Vec<Vec<u8>>) = match program {
        Program::ShellCommand => {
            let ino = crate::fs::with(|fs| fs.lookup(ROOT_INO, b"/etc/rse/exec", true))?;
            let cmd = crate::fs::read_all(ino)?;
            (b"/bin/sh", vec![b"sh".to_vec(), b"-c".to_vec(), cmd])
        }
        Program::Shell => (b"/bin/sh", vec![b"sh".to_vec()]),
        Program::Path(p) => (p.as_bytes(), vec![p.as_bytes().to_vec()]),
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
    let root = proc::cred::Cred::root();
    // There is no cwd yet: a path is from the root.
    if path.first() != Some(&b'/') {
        return Err(abi::Errno::ENOENT);
    }
    let loaded = crate::exec::load(
        crate::syscall::fs::AT_FDCWD,
        path,
        argv,
        &envp,
        0,
        (&root, false),
    )?;
    let mut files = FdTable::new();
    let tty = OpenFile::new(Kind::Tty, O_RDWR);
    for _ in 0..3 {
        files.insert(tty.clone(), false)?;
    }
    let p = proc::Process::spawn(NewProcess {
        oom_score_adj: 0,
        frame: hal::context::user_frame(loaded.entry, loaded.sp),
        fpu: hal::percpu::FpuArea::initial(),
        fs_base: 0,
        gs_base: 0,
        mm: crate::mm::shared::SharedMm::new(loaded.mm),
        files: Arc::new(Mutex::new(files)),
        fs: Arc::new(Mutex::new(FsContext {
            cwd: match crate::fs::rootdisk::root() {
                Some(m) => {
                    let root = m.fs.root();
                    crate::fs::cwd::Cwd::new(crate::fs::cwd::Dir::Ext(m, root))
                }
                None => crate::fs::cwd::Cwd::Tmpfs(ROOT_INO),
            },
            umask: 0o022,
        })),
        group: None,
        rel: Relations {
            ppid: 0,
            pgid: 0,
            sid: 0,
            children: Vec::new(),
        },
        sig: proc::signal::SignalState::default(),
        limits: proc::limits::Limits::default(),
        params: runq::Params::DEFAULT,
        affinity: u64::MAX,
        cred: Arc::new(loaded.cred),
        no_new_privs: false,
        info: Info {
            comm: loaded.comm.clone(),
            cmdline: loaded.cmdline,
            exe: loaded.exe,
            torus: 0,
            cell: (0, 0, 0),
            start_ns: hal::time::now_ns(),
        },
    })?;
    sched::enqueue_new(p);
    Ok(())
}
