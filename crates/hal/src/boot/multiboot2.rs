//! The Multiboot2 boot information structure, as GRUB passes it.
//! Only the tags we use are read: command line, module, memory map, RSDP.

use super::{early_read, early_slice, BootInfo};

const TAG_END: u32 = 0;
const TAG_CMDLINE: u32 = 1;
const TAG_MODULE: u32 = 3;
const TAG_MMAP: u32 = 6;
const TAG_ACPI_OLD: u32 = 14;
const TAG_ACPI_NEW: u32 = 15;

pub(super) fn parse(paddr: u64, mut info: BootInfo) -> BootInfo {
    let total: u32 = early_read(paddr);
    let end = paddr + total as u64;
    let mut tag = paddr + 8;
    while tag + 8 <= end {
        let kind: u32 = early_read(tag);
        let size: u32 = early_read(tag + 4);
        match kind {
            TAG_END => break,
            TAG_CMDLINE => {
                let s = early_slice(tag + 8, size.saturating_sub(9) as usize);
                info.set_cmdline(s);
            }
            TAG_MODULE if info.initrd.is_none() => {
                let start: u32 = early_read(tag + 8);
                let stop: u32 = early_read(tag + 12);
                info.initrd = Some((start as u64, stop.saturating_sub(start) as u64));
            }
            TAG_MMAP => {
                let entry_size: u32 = early_read(tag + 8);
                let mut e = tag + 16;
                while entry_size >= 24 && e + 24 <= tag + size as u64 {
                    let base: u64 = early_read(e);
                    let len: u64 = early_read(e + 8);
                    let t: u32 = early_read(e + 16);
                    info.push_region(base, len, t == 1);
                    e += entry_size as u64;
                }
            }
            TAG_ACPI_OLD | TAG_ACPI_NEW => info.rsdp = Some(tag + 8),
            _ => {}
        }
        tag += (size as u64).div_ceil(8) * 8;
        if size < 8 {
            break;
        }
    }
    info
}
