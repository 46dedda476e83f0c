//! Xen PVH `hvm_start_info` (version 1), as QEMU fills it for `-kernel`.

use super::{early_read, early_slice, BootInfo};

const MAGIC: u32 = 0x336e_c578;

#[repr(C)]
#[derive(Clone, Copy)]
struct StartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    memmap_paddr: u64,
    memmap_entries: u32,
    reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct ModEntry {
    paddr: u64,
    size: u64,
    cmdline_paddr: u64,
    reserved: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct MemmapEntry {
    addr: u64,
    size: u64,
    kind: u32,
    reserved: u32,
}

pub(super) fn parse(paddr: u64, mut info: BootInfo) -> BootInfo {
    let si: StartInfo = early_read(paddr);
    if si.magic != MAGIC {
        return info;
    }
    if si.cmdline_paddr != 0 {
        let mut len = 0;
        while len < 1024 && early_read::<u8>(si.cmdline_paddr + len as u64) != 0 {
            len += 1;
        }
        info.set_cmdline(early_slice(si.cmdline_paddr, len));
    }
    if si.nr_modules > 0 && si.modlist_paddr != 0 {
        let m: ModEntry = early_read(si.modlist_paddr);
        info.initrd = Some((m.paddr, m.size));
    }
    if si.rsdp_paddr != 0 {
        info.rsdp = Some(si.rsdp_paddr);
    }
    if si.version >= 1 {
        for i in 0..si.memmap_entries as u64 {
            let e: MemmapEntry = early_read(si.memmap_paddr + i * 24);
            info.push_region(e.addr, e.size, e.kind == 1);
        }
    }
    info
}
