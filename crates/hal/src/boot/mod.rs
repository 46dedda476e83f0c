//! Boot entry: the 32-bit stub (entry.S), boot-information parsing for both
//! protocols, and the hand-off to the kernel.

mod acpi;
mod multiboot2;
mod pvh;

use core::fmt;
use spin::Once;

core::arch::global_asm!(include_str!("entry.S"), options(att_syntax));

/// How the machine entered the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Xen PVH (QEMU `-kernel`).
    Pvh,
    /// Multiboot2 (GRUB).
    Multiboot2,
}

/// One physical memory region from the firmware map.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryRegion {
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// Available RAM (E820 type 1).
    pub usable: bool,
}

use crate::gdt::MAX_CPUS;

const MAX_REGIONS: usize = 64;
const MAX_CMDLINE: usize = 1024;

/// What the boot loader told us, copied out of loader memory.
pub struct BootInfo {
    /// Boot protocol used.
    pub protocol: Protocol,
    regions: [MemoryRegion; MAX_REGIONS],
    region_count: usize,
    cmdline: [u8; MAX_CMDLINE],
    cmdline_len: usize,
    /// Physical range of the initramfs, if the loader passed one.
    pub initrd: Option<(u64, u64)>,
    /// Physical address of the ACPI RSDP, if the loader passed it.
    pub rsdp: Option<u64>,
    /// TSC value at the first Rust instruction.
    pub entry_tsc: u64,
    /// Whether an ACPI MADT was found (the CPU list comes from it).
    pub acpi_madt: bool,
    cpus: [u32; MAX_CPUS],
    cpu_count: usize,
    /// Enabled CPUs the MADT listed beyond [`MAX_CPUS`] (not started).
    pub cpus_ignored: usize,
    ioapics: [IoApicEntry; MAX_IOAPICS],
    ioapic_count: usize,
}

/// At most this many I/O APICs are remembered from the MADT (QEMU's
/// `microvm` has two: the second one carries the virtio-mmio interrupts).
pub const MAX_IOAPICS: usize = 4;

/// An I/O APIC the MADT lists.
#[derive(Clone, Copy, Debug, Default)]
pub struct IoApicEntry {
    /// Physical address of its registers.
    pub address: u64,
    /// First global system interrupt (GSI) it serves.
    pub gsi_base: u32,
}

impl BootInfo {
    fn empty(protocol: Protocol, entry_tsc: u64) -> Self {
        BootInfo {
            protocol,
            regions: [MemoryRegion::default(); MAX_REGIONS],
            region_count: 0,
            cmdline: [0; MAX_CMDLINE],
            cmdline_len: 0,
            initrd: None,
            rsdp: None,
            entry_tsc,
            acpi_madt: false,
            cpus: [0; MAX_CPUS],
            cpu_count: 0,
            cpus_ignored: 0,
            ioapics: [IoApicEntry::default(); MAX_IOAPICS],
            ioapic_count: 0,
        }
    }

    fn push_region(&mut self, start: u64, len: u64, usable: bool) {
        if self.region_count < MAX_REGIONS && len > 0 {
            self.regions[self.region_count] = MemoryRegion { start, len, usable };
            self.region_count += 1;
        }
    }

    fn push_cpu(&mut self, apic_id: u32) {
        if self.cpus[..self.cpu_count].contains(&apic_id) {
            return;
        }
        if self.cpu_count < MAX_CPUS {
            self.cpus[self.cpu_count] = apic_id;
            self.cpu_count += 1;
        } else {
            self.cpus_ignored += 1;
        }
    }

    fn push_ioapic(&mut self, address: u64, gsi_base: u32) {
        if self.ioapic_count < MAX_IOAPICS {
            self.ioapics[self.ioapic_count] = IoApicEntry { address, gsi_base };
            self.ioapic_count += 1;
        }
    }

    /// The I/O APICs of the MADT, in table order; empty without ACPI.
    pub fn ioapics(&self) -> &[IoApicEntry] {
        &self.ioapics[..self.ioapic_count]
    }

    /// APIC ids of the enabled CPUs in the ACPI MADT, in table order (the
    /// bootstrap CPU among them); empty without ACPI.
    pub fn apic_ids(&self) -> &[u32] {
        &self.cpus[..self.cpu_count]
    }

    fn set_cmdline(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(MAX_CMDLINE);
        self.cmdline[..n].copy_from_slice(&bytes[..n]);
        self.cmdline_len = n;
    }

