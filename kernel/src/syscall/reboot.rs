//! reboot(2): power off, halt and restart stop the machine (QEMU exits,
//! status 0; a restart does not boot again). Every mount is written home
//! first, as umount would (Linux's shutdown leaves that to init, which
//! unmounts or remounts read-only before it calls reboot): after busybox
//! `poweroff -f` a root disk is clean for `e2fsck -fn`.

use abi::{Errno, KResult};

const MAGIC1: u64 = 0xfee1_dead;
const MAGIC2: [u64; 4] = [672_274_793, 85_072_278, 369_367_448, 537_993_216];
const CMD_RESTART: u64 = 0x0123_4567;
const CMD_HALT: u64 = 0xcdef_0123;
const CMD_POWER_OFF: u64 = 0x4321_fedc;
const CMD_RESTART2: u64 = 0xa1b2_c3d4;
const CMD_CAD_ON: u64 = 0x89ab_cdef;
const CMD_CAD_OFF: u64 = 0;

pub fn reboot(magic1: u64, magic2: u64, cmd: u64) -> KResult<u64> {
    // CAP_SYS_BOOT.
    if !crate::proc::sched::current().cred().privileged() {
        return Err(Errno::EPERM);
    }
    if magic1 as u32 as u64 != MAGIC1 || !MAGIC2.contains(&(magic2 as u32 as u64)) {
        return Err(Errno::EINVAL);
    }
    match cmd as u32 as u64 {
        CMD_CAD_ON | CMD_CAD_OFF => Ok(0),
        CMD_POWER_OFF | CMD_HALT | CMD_RESTART | CMD_RESTART2 => {
            crate::fs::mount::shutdown_all();
            crate::klog!("reboot: the machine stops (command {cmd:#x})");
            hal::exit::exit_qemu(hal::exit::ExitCode::Success)
        }
        _ => Err(Errno::EINVAL),
    }
}
