//! The kernel command line: space-separated `key` or `key=value` words.
//!
//! Known keys: `quiet` (kernel log only on the debug console),
//! `selftest=all|crash|overflow_task|overflow_boot` (run the in-kernel
//! self tests, then exit QEMU; the others fault on purpose and must be
//! reported: an unmapped read, a task or the boot stack overflowed),
//! `tori=N` (number of tori, default one per CPU; CPUs host extra ones in
//! turn; one frame pool per torus), `cluster.node=K
//! cluster.peers=A0,A1,…` (this machine is member K of a ring of machines
//! at those IPv4 addresses; `cluster`), `inject.*` (test delays; `inject`),
//! `trace.errors=1` (log every failing syscall; `syscall::errtrace`),
//! `root=/dev/vdX [ro]` (/ is the ext4 file system on that disk;
//! `fs::rootdisk`), `pagecache.kb=N` (most KiB of unmapped file pages an
//! ext4 mount keeps cached; `fs::ext4_pages`), `blk.spin_us=N` (how
//! long a disk caller that may sleep looks at the device first, default
//! 50; `block`), `init=PATH` (pid 1 on a root disk; `rdinit=PATH`
//! otherwise), `heap.mb=N` (a kernel heap of N MiB at boot, at least 4,
//! instead of a quarter of RAM), `heap.maxmb=N` (the most the heap grows
//! to from the frame pools, default half of RAM); both read by `hal::heap`
//! at boot, `tsc_early_khz=N` (the TSC's frequency, as Linux's: no
//! calibration against the PIT; `hal::time::calibrate`).

/// Looks up `key`; `Some("")` for a bare flag.
pub fn get<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_ascii_whitespace()
        .find_map(|w| match w.split_once('=') {
            Some((k, v)) if k == key => Some(v),
            None if w == key => Some(""),
            _ => None,
        })
}
