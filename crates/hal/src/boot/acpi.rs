//! ACPI, only as far as finding the CPUs and the I/O APICs: RSDP →
//! RSDT/XSDT → MADT, whose local APIC (type 0) and local x2APIC (type 9)
//! entries list the CPUs the machine has, and I/O APIC entries (type 1)
//! where device interrupts arrive.
//!
//! Runs once in `hal_start64`, while the boot page tables still
//! identity-map the low 4 GiB (where QEMU's firmware puts the tables).
//! Every address and length is checked against that window and every
//! table's checksum is verified: a malformed or absent table only means
//! "no CPU list", and the kernel then runs on the bootstrap CPU alone.

use super::{early_read, early_slice, BootInfo};

/// Addresses at or above this are not identity-mapped during early boot.
const LOW_LIMIT: u64 = 1 << 32;
/// Larger tables are treated as corrupt (QEMU's are a few hundred bytes).
const MAX_TABLE: u32 = 1 << 16;
const SDT_HEADER: u32 = 36;

fn readable(pa: u64, len: u64) -> bool {
    pa != 0 && pa.checked_add(len).is_some_and(|end| end <= LOW_LIMIT)
}

fn sums_to_zero(pa: u64, len: u64) -> bool {
    early_slice(pa, len as usize)
        .iter()
        .fold(0u8, |a, b| a.wrapping_add(*b))
        == 0
}

fn valid_rsdp(pa: u64) -> bool {
    readable(pa, 20) && early_slice(pa, 8) == b"RSD PTR " && sums_to_zero(pa, 20)
}

/// The RSDP: where the loader said, else the EBDA's first KiB, else the
/// BIOS area 0xe0000–0xfffff (16-byte aligned), as ACPI specifies.
fn find_rsdp(hint: Option<u64>) -> Option<u64> {
    if let Some(pa) = hint.filter(|&pa| valid_rsdp(pa)) {
        return Some(pa);
    }
    let ebda = (early_read::<u16>(0x40e) as u64) << 4;
    let mut areas = [(0xe0000u64, 0x20000u64), (0, 0)];
    if (0x80000..0xa0000).contains(&ebda) {
        areas[1] = (ebda, 1024);
    }
    areas
        .iter()
        .flat_map(|&(start, len)| (start..start + len).step_by(16))
        .find(|&pa| valid_rsdp(pa))
}

/// The length of the table at `pa` if its signature is `sig` (any when
/// None), it fits the window and its checksum holds.
fn table(pa: u64, sig: Option<&[u8; 4]>) -> Option<u32> {
    if !readable(pa, SDT_HEADER as u64) {
        return None;
    }
    if sig.is_some_and(|s| early_slice(pa, 4) != s) {
        return None;
    }
    let len: u32 = early_read(pa + 4);
    let ok = (SDT_HEADER..=MAX_TABLE).contains(&len)
        && readable(pa, len as u64)
        && sums_to_zero(pa, len as u64);
    ok.then_some(len)
}

/// Fills `info`'s CPU list from the MADT. Leaves it empty when there is
/// no usable ACPI.
pub(super) fn find_cpus(info: &mut BootInfo) {
    let Some(rsdp) = find_rsdp(info.rsdp) else {
        return;
    };
    info.rsdp = Some(rsdp);
    let revision: u8 = early_read(rsdp + 15);
    let rsdt: u32 = early_read(rsdp + 16);
    let mut root = (rsdt as u64, 4u64, *b"RSDT");
    if revision >= 2 {
        let len: u32 = early_read(rsdp + 20);
        let xsdt: u64 = early_read(rsdp + 24);
        let extended_ok = (36..=64).contains(&len)
            && readable(rsdp, len as u64)
            && sums_to_zero(rsdp, len as u64);
        if extended_ok && table(xsdt, Some(b"XSDT")).is_some() {
            root = (xsdt, 8, *b"XSDT");
        }
    }
    let (root_pa, entry_size, sig) = root;
    let Some(root_len) = table(root_pa, Some(&sig)) else {
        return;
    };
    let entries = (root_len - SDT_HEADER) as u64 / entry_size;
    let madt = (0..entries)
        .map(|i| {
            let at = root_pa + SDT_HEADER as u64 + i * entry_size;
            if entry_size == 8 {
                early_read::<u64>(at)
            } else {
                early_read::<u32>(at) as u64
            }
        })
        .find_map(|pa| table(pa, Some(b"APIC")).map(|len| (pa, len)));
    let Some((madt, len)) = madt else {
        return;
    };
    info.acpi_madt = true;
    // Header, then the local APIC address and flags (8 bytes), then
    // variable-length entries: type, length, body.
    let mut off = SDT_HEADER as u64 + 8;
    while off + 2 <= len as u64 {
        let kind: u8 = early_read(madt + off);
        let elen = early_read::<u8>(madt + off + 1) as u64;
        if elen < 2 || off + elen > len as u64 {
            break;
        }
        match (kind, elen) {
            // Processor local APIC: ACPI id, APIC id, flags (bit 0 enabled).
            (0, 8..) => {
                let apic_id: u8 = early_read(madt + off + 3);
                let flags: u32 = early_read(madt + off + 4);
                if flags & 1 != 0 {
                    info.push_cpu(apic_id as u32);
                }
            }
            // I/O APIC: id, reserved, address, GSI base.
            (1, 12..) => {
                let address: u32 = early_read(madt + off + 4);
                let gsi_base: u32 = early_read(madt + off + 8);
                info.push_ioapic(address as u64, gsi_base);
            }
            // Processor local x2APIC: reserved, x2APIC id, flags, ACPI uid.
            (9, 16..) => {
                let apic_id: u32 = early_read(madt + off + 4);
                let flags: u32 = early_read(madt + off + 8);
                if flags & 1 != 0 {
                    info.push_cpu(apic_id);
                }
            }
            _ => {}
        }
        off += elen;
    }
}