    /// The firmware memory map.
    pub fn memory_map(&self) -> &[MemoryRegion] {
        &self.regions[..self.region_count]
    }

    /// One past the highest byte of usable RAM.
    pub fn ram_end(&self) -> u64 {
        self.memory_map()
            .iter()
            .filter(|r| r.usable)
            .map(|r| r.start + r.len)
            .max()
            .unwrap_or(0)
    }

    /// The kernel command line (empty if none or not UTF-8).
    pub fn cmdline(&self) -> &str {
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }

    /// The initramfs bytes, read through the direct map.
    pub fn initrd_bytes(&self) -> &'static [u8] {
        match self.initrd {
            Some((start, len)) => crate::paging::phys_slice(start, len as usize),
            None => &[],
        }
    }
}

static BOOT_INFO: Once<BootInfo> = Once::new();

/// The boot information (available once the kernel entry runs).
pub fn info() -> &'static BootInfo {
    BOOT_INFO
        .get()
        .expect("boot info is parsed before the kernel runs")
}

extern "Rust" {
    fn __rse_kernel_main(info: &'static BootInfo) -> !;
}

/// Declares the kernel's entry function: `fn(&'static BootInfo) -> !`.
#[macro_export]
macro_rules! kernel_entry {
    ($f:path) => {
        #[export_name = "__rse_kernel_main"]
        fn __rse_kernel_main(info: &'static $crate::boot::BootInfo) -> ! {
            let f: fn(&'static $crate::boot::BootInfo) -> ! = $f;
            f(info)
        }
    };
}

/// Called by entry.S in long mode on the boot stack. The low 4 GiB are
/// identity-mapped here, so loader structures can be read directly.
#[no_mangle]
extern "C" fn hal_start64(protocol: u32, info_paddr: u32) -> ! {
    let entry_tsc = crate::cpu::rdtsc();
    let info = BOOT_INFO.call_once(|| {
        let mut info = match protocol {
            1 => pvh::parse(info_paddr as u64, BootInfo::empty(Protocol::Pvh, entry_tsc)),
            _ => multiboot2::parse(
                info_paddr as u64,
                BootInfo::empty(Protocol::Multiboot2, entry_tsc),
            ),
        };
        // The ACPI tables are read here, while the low 4 GiB are still
        // identity-mapped, like the rest of the loader's information.
        acpi::find_cpus(&mut info);
        info
    });
    // SAFETY: the kernel binary defines this symbol with `kernel_entry!`.
    unsafe { __rse_kernel_main(info) }
}

/// Reads a `T` at a physical address below 4 GiB during early boot, while
/// the loader's structures are still identity-mapped.
fn early_read<T: Copy>(paddr: u64) -> T {
    // SAFETY: only used on loader-provided addresses below 4 GiB, which the
    // boot page tables identity-map; read_unaligned tolerates any alignment.
    unsafe { core::ptr::read_unaligned(paddr as *const T) }
}

/// A byte slice at a physical address below 4 GiB during early boot.
fn early_slice(paddr: u64, len: usize) -> &'static [u8] {
    // SAFETY: as early_read; the slice is copied before paging changes.
    unsafe { core::slice::from_raw_parts(paddr as *const u8, len) }
}

/// A fixed-capacity formatting buffer for paths that must not allocate.
pub struct FmtBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> FmtBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        FmtBuf {
            buf: [0; N],
            len: 0,
        }
    }
    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> Default for FmtBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for FmtBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(N - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Appends return addresses found by walking frame pointers from `rbp`
/// (the kernel is built with frame pointers). Stops at the first frame
/// outside the kernel's higher half or after 16 frames.
pub fn write_backtrace(out: &mut impl fmt::Write, mut rbp: u64) {
    for _ in 0..16 {
        if rbp < 0xffff_8000_0000_0000
            || !rbp.is_multiple_of(8)
            || !crate::paging::is_mapped(rbp)
            || !crate::paging::is_mapped(rbp + 8)
        {
            break;
        }
        // SAFETY: rbp is 8-aligned and both words are mapped kernel memory.
        let (next, ret) = unsafe { (*(rbp as *const u64), *((rbp + 8) as *const u64)) };
        let _ = write!(out, " {ret:#x}");
        if next <= rbp {
            break;
        }
        rbp = next;
    }
}
