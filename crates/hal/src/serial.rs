//! COM1 (the console) and QEMU's debug console port (the kernel log).

use core::fmt;
use spin::Mutex;
use uart_16550::SerialPort;
use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;
const DEBUGCON: u16 = 0xe9;

static COM1_PORT: Mutex<Option<SerialPort>> = Mutex::new(None);

/// Initialises COM1 (115200 8N1, receive interrupt enabled, FIFO on).
pub fn init() {
    // SAFETY: 0x3f8 is COM1 on every PC and QEMU machine type we use; only
    // this module touches those ports.
    let mut port = unsafe { SerialPort::new(COM1) };
    port.init();
    *COM1_PORT.lock() = Some(port);
}

/// Writes bytes to COM1 as they are (no newline translation).
pub fn write_bytes(bytes: &[u8]) {
    crate::cpu::without_interrupts(|| {
        if let Some(port) = COM1_PORT.lock().as_mut() {
            for &b in bytes {
                port.send_raw(b);
            }
        }
    });
}

/// Takes one received byte from COM1 if one is waiting (non-blocking).
pub fn try_receive() -> Option<u8> {
    crate::cpu::without_interrupts(|| {
        let mut guard = COM1_PORT.lock();
        let port = guard.as_mut()?;
        port.try_receive().ok()
    })
}

/// Writes bytes to QEMU's debug console (`-debugcon`); ignored elsewhere.
pub fn debugcon_write(bytes: &[u8]) {
    let mut port = Port::<u8>::new(DEBUGCON);
    for &b in bytes {
        // SAFETY: port 0xe9 is QEMU's debugcon; writes have no other effect.
        unsafe { port.write(b) };
    }
}

/// A `fmt::Write` sink that sends to COM1.
pub struct Com1;

impl fmt::Write for Com1 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

/// A `fmt::Write` sink that sends to the debug console.
pub struct DebugCon;

impl fmt::Write for DebugCon {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        debugcon_write(s.as_bytes());
        Ok(())
    }
}
