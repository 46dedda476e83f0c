//! Console input: bytes received on COM1 by the interrupt handler wait in a
//! fixed ring (no allocation in interrupt context) until the tty's line
//! discipline takes them.

use spin::Mutex;

const CAPACITY: usize = 4096;

struct Ring {
    buf: [u8; CAPACITY],
    head: usize,
    len: usize,
}

static RX: Mutex<Ring> = Mutex::new(Ring {
    buf: [0; CAPACITY],
    head: 0,
    len: 0,
});

/// Drains the UART into the ring (called from the COM1 interrupt).
pub fn on_interrupt() {
    let mut rx = RX.lock();
    while let Some(b) = hal::serial::try_receive() {
        if rx.len < CAPACITY {
            let i = (rx.head + rx.len) % CAPACITY;
            rx.buf[i] = b;
            rx.len += 1;
        }
    }
}

/// Whether received bytes are waiting.
pub fn has_input() -> bool {
    hal::cpu::without_interrupts(|| RX.lock().len > 0)
}

/// Takes one received byte, if any.
pub fn read_byte() -> Option<u8> {
    hal::cpu::without_interrupts(|| {
        let mut rx = RX.lock();
        if rx.len == 0 {
            return None;
        }
        let b = rx.buf[rx.head];
        rx.head = (rx.head + 1) % CAPACITY;
        rx.len -= 1;
        Some(b)
    })
}
