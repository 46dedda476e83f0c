//! The legacy 8259 PICs: remapped away from the exception vectors and fully
//! masked, so a stray IRQ can never look like a CPU exception. All device
//! interrupts go through the I/O APIC instead.

use x86_64::instructions::port::Port;

/// Remaps both PICs to vectors 0x20..0x30 and masks every line.
pub fn disable() {
    let mut cmd1 = Port::<u8>::new(0x20);
    let mut data1 = Port::<u8>::new(0x21);
    let mut cmd2 = Port::<u8>::new(0xa0);
    let mut data2 = Port::<u8>::new(0xa1);
    // SAFETY: the standard ICW1..ICW4 initialisation sequence on the PIC
    // ports; it only changes where (masked) PIC interrupts would be delivered.
    unsafe {
        cmd1.write(0x11);
        cmd2.write(0x11);
        data1.write(0x20);
        data2.write(0x28);
        data1.write(4);
        data2.write(2);
        data1.write(1);
        data2.write(1);
        data1.write(0xff);
        data2.write(0xff);
    }
}
