//! Console input: bytes received on COM1 by the interrupt handler wait
//! here until a reader (the tty) takes them.

use alloc::collections::VecDeque;
use spin::Mutex;

const CAPACITY: usize = 4096;

static RX: Mutex<VecDeque<u8>> = Mutex::new(VecDeque::new());

/// Drains the UART into the buffer (called from the COM1 interrupt).
pub fn on_interrupt() {
    let mut rx = RX.lock();
    while let Some(b) = hal::serial::try_receive() {
        if rx.len() < CAPACITY {
            rx.push_back(b);
        }
    }
}

/// Takes one received byte, if any.
pub fn read_byte() -> Option<u8> {
    hal::cpu::without_interrupts(|| RX.lock().pop_front())
}
