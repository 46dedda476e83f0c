//! Leaf syscalls: the ones hal's light path answers from the running
//! task's [`hal::syscall::TaskIds`] (no frame, no FPU save, no call into
//! the kernel; see `hal::syscall`). The kernel's part is to keep those ids
//! true: pid and tgid never change, a leader's parent is updated with its
//! `rel` record (`Process::set_ppid`), a thread's parent is not recorded
//! there (it is its leader's: the full handler answers), and the ids of
//! the task a CPU runs are installed with it (`Process::install_on_cpu`).
//! Syscall boundaries that have work (io_uring rings) pause the light
//! path (`io_uring`, `hal::syscall::set_leaf_paused`).

use hal::syscall::LeafField;
use linux_raw_sys::general as nr;

/// The syscalls the light path answers, and with which field.
pub const LEAVES: &[(u32, LeafField)] = &[
    (nr::__NR_getpid, LeafField::Tgid),
    (nr::__NR_gettid, LeafField::Pid),
    (nr::__NR_getppid, LeafField::Ppid),
];
