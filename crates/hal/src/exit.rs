//! Leaving QEMU with a status through the `isa-debug-exit` device.
//!
//! QEMU is started with `-device isa-debug-exit,iobase=0xf4,iosize=4`; a
//! write of `v` makes QEMU exit with status `(v << 1) | 1`. The host tool
//! maps those statuses back; on real hardware the write is ignored and we
//! halt instead.

use x86_64::instructions::port::Port;

const DEBUG_EXIT_PORT: u16 = 0xf4;

/// How the kernel ends a QEMU run; QEMU's exit status is `2 * code + 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// Orderly shutdown (QEMU status 1).
    Success = 0,
    /// Kernel panic, unexpected exception, failed self test (QEMU status 3).
    Failure = 1,
}

/// Exits QEMU (or halts forever on a machine without the device).
pub fn exit_qemu(code: ExitCode) -> ! {
    let mut port = Port::<u32>::new(DEBUG_EXIT_PORT);
    // SAFETY: port 0xf4 is the isa-debug-exit device under QEMU and unused
    // on the PCs we target; writing it has no other effect.
    unsafe { port.write(code as u32) };
    crate::cpu::halt_forever()
}
