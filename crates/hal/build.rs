//! Generates the 256 interrupt entry stubs (one per IDT vector) and the
//! table of their addresses; writing them out by hand would be 1,000 lines
//! of near-identical assembly.
use std::fmt::Write as _;

/// Vectors for which the CPU pushes an error code itself.
const HAS_ERROR_CODE: [u8; 9] = [8, 10, 11, 12, 13, 14, 17, 21, 29];

fn main() {
    let mut s = String::new();
    s.push_str(".section .text.trap_stubs, \"ax\"\n.code64\n");
    for v in 0..=255u16 {
        writeln!(s, ".p2align 4\ntrap_stub_{v}:").unwrap();
        if !HAS_ERROR_CODE.contains(&(v as u8)) && v != 30 {
            s.push_str("    pushq $0\n");
        }
        writeln!(s, "    pushq ${v}\n    jmp trap_common").unwrap();
    }
    s.push_str(".section .rodata.trap_stub_table, \"a\"\n.p2align 3\n.global trap_stub_table\ntrap_stub_table:\n");
    for v in 0..=255u16 {
        writeln!(s, "    .quad trap_stub_{v}").unwrap();
    }
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(format!("{out}/trap_stubs.S"), s).expect("write trap stubs");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/boot/entry.S");
    println!("cargo:rerun-if-changed=src/trap_entry.S");
}
